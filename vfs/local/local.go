// Package local serves a host directory that holds a guest root (an
// unpacked rootfs, a mounted image) as a vfs.FS.
//
// Two layers keep every access inside the directory. Paths are resolved
// with guest semantics by vfs.Resolve over Lstat and Readlink of the host
// objects: an absolute guest symlink restarts at the directory, ".." stops
// there, 40 hops at most. The symlink-free result is then opened through an
// os.Root of the directory, which refuses anything that would leave it even
// if a symlink is swapped in after resolution. New files are created with
// O_EXCL (never following a symlink), and an existing file is opened
// without truncation and checked to be the very object resolution found
// before anything is written to it. A file with several hard links is
// never changed: another of its names may be a host file outside.
//
// No host operation that changes an object goes by path after a check.
// A directory (which has no other name) is changed through a descriptor
// (O_PATH on Linux) checked with fstat to be the object resolved. Any
// other object is first moved, by one rename, into a private directory
// made beside it for the change (see sole.go): only there does a link
// count of one prove that no host name shares the object, since a hard
// link swapped in and out cannot reach it; the change goes through a
// descriptor of it there and the name moves back. New symlinks are made
// in such a directory too and get their name last, without replacing
// anything. What still goes by name creates or removes a name inside a
// directory of the root and cannot reach a host object outside it: mkdir
// (the new directory then gets its mode and owner through a checked
// handle), O_EXCL creation, and unlink/rmdir (which remove a name, never
// an object's other names).
package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs"
)

// ErrChanged is wrapped when a guest object changed between resolution and
// use (something else is modifying the directory).
var ErrChanged = errs.New(errs.ErrInUse, "guest object changed while being opened")

// FS is a host directory holding a guest root.
type FS struct {
	root *os.Root
	// hook, when set (by tests), runs between resolution and the final
	// open, create or attribute change of op on the host-relative rel.
	hook func(op, rel string)
}

var (
	_ vfs.FS        = (*FS)(nil)
	_ vfs.Reader    = (*FS)(nil)
	_ vfs.Symlinker = (*FS)(nil)
	_ vfs.Remover   = (*FS)(nil)
)

// Open serves the guest root held in the host directory dir.
func Open(dir string) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open guest root: %w", err)
	}
	return &FS{root: r}, nil
}

// Close releases the directory.
func (l *FS) Close() error { return l.root.Close() }

// node is a host object named by its symlink-free path relative to the
// root ("." for the root), with what Lstat said of it during resolution.
type node struct {
	rel string
	fi  fs.FileInfo
}

// tree adapts the os.Root to vfs.Tree.
type tree struct{ r *os.Root }

func (t tree) Root() (node, error) {
	fi, err := t.r.Lstat(".")
	return node{".", fi}, err
}

func (t tree) Lookup(dir node, name string) (node, error) {
	rel := join(dir.rel, name)
	fi, err := t.r.Lstat(rel)
	if err != nil {
		return node{}, hostErr(err)
	}
	return node{rel, fi}, nil
}

func (t tree) Type(n node) (fs.FileMode, error) { return n.fi.Mode().Type(), nil }

func (t tree) Readlink(n node) (string, error) {
	s, err := t.r.Readlink(n.rel)
	return s, hostErr(err)
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

func (l *FS) resolve(op, p string, followLast bool) (vfs.Resolved[node], error) {
	r, err := vfs.Resolve[node](tree{l.root}, p, followLast)
	if err != nil {
		return r, guestErr(op, p, err)
	}
	return r, nil
}

// existing resolves p to an existing object.
func (l *FS) existing(op, p string, followLast bool) (node, error) {
	r, err := l.resolve(op, p, followLast)
	if err != nil {
		return node{}, err
	}
	if !r.Exists {
		return node{}, vfs.PathErr(op, p, fs.ErrNotExist)
	}
	return r.Node, nil
}

func (l *FS) before(op, rel string) {
	if l.hook != nil {
		l.hook(op, rel)
	}
}

// hostErr strips the host path from an os error and maps errnos to the
// vfs sentinels; guestErr then names the guest path.
func hostErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	switch err {
	case syscall.ENOTDIR:
		return vfs.ErrNotDir
	case syscall.EISDIR:
		return vfs.ErrIsDir
	case syscall.ELOOP:
		return vfs.ErrTooManyLinks
	case syscall.ENOSPC, syscall.EDQUOT:
		return vfs.ErrNoSpace
	case syscall.EROFS:
		return vfs.ErrReadOnly
	case syscall.ENOTEMPTY:
		return fmt.Errorf("directory not empty: %w", fs.ErrExist)
	}
	return err
}

func guestErr(op, p string, err error) error {
	return vfs.PathErr(op, p, hostErr(err))
}

// asRoot reports whether new objects should be given to root:root
// explicitly (a process that is not root cannot, and its own ids are all
// it can give).
var asRoot = os.Geteuid() == 0

// MakePath creates p and any missing parents, 0755 (root:root when run as
// root). A non-directory on the way is ErrNotDir; a dangling symlink on the
// way is fs.ErrExist, as mkdir(2) reports it.
func (l *FS) MakePath(p string) error {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr("mkdir", p, err)
	}
	cur := ""
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		next, err := l.makeOne(p, cur+"/"+c)
		if err != nil {
			return err
		}
		cur = strings.TrimSuffix(next, "/")
	}
	return nil
}

// makeOne makes sure the directory q exists and returns its canonical path.
func (l *FS) makeOne(p, q string) (string, error) {
	r, err := vfs.Resolve[node](tree{l.root}, q, false)
	if err != nil {
		return "", guestErr("mkdir", p, err)
	}
	if !r.Exists {
		return r.Path, l.mkdir(p, join(r.Parent.rel, r.Name))
	}
	n, canon := r.Node, r.Path
	if n.fi.Mode().Type() == fs.ModeSymlink {
		f, err := vfs.Resolve[node](tree{l.root}, q, true)
		switch {
		case err != nil && !absent(err):
			return "", guestErr("mkdir", p, err)
		case err != nil || !f.Exists:
			return "", vfs.PathErr("mkdir", p, fmt.Errorf("dangling symlink %s: %w", q, fs.ErrExist))
		}
		n, canon = f.Node, f.Path
	}
	if !n.fi.IsDir() {
		return "", vfs.PathErr("mkdir", p, vfs.ErrNotDir)
	}
	return canon, nil
}

func (l *FS) mkdir(p, rel string) error {
	l.before("mkdir", rel)
	if err := l.root.Mkdir(rel, 0o755); err != nil {
		return guestErr("mkdir", p, err)
	}
	return l.fixNewDir(p, rel)
}

// fixNewDir gives a just-created directory 0755 whatever the umask and,
// when run as root, root:root, through a handle checked to be a
// directory (which no host name can share): if something else has taken
// the name since, nothing is changed.
func (l *FS) fixNewDir(p, rel string) error {
	const perm = 0o755
	l.before("mkdir-made", rel)
	h, fi, err := l.handle("mkdir", p, rel)
	if err != nil {
		return err
	}
	defer h.Close()
	if !fi.IsDir() {
		return vfs.PathErr("mkdir", p, ErrChanged)
	}
	if fi.Mode()&vfs.PermMask != perm {
		if err := fdChmod(h, perm); err != nil {
			return guestErr("mkdir", p, err)
		}
	}
	if asRoot {
		if err := fdChown(h, 0, 0); err != nil {
			return guestErr("mkdir", p, err)
		}
	}
	return nil
}

// handle opens a path-only handle of rel (see openHandle) and describes
// the object it names, by fstat.
func (l *FS) handle(op, p, rel string) (*os.File, fs.FileInfo, error) {
	h, err := l.openHandle(rel)
	if err != nil {
		return nil, nil, guestErr(op, p, err)
	}
	fi, err := h.Stat()
	if err != nil {
		h.Close()
		return nil, nil, guestErr(op, p, err)
	}
	return h, fi, nil
}

// sameHandle opens a handle of the resolved directory n and checks that
// it is still n (same inode and type, so never a symlink swapped in): a
// directory has no other name a change could reach.
func (l *FS) sameHandle(op, p string, n node) (*os.File, error) {
	l.before(op, n.rel)
	h, fi, err := l.handle(op, p, n.rel)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, n.fi) || fi.Mode().Type() != n.fi.Mode().Type() {
		h.Close()
		return nil, vfs.PathErr(op, p, ErrChanged)
	}
	return h, nil
}

// absent reports whether a resolver error just means "no such object".
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, vfs.ErrNotDir)
}

// write resolves p for writing and runs fn on a write-only descriptor:
// an existing regular file is opened without truncation while its only
// name is in a private directory (see sole); a missing one is created
// 0644 with O_EXCL (through a dangling final symlink, as open(O_CREAT)
// does, but never by following a link that appears afterwards).
func (l *FS) write(op, p string, extra int, fn func(f *os.File) error) error {
	r, err := l.resolve(op, p, true)
	if err != nil {
		return err
	}
	if strings.HasSuffix(p, "/") { // only a directory may end in "/"
		if r.Exists && !r.Node.fi.IsDir() {
			return vfs.PathErr(op, p, vfs.ErrNotDir)
		}
		return vfs.PathErr(op, p, vfs.ErrIsDir)
	}
	if !r.Exists {
		f, err := l.create(op, p, join(r.Parent.rel, r.Name))
		if err != nil {
			return err
		}
		return l.finish(op, p, f, func() error { return fn(f) })
	}
	if err := regular(op, p, r.Node.fi); err != nil {
		return err
	}
	if err := singleLink(op, p, r.Node.fi); err != nil {
		return err
	}
	return l.sole(op, p, r.Node, os.O_WRONLY|extra, func(f *os.File, _ fs.FileInfo) error { return fn(f) })
}

func (l *FS) create(op, p, rel string) (*os.File, error) {
	l.before(op, rel)
	f, err := l.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, guestErr(op, p, err)
	}
	if err = f.Chmod(0o644); err == nil && asRoot {
		err = f.Chown(0, 0)
	}
	if err != nil {
		f.Close()
		return nil, guestErr(op, p, err)
	}
	return f, nil
}

// openSame opens the resolved regular file n (non-blocking, so a fifo
// swapped in cannot hang us), checks it is still the same object and
// returns what fstat says of it.
func (l *FS) openSame(op, p string, n node, flag int) (*os.File, fs.FileInfo, error) {
	l.before(op, n.rel)
	f, err := l.root.OpenFile(n.rel, flag|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, guestErr(op, p, err)
	}
	fi, err := f.Stat()
	if err == nil && (!os.SameFile(fi, n.fi) || fi.Mode().Type() != n.fi.Mode().Type()) {
		err = ErrChanged
	}
	if err != nil {
		f.Close()
		return nil, nil, guestErr(op, p, err)
	}
	return f, fi, nil
}

// singleLink refuses to change a non-directory with several hard links:
// another name of it may lie outside the guest root (a host file linked
// into the tree), and a change would reach it there.
func singleLink(op, p string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.IsDir() || !ok || st.Nlink <= 1 {
		return nil
	}
	return vfs.PathErr(op, p, fmt.Errorf("%w: the file has %d hard links, one may be outside the guest root", vfs.ErrUnsupported, st.Nlink))
}

func regular(op, p string, fi fs.FileInfo) error {
	switch {
	case fi.IsDir():
		return vfs.PathErr(op, p, vfs.ErrIsDir)
	case !fi.Mode().IsRegular():
		return vfs.PathErr(op, p, vfs.ErrNotRegular)
	}
	return nil
}

// AppendFile appends data to the regular file p, creating it if missing.
func (l *FS) AppendFile(p string, data []byte) error {
	return l.write("append", p, os.O_APPEND, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// ReplaceFile sets the content of the regular file p, creating it if
// missing; an existing file keeps its inode, mode and owner.
func (l *FS) ReplaceFile(p string, data []byte) error {
	return l.write("replace", p, 0, func(f *os.File) error {
		if err := f.Truncate(0); err != nil {
			return err
		}
		_, err := f.WriteAt(data, 0)
		return err
	})
}

// finish runs write on f and closes it, reporting the first error.
func (l *FS) finish(op, p string, f *os.File, write func() error) error {
	err := write()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return guestErr(op, p, err)
	}
	return nil
}

// ReadFile returns the content of the regular file p.
func (l *FS) ReadFile(p string) ([]byte, error) {
	f, err := l.OpenFile(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, guestErr("read", p, err)
	}
	return data, nil
}

// HasFile reports whether p names an existing object (after following
// symlinks); a dangling symlink or a missing or non-directory parent is
// false, a loop is an error.
func (l *FS) HasFile(p string) (bool, error) {
	r, err := vfs.Resolve[node](tree{l.root}, p, true)
	switch {
	case err == nil:
		return r.Exists, nil
	case absent(err):
		return false, nil
	}
	return false, guestErr("stat", p, err)
}

// SetPermissions sets p's permission bits (following guest symlinks, so
// a symlink itself is never changed) through a handle of the object
// resolved, with a single hard link unless it is a directory (see
// change); anything swapped in since resolution is ErrChanged. Bits
// outside vfs.PermMask are refused with fs.ErrInvalid.
func (l *FS) SetPermissions(p string, mode fs.FileMode) error {
	if mode&^vfs.PermMask != 0 {
		return vfs.PathErr("chmod", p, fmt.Errorf("mode %v has bits beyond permissions: %w", mode, fs.ErrInvalid))
	}
	n, err := l.existing("chmod", p, true)
	if err != nil {
		return err
	}
	return l.change("chmod", p, n, func(h *os.File) error { return fdChmod(h, vfs.UnixPerm(mode)) })
}

// SetOwnership changes p's owner and group (following guest symlinks);
// names are resolved in the guest's /etc/passwd and /etc/group. The
// change goes through a handle checked like SetPermissions', so neither a
// symlink nor a hard link swapped in afterwards is changed or followed
// (ErrChanged). A symlink itself is never given away here, as p's final
// link is followed; Symlink gives the links it makes root:root (run as
// root) before they get their name.
func (l *FS) SetOwnership(p, user, group string) error {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr("chown", p, err)
	}
	uid, gid, err := vfs.ResolveOwner(l, user, group)
	if err != nil {
		return vfs.PathErr("chown", p, err)
	}
	n, err := l.existing("chown", p, true)
	if err != nil {
		return err
	}
	return l.change("chown", p, n, func(h *os.File) error { return fdChown(h, uid, gid) })
}

// change runs fn on a handle of the resolved object n: a directory (which
// has no other names) through a handle checked to be n, anything else
// while its only name is in a private directory (see sole). An object
// resolved with several hard links is refused before anything moves.
func (l *FS) change(op, p string, n node, fn func(h *os.File) error) error {
	if !n.fi.IsDir() {
		if err := singleLink(op, p, n.fi); err != nil {
			return err
		}
		return l.sole(op, p, n, handleFlag, func(h *os.File, _ fs.FileInfo) error { return fn(h) })
	}
	h, err := l.sameHandle(op, p, n)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := fn(h); err != nil {
		return guestErr(op, p, err)
	}
	return nil
}

// Stat describes the object p leads to, following a final symlink.
func (l *FS) Stat(p string) (vfs.FileInfo, error) { return l.stat("stat", p, true) }

// Lstat describes p itself; a symlink is described, not followed.
func (l *FS) Lstat(p string) (vfs.FileInfo, error) { return l.stat("lstat", p, false) }

func (l *FS) stat(op, p string, follow bool) (vfs.FileInfo, error) {
	n, err := l.existing(op, p, follow)
	if err != nil {
		return vfs.FileInfo{}, err
	}
	fi, err := l.describe(path.Base(p), n.rel)
	if err != nil {
		return vfs.FileInfo{}, guestErr(op, p, err)
	}
	return fi, nil
}

// describe Lstats rel afresh and converts the answer.
func (l *FS) describe(name, rel string) (vfs.FileInfo, error) {
	fi, err := l.root.Lstat(rel)
	if err != nil {
		return vfs.FileInfo{}, err
	}
	out := vfs.FileInfo{Name: name, Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime(), Nlink: 1}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		out.UID, out.GID, out.Nlink = st.Uid, st.Gid, uint32(st.Nlink)
		out.Ino, out.Rdev = st.Ino, uint64(st.Rdev)
	}
	if fi.Mode().Type() == fs.ModeSymlink {
		if out.Target, err = l.root.Readlink(rel); err != nil {
			return vfs.FileInfo{}, err
		}
	}
	return out, nil
}

// ReadDir lists the directory p leads to, sorted by name, each entry
// described as by Lstat.
func (l *FS) ReadDir(p string) ([]vfs.FileInfo, error) {
	n, err := l.existing("readdir", p, true)
	if err != nil {
		return nil, err
	}
	if !n.fi.IsDir() {
		return nil, vfs.PathErr("readdir", p, vfs.ErrNotDir)
	}
	f, _, err := l.openSame("readdir", p, n, os.O_RDONLY|syscall.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, guestErr("readdir", p, err)
	}
	slices.Sort(names)
	out := make([]vfs.FileInfo, 0, len(names))
	for _, name := range names {
		fi, err := l.describe(name, join(n.rel, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, guestErr("readdir", p, err)
		}
		out = append(out, fi)
	}
	return out, nil
}

// Readlink returns the target of the symlink p; any other object is
// fs.ErrInvalid, as readlink(2) reports it.
func (l *FS) Readlink(p string) (string, error) {
	n, err := l.existing("readlink", p, false)
	if err != nil {
		return "", err
	}
	if n.fi.Mode().Type() != fs.ModeSymlink {
		return "", vfs.PathErr("readlink", p, fmt.Errorf("not a symlink: %w", fs.ErrInvalid))
	}
	s, err := l.root.Readlink(n.rel)
	if err != nil {
		return "", guestErr("readlink", p, err)
	}
	return s, nil
}

// Symlink creates the symlink p pointing to target (stored verbatim).
func (l *FS) Symlink(target, p string) error {
	if target == "" || len(target) > vfs.MaxPathLen || strings.IndexByte(target, 0) >= 0 {
		return vfs.PathErr("symlink", p, fmt.Errorf("%w: bad symlink target %q", vfs.ErrInvalidPath, target))
	}
	r, err := l.resolve("symlink", p, false)
	if err != nil {
		return err
	}
	if r.Exists {
		return vfs.PathErr("symlink", p, fs.ErrExist)
	}
	rel := join(r.Parent.rel, r.Name)
	l.before("symlink", rel)
	return l.withPrivate("symlink", p, r.Parent.rel, func(pd int, q *private) error {
		if err := l.newSymlink(target, rel, pd, q.fd, r.Name); err != nil {
			unix.Unlinkat(q.fd, soleName, 0)
			return guestErr("symlink", p, err)
		}
		return nil
	})
}

// newSymlink makes the symlink in the private directory qd, gives it to
// root:root when run as root (nobody else can swap it there) and only
// then names it name in pd, failing if the name exists by then.
func (l *FS) newSymlink(target, rel string, pd, qd int, name string) error {
	if err := unix.Symlinkat(target, qd, soleName); err != nil {
		return err
	}
	if asRoot {
		if err := unix.Fchownat(qd, soleName, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	l.before("symlink-made", rel)
	return publish(qd, pd, name)
}

// Remove deletes a file, a symlink (not its target) or an empty directory.
// It goes by name (unlinkat in a directory the os.Root opened): whatever
// the name leads to by then, only that name inside the guest goes away,
// never an object's other names nor a symlink's target.
func (l *FS) Remove(p string) error {
	n, err := l.existing("remove", p, false)
	if err != nil {
		return err
	}
	if n.rel == "." {
		return vfs.PathErr("remove", p, fmt.Errorf("cannot remove the guest root: %w", fs.ErrInvalid))
	}
	l.before("remove", n.rel)
	if err := l.root.Remove(n.rel); err != nil {
		return guestErr("remove", p, err)
	}
	return nil
}
