// Package memfs is an in-memory guest filesystem: a tree of inode-like
// nodes with modes, owners, times, contents and symlink targets. It serves
// vfs.FS, vfs.Reader, vfs.Symlinker, vfs.Remover and the customisation
// operations (Renamer, Linker, XattrReader and XattrWriter, TimeSetter,
// Truncater) with the same guest semantics as the disk backends (paths resolved by vfs.Resolve, owners
// looked up in the tree's own /etc/passwd and /etc/group), so injectors and
// the conformance suite can run without an image. A few extra methods
// (Mkdir, WriteFileAs, Chown, Mkfifo) build guest trees for tests.
package memfs

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// node is one guest object. Its identity is the pointer; ino numbers it for
// Stat.
type node struct {
	ino      uint64
	mode     fs.FileMode // type bits and permissions
	uid, gid uint32
	mtime    time.Time
	atime    time.Time
	ctime    time.Time
	nlink    uint32            // names of a non-directory (directories count their subdirectories)
	data     []byte            // regular file content
	target   string            // symlink target
	children map[string]*node  // directory entries
	xattrs   map[string][]byte // extended attributes by full name
}

// FS is an in-memory guest filesystem. It is safe for concurrent use.
type FS struct {
	mu      sync.Mutex
	root    *node
	nextIno uint64
}

var (
	_ vfs.FS        = (*FS)(nil)
	_ vfs.Reader    = (*FS)(nil)
	_ vfs.Symlinker = (*FS)(nil)
	_ vfs.Remover   = (*FS)(nil)

	_ vfs.Renamer     = (*FS)(nil)
	_ vfs.Linker      = (*FS)(nil)
	_ vfs.XattrReader = (*FS)(nil)
	_ vfs.XattrWriter = (*FS)(nil)
	_ vfs.TimeSetter  = (*FS)(nil)
	_ vfs.Truncater   = (*FS)(nil)
)

// rootIno is the root directory's inode number, as on ext filesystems.
const rootIno = 2

// New returns a filesystem holding only an empty root directory, 0755
// root:root.
func New() *FS {
	f := &FS{nextIno: rootIno}
	f.root = f.newNode(fs.ModeDir|0o755, 0, 0)
	f.root.children = map[string]*node{}
	return f
}

func (f *FS) newNode(mode fs.FileMode, uid, gid uint32) *node {
	now := time.Now()
	n := &node{ino: f.nextIno, mode: mode, uid: uid, gid: gid, mtime: now, atime: now, ctime: now, nlink: 1}
	f.nextIno++
	if mode.IsDir() {
		n.children = map[string]*node{}
	}
	return n
}

// tree adapts FS to vfs.Tree; callers hold f.mu.
type tree struct{ f *FS }

func (t tree) Root() (*node, error) { return t.f.root, nil }

func (t tree) Lookup(dir *node, name string) (*node, error) {
	if n, ok := dir.children[name]; ok {
		return n, nil
	}
	return nil, fs.ErrNotExist
}

func (t tree) Type(n *node) (fs.FileMode, error) { return n.mode.Type(), nil }

func (t tree) Readlink(n *node) (string, error) { return n.target, nil }

func (f *FS) resolve(p string, followLast bool) (vfs.Resolved[*node], error) {
	return vfs.Resolve[*node](tree{f}, p, followLast)
}

// lookup resolves p to an existing object.
func (f *FS) lookup(op, p string, followLast bool) (*node, error) {
	r, err := f.resolve(p, followLast)
	if err != nil {
		return nil, rewrap(op, p, err)
	}
	if !r.Exists {
		return nil, vfs.PathErr(op, p, fs.ErrNotExist)
	}
	return r.Node, nil
}

// rewrap re-labels a resolver error with op and the caller's guest path p.
func rewrap(op, p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return vfs.PathErr(op, p, err)
}

// link adds child under dir as name and touches dir.
func link(dir *node, name string, child *node) {
	dir.children[name] = child
	dir.mtime = child.mtime
}

// MakePath creates p and any missing parents, 0755 root:root (mkdir -p).
// An existing non-directory on the way is ErrNotDir; a dangling symlink on
// the way is fs.ErrExist, as mkdir(2) reports it.
func (f *FS) MakePath(p string) error {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr("mkdir", p, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := ""
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		next, err := f.makeOne(p, cur+"/"+c)
		if err != nil {
			return err
		}
		cur = strings.TrimSuffix(next, "/")
	}
	return nil
}

// makeOne makes sure the directory q exists and returns its canonical path.
func (f *FS) makeOne(p, q string) (string, error) {
	l, err := f.resolve(q, false)
	if err != nil {
		return "", rewrap("mkdir", p, err)
	}
	if !l.Exists {
		link(l.Parent, l.Name, f.newNode(fs.ModeDir|0o755, 0, 0))
		return l.Path, nil
	}
	n, canon := l.Node, l.Path
	if n.mode&fs.ModeSymlink != 0 {
		r, err := f.resolve(q, true)
		switch {
		case err != nil && !isAbsent(err):
			return "", rewrap("mkdir", p, err)
		case err != nil || !r.Exists:
			return "", vfs.PathErr("mkdir", p, fmt.Errorf("dangling symlink %s: %w", q, fs.ErrExist))
		}
		n, canon = r.Node, r.Path
	}
	if !n.mode.IsDir() {
		return "", vfs.PathErr("mkdir", p, vfs.ErrNotDir)
	}
	return canon, nil
}

// openWrite resolves p for writing, creating a missing regular file 0644
// root:root (through a dangling final symlink, as open(O_CREAT) does).
func (f *FS) openWrite(op, p string) (*node, error) {
	r, err := f.resolve(p, true)
	if err != nil {
		return nil, rewrap(op, p, err)
	}
	if strings.HasSuffix(p, "/") { // only a directory may end in "/"
		if r.Exists && !r.Node.mode.IsDir() {
			return nil, vfs.PathErr(op, p, vfs.ErrNotDir)
		}
		return nil, vfs.PathErr(op, p, vfs.ErrIsDir)
	}
	if !r.Exists {
		n := f.newNode(0o644, 0, 0)
		link(r.Parent, r.Name, n)
		return n, nil
	}
	return regular(op, p, r.Node)
}

func regular(op, p string, n *node) (*node, error) {
	switch {
	case n.mode.IsDir():
		return nil, vfs.PathErr(op, p, vfs.ErrIsDir)
	case !n.mode.IsRegular():
		return nil, vfs.PathErr(op, p, vfs.ErrNotRegular)
	}
	return n, nil
}

// AppendFile appends data to the regular file p, creating it if missing.
func (f *FS) AppendFile(p string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.openWrite("append", p)
	if err != nil {
		return err
	}
	n.data = append(n.data, data...)
	n.mtime = time.Now()
	return nil
}

// ReplaceFile sets the content of the regular file p, creating it if
// missing; an existing file keeps its identity, mode and owner.
func (f *FS) ReplaceFile(p string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.openWrite("replace", p)
	if err != nil {
		return err
	}
	n.data = slices.Clone(data)
	n.mtime = time.Now()
	return nil
}

// ReadFile returns a copy of the regular file p's content.
func (f *FS) ReadFile(p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("read", p, true)
	if err != nil {
		return nil, err
	}
	if n, err = regular("read", p, n); err != nil {
		return nil, err
	}
	return slices.Clone(n.data), nil
}

// HasFile reports whether p names an existing object (after following
// symlinks); a dangling symlink or a missing or non-directory parent is
// false, a loop is an error.
func (f *FS) HasFile(p string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.resolve(p, true)
	switch {
	case err == nil:
		return r.Exists, nil
	case isAbsent(err):
		return false, nil
	}
	return false, rewrap("stat", p, err)
}

// isAbsent reports whether a resolver error just means "no such object".
func isAbsent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, vfs.ErrNotDir)
}

// SetPermissions sets p's permission bits (following symlinks). Bits
// outside vfs.PermMask are refused with fs.ErrInvalid.
func (f *FS) SetPermissions(p string, mode fs.FileMode) error {
	if mode&^vfs.PermMask != 0 {
		return vfs.PathErr("chmod", p, fmt.Errorf("mode %v has bits beyond permissions: %w", mode, fs.ErrInvalid))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("chmod", p, true)
	if err != nil {
		return err
	}
	n.mode = n.mode.Type() | mode
	return nil
}

// SetOwnership changes p's owner and group (following symlinks); names
// are resolved in this tree's /etc/passwd and /etc/group.
func (f *FS) SetOwnership(p, user, group string) error {
	uid, gid, err := vfs.ResolveOwner(f, user, group)
	if err != nil {
		return vfs.PathErr("chown", p, err)
	}
	return f.Chown(p, uid, gid)
}

// Chown sets p's numeric owner and group (following symlinks); -1 leaves
// one unchanged.
func (f *FS) Chown(p string, uid, gid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("chown", p, true)
	if err != nil {
		return err
	}
	if uid >= 0 {
		n.uid = uint32(uid)
	}
	if gid >= 0 {
		n.gid = uint32(gid)
	}
	return nil
}

// Stat describes the object p leads to, following a final symlink.
func (f *FS) Stat(p string) (vfs.FileInfo, error) { return f.stat("stat", p, true) }

// Lstat describes p itself; a symlink is described, not followed.
func (f *FS) Lstat(p string) (vfs.FileInfo, error) { return f.stat("lstat", p, false) }

func (f *FS) stat(op, p string, follow bool) (vfs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.resolve(p, follow)
	if err != nil {
		return vfs.FileInfo{}, rewrap(op, p, err)
	}
	if !r.Exists {
		return vfs.FileInfo{}, vfs.PathErr(op, p, fs.ErrNotExist)
	}
	return info(path.Base(p), r.Node), nil
}

func info(name string, n *node) vfs.FileInfo {
	if name == "" {
		name = "/"
	}
	fi := vfs.FileInfo{
		Name: name, Mode: n.mode, UID: n.uid, GID: n.gid, Nlink: n.nlink,
		Ino: n.ino, ModTime: n.mtime, Target: n.target,
	}
	switch {
	case n.mode.IsRegular():
		fi.Size = int64(len(n.data))
	case n.mode&fs.ModeSymlink != 0:
		fi.Size = int64(len(n.target))
	case n.mode.IsDir():
		fi.Size, fi.Nlink = 4096, 2
		for _, c := range n.children {
			if c.mode.IsDir() {
				fi.Nlink++
			}
		}
	}
	return fi
}

// ReadDir lists the directory p leads to, sorted by name.
func (f *FS) ReadDir(p string) ([]vfs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("readdir", p, true)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, vfs.PathErr("readdir", p, vfs.ErrNotDir)
	}
	names := slices.Sorted(maps.Keys(n.children))
	out := make([]vfs.FileInfo, 0, len(names))
	for _, name := range names {
		out = append(out, info(name, n.children[name]))
	}
	return out, nil
}

// Readlink returns the target of the symlink p; any other object is
// fs.ErrInvalid, as readlink(2) reports it.
func (f *FS) Readlink(p string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("readlink", p, false)
	if err != nil {
		return "", err
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", vfs.PathErr("readlink", p, fmt.Errorf("not a symlink: %w", fs.ErrInvalid))
	}
	return n.target, nil
}

// Symlink creates the symlink p pointing to target (stored verbatim).
func (f *FS) Symlink(target, p string) error {
	if target == "" || len(target) > vfs.MaxPathLen || strings.IndexByte(target, 0) >= 0 {
		return vfs.PathErr("symlink", p, fmt.Errorf("%w: bad symlink target %q", vfs.ErrInvalidPath, target))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.create("symlink", p, fs.ModeSymlink|0o777, 0, 0)
	if err != nil {
		return err
	}
	n.target = target
	return nil
}

// create adds a new object at p (whose final component is not followed);
// an existing object there is fs.ErrExist.
func (f *FS) create(op, p string, mode fs.FileMode, uid, gid uint32) (*node, error) {
	r, err := f.resolve(p, false)
	if err != nil {
		return nil, rewrap(op, p, err)
	}
	if r.Exists {
		return nil, vfs.PathErr(op, p, fs.ErrExist)
	}
	n := f.newNode(mode, uid, gid)
	link(r.Parent, r.Name, n)
	return n, nil
}

// Remove deletes a file, a symlink (not its target) or an empty directory.
func (f *FS) Remove(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.resolve(p, false)
	if err != nil {
		return rewrap("remove", p, err)
	}
	switch {
	case !r.Exists:
		return vfs.PathErr("remove", p, fs.ErrNotExist)
	case r.Node == f.root:
		return vfs.PathErr("remove", p, fmt.Errorf("cannot remove the root: %w", fs.ErrInvalid))
	case r.Node.mode.IsDir() && len(r.Node.children) > 0:
		return vfs.PathErr("remove", p, fmt.Errorf("directory not empty: %w", fs.ErrExist))
	}
	delete(r.Parent.children, r.Name)
	r.Parent.mtime = time.Now()
	if !r.Node.mode.IsDir() {
		r.Node.nlink--
		r.Node.ctime = r.Parent.mtime
	}
	return nil
}

// Mkdir creates one directory with the given mode and owner; its parent
// must exist. For building test trees.
func (f *FS) Mkdir(p string, mode fs.FileMode, uid, gid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.create("mkdir", p, fs.ModeDir|mode&vfs.PermMask, uint32(uid), uint32(gid))
	return err
}

// Mkfifo creates a named pipe with the given permissions, owned root:root.
func (f *FS) Mkfifo(p string, mode fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.create("mkfifo", p, fs.ModeNamedPipe|mode&vfs.PermMask, 0, 0)
	return err
}

// WriteFileAs creates or replaces the regular file p with data and sets
// its mode and owner. For building test trees.
func (f *FS) WriteFileAs(p string, data []byte, mode fs.FileMode, uid, gid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.openWrite("write", p)
	if err != nil {
		return err
	}
	n.data = slices.Clone(data)
	n.mode = mode & vfs.PermMask
	n.uid, n.gid = uint32(uid), uint32(gid)
	n.mtime = time.Now()
	return nil
}
