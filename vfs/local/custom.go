package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

var (
	_ vfs.Renamer     = (*FS)(nil)
	_ vfs.Linker      = (*FS)(nil)
	_ vfs.XattrReader = (*FS)(nil)
	_ vfs.XattrWriter = (*FS)(nil)
	_ vfs.TimeSetter  = (*FS)(nil)
	_ vfs.Truncater   = (*FS)(nil)
)

// lresolve resolves p for an operation that names an entry without
// following a final symlink (see vfs.ResolveEntry), host errors mapped.
func (l *FS) lresolve(op, p string) (vfs.Resolved[node], error) {
	r, err := vfs.ResolveEntry[node](tree{l.root}, op, p)
	if err != nil {
		return r, guestErr(op, p, err)
	}
	return r, nil
}

// lexisting is lresolve for an object that must exist.
func (l *FS) lexisting(op, p string) (node, error) {
	r, err := l.lresolve(op, p)
	if err != nil {
		return node{}, err
	}
	if !r.Exists {
		return node{}, vfs.PathErr(op, p, fs.ErrNotExist)
	}
	return r.Node, nil
}

// Rename moves oldpath to newpath (see vfs.Renamer). The guest-level
// refusals are decided on the resolved objects; the move itself is one
// renameat(2) of two symlink-free names inside the os.Root, which moves
// names only: whatever lies at either name by then, no object outside the
// root is reached, and the kernel repeats the type, emptiness and subtree
// checks on what it finds.
func (l *FS) Rename(oldpath, newpath string) error {
	o, err := l.lresolve("rename", oldpath)
	if err != nil {
		return err
	}
	if !o.Exists {
		return vfs.PathErr("rename", oldpath, fs.ErrNotExist)
	}
	n, err := l.lresolve("rename", newpath)
	if err != nil {
		return err
	}
	if o.Node.rel == "." || n.Exists && n.Node.rel == "." {
		return vfs.PathErr("rename", oldpath, fmt.Errorf("cannot move the guest root: %w", fs.ErrInvalid))
	}
	isDir := o.Node.fi.IsDir()
	if n.Exists && os.SameFile(n.Node.fi, o.Node.fi) {
		return nil // one object under two names, or the same name
	}
	if isDir && strings.HasPrefix(n.Path, o.Path+"/") {
		return vfs.PathErr("rename", newpath, fmt.Errorf("cannot move %s into its own subtree: %w", o.Path, fs.ErrInvalid))
	}
	if !isDir && strings.HasSuffix(newpath, "/") {
		return vfs.PathErr("rename", newpath, vfs.ErrNotDir)
	}
	if n.Exists {
		switch t := n.Node.fi; {
		case isDir && !t.IsDir():
			return vfs.PathErr("rename", newpath, vfs.ErrNotDir)
		case !isDir && t.IsDir():
			return vfs.PathErr("rename", newpath, vfs.ErrIsDir)
		}
	}
	l.before("rename", o.Node.rel)
	return l.inParents("rename", newpath, o.Parent, n.Parent, func(od, nd *os.File) error {
		return renameAt(od, o.Name, nd, n.Name)
	})
}

// inParents opens handles of the two resolved parent directories, checks
// that they are still the directories resolution found (ErrChanged if a
// symlink or another directory took a name on the way), and runs op on
// them: the *at call then acts on one name in each, with no path left to
// walk.
func (l *FS) inParents(op, p string, a, b node, fn func(ad, bd *os.File) error) error {
	ad, err := l.dirHandle(op, p, a)
	if err != nil {
		return err
	}
	defer ad.Close()
	bd, err := l.dirHandle(op, p, b)
	if err != nil {
		return err
	}
	defer bd.Close()
	if err := fn(ad, bd); err != nil {
		return guestErr(op, p, err)
	}
	return nil
}

// dirHandle opens a handle of the resolved directory n and checks it is n.
func (l *FS) dirHandle(op, p string, n node) (*os.File, error) {
	h, fi, err := l.handle(op, p, n.rel)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() || !os.SameFile(fi, n.fi) {
		h.Close()
		return nil, vfs.PathErr(op, p, ErrChanged)
	}
	return h, nil
}

// Link makes newpath a second name of the non-directory oldpath (a final
// symlink is linked itself): one linkat(2) without AT_SYMLINK_FOLLOW of
// two symlink-free names inside the os.Root. It changes no content, mode
// or owner, so unlike the writes it accepts an object that already has
// several names.
func (l *FS) Link(oldpath, newpath string) error {
	o, err := l.lresolve("link", oldpath)
	if err != nil {
		return err
	}
	if !o.Exists {
		return vfs.PathErr("link", oldpath, fs.ErrNotExist)
	}
	if o.Node.fi.IsDir() {
		return vfs.PathErr("link", oldpath, fmt.Errorf("hard link to a directory: %w", vfs.ErrIsDir))
	}
	if st, ok := o.Node.fi.Sys().(*syscall.Stat_t); ok && st.Nlink >= vfs.MaxLinks {
		return vfs.PathErr("link", oldpath, fmt.Errorf("%d names already: %w", st.Nlink, vfs.ErrLinkLimit))
	}
	n, err := l.lresolve("link", newpath)
	if err != nil {
		return err
	}
	if n.Exists {
		return vfs.PathErr("link", newpath, fs.ErrExist)
	}
	if strings.HasSuffix(newpath, "/") {
		return vfs.PathErr("link", newpath, vfs.ErrNotDir)
	}
	l.before("link", o.Node.rel)
	err = l.inParents("link", newpath, o.Parent, n.Parent, func(od, nd *os.File) error {
		return linkAt(od, o.Name, nd, n.Name)
	})
	if errors.Is(err, syscall.EMLINK) {
		return vfs.PathErr("link", oldpath, fmt.Errorf("%w: %w", vfs.ErrLinkLimit, err))
	}
	return err
}

// attrChange resolves p (a final symlink not followed) and runs fn on a
// handle of that object, as SetPermissions does (see change): attribute
// and time changes go through it.
func (l *FS) attrChange(op, p string, fn func(h *os.File) error) error {
	n, err := l.lexisting(op, p)
	if err != nil {
		return err
	}
	return l.change(op, p, n, fn)
}

// SetXattr creates or replaces the attribute name of p (a final symlink
// is not followed) through a checked handle.
func (l *FS) SetXattr(p, name string, value []byte) error {
	if err := vfs.CheckXattr(name, value); err != nil {
		return vfs.PathErr("setxattr", p, err)
	}
	return l.attrChange("setxattr", p, func(h *os.File) error { return xattrErr(name, fdSetxattr(h, name, value)) })
}

// RemoveXattr deletes the attribute name of p; a missing one is
// vfs.ErrNoXattr.
func (l *FS) RemoveXattr(p, name string) error {
	if err := vfs.CheckXattr(name, nil); err != nil {
		return vfs.PathErr("removexattr", p, err)
	}
	return l.attrChange("removexattr", p, func(h *os.File) error { return xattrErr(name, fdRemovexattr(h, name)) })
}

// ListXattr returns the names of p's attributes, sorted (a final symlink
// is not followed).
func (l *FS) ListXattr(p string) ([]string, error) {
	n, err := l.lexisting("listxattr", p)
	if err != nil {
		return nil, err
	}
	h, _, err := l.handle("listxattr", p, n.rel)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	names, err := fdListxattr(h)
	if err != nil {
		return nil, guestErr("listxattr", p, err)
	}
	return names, nil
}

// GetXattr returns one attribute of p (a final symlink is not followed);
// a missing one is vfs.ErrNoXattr.
func (l *FS) GetXattr(p, name string) ([]byte, error) {
	n, err := l.lexisting("getxattr", p)
	if err != nil {
		return nil, err
	}
	h, _, err := l.handle("getxattr", p, n.rel)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	v, err := fdGetxattr(h, name)
	if err != nil {
		return nil, guestErr("getxattr", p, xattrErr(name, err))
	}
	return v, nil
}

// xattrErr maps "no such attribute" to vfs.ErrNoXattr, naming it.
func xattrErr(name string, err error) error {
	if err == errNoData {
		return fmt.Errorf("%s: %w", name, vfs.ErrNoXattr)
	}
	return err
}

// SetTimes sets p's access and modification times (the kernel sets the
// change time) through a checked handle; a final symlink is not followed.
func (l *FS) SetTimes(p string, atime, mtime time.Time) error {
	return l.attrChange("utimes", p, func(h *os.File) error { return fdUtimes(h, atime, mtime) })
}

// Truncate sets the regular file p's size (a final symlink followed with
// guest semantics, as truncate(2) does), through a descriptor opened
// without following a symlink and checked, like the writes', to be the
// file resolved with a single link (see sole).
func (l *FS) Truncate(p string, size int64) error {
	if size < 0 {
		return vfs.PathErr("truncate", p, fmt.Errorf("negative size %d: %w", size, fs.ErrInvalid))
	}
	n, err := l.existing("truncate", p, true)
	if err != nil {
		return err
	}
	if strings.HasSuffix(p, "/") && !n.fi.IsDir() {
		return vfs.PathErr("truncate", p, vfs.ErrNotDir)
	}
	if err := regular("truncate", p, n.fi); err != nil {
		return err
	}
	if err := singleLink("truncate", p, n.fi); err != nil {
		return err
	}
	return l.sole("truncate", p, n, os.O_WRONLY, func(f *os.File, _ fs.FileInfo) error { return f.Truncate(size) })
}
