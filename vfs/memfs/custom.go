package memfs

import (
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// maxFileSize bounds what Truncate may grow a file to: memfs holds content
// in memory, so a guest-chosen size must not become an allocation.
const maxFileSize = 1 << 30

// lresolve resolves p for an operation that names an entry without
// following a final symlink (see vfs.ResolveEntry).
func (f *FS) lresolve(op, p string) (vfs.Resolved[*node], error) {
	return vfs.ResolveEntry[*node](tree{f}, op, p)
}

// lexisting is lresolve for an object that must exist.
func (f *FS) lexisting(op, p string) (*node, error) {
	r, err := f.lresolve(op, p)
	if err != nil {
		return nil, err
	}
	if !r.Exists {
		return nil, vfs.PathErr(op, p, fs.ErrNotExist)
	}
	return r.Node, nil
}

// Rename moves oldpath to newpath as rename(2) does; see vfs.Renamer.
func (f *FS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.lresolve("rename", oldpath)
	if err != nil {
		return err
	}
	if !o.Exists {
		return vfs.PathErr("rename", oldpath, fs.ErrNotExist)
	}
	n, err := f.lresolve("rename", newpath)
	if err != nil {
		return err
	}
	if o.Node == f.root || n.Exists && n.Node == f.root {
		return vfs.PathErr("rename", oldpath, fmt.Errorf("cannot move the root: %w", fs.ErrInvalid))
	}
	isDir := o.Node.mode.IsDir()
	if isDir && (n.Path == o.Path || strings.HasPrefix(n.Path, o.Path+"/")) {
		if n.Exists && n.Node == o.Node {
			return nil
		}
		return vfs.PathErr("rename", newpath, fmt.Errorf("cannot move %s into its own subtree: %w", o.Path, fs.ErrInvalid))
	}
	if !isDir && strings.HasSuffix(newpath, "/") {
		return vfs.PathErr("rename", newpath, vfs.ErrNotDir)
	}
	if n.Exists {
		if n.Node == o.Node { // two names of one object: nothing to do
			return nil
		}
		switch t := n.Node; {
		case isDir && !t.mode.IsDir():
			return vfs.PathErr("rename", newpath, vfs.ErrNotDir)
		case !isDir && t.mode.IsDir():
			return vfs.PathErr("rename", newpath, vfs.ErrIsDir)
		case t.mode.IsDir() && len(t.children) > 0:
			return vfs.PathErr("rename", newpath, fmt.Errorf("directory not empty: %w", fs.ErrExist))
		}
	}
	now := time.Now()
	if n.Exists && !n.Node.mode.IsDir() {
		n.Node.nlink--
		n.Node.ctime = now
	}
	delete(o.Parent.children, o.Name)
	n.Parent.children[n.Name] = o.Node
	o.Parent.mtime, n.Parent.mtime, o.Node.ctime = now, now, now
	return nil
}

// Link makes newpath a second name of the non-directory oldpath.
func (f *FS) Link(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.lexisting("link", oldpath)
	if err != nil {
		return err
	}
	if o.mode.IsDir() {
		return vfs.PathErr("link", oldpath, fmt.Errorf("hard link to a directory: %w", vfs.ErrIsDir))
	}
	if o.nlink >= vfs.MaxLinks {
		return vfs.PathErr("link", oldpath, fmt.Errorf("%d names already: %w", o.nlink, vfs.ErrLinkLimit))
	}
	n, err := f.lresolve("link", newpath)
	if err != nil {
		return err
	}
	if n.Exists {
		return vfs.PathErr("link", newpath, fs.ErrExist)
	}
	if strings.HasSuffix(newpath, "/") {
		return vfs.PathErr("link", newpath, vfs.ErrNotDir)
	}
	now := time.Now()
	n.Parent.children[n.Name] = o
	n.Parent.mtime = now
	o.nlink++
	o.ctime = now
	return nil
}

// SetXattr creates or replaces the attribute name of p (not following a
// final symlink).
func (f *FS) SetXattr(p, name string, value []byte) error {
	if err := vfs.CheckXattr(name, value); err != nil {
		return vfs.PathErr("setxattr", p, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lexisting("setxattr", p)
	if err != nil {
		return err
	}
	if n.xattrs == nil {
		n.xattrs = map[string][]byte{}
	}
	n.xattrs[name] = slices.Clone(value)
	n.ctime = time.Now()
	return nil
}

// RemoveXattr deletes the attribute name of p; a missing one is
// vfs.ErrNoXattr.
func (f *FS) RemoveXattr(p, name string) error {
	if err := vfs.CheckXattr(name, nil); err != nil {
		return vfs.PathErr("removexattr", p, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lexisting("removexattr", p)
	if err != nil {
		return err
	}
	if _, ok := n.xattrs[name]; !ok {
		return vfs.PathErr("removexattr", p, fmt.Errorf("%s: %w", name, vfs.ErrNoXattr))
	}
	delete(n.xattrs, name)
	n.ctime = time.Now()
	return nil
}

// ListXattr returns the names of p's attributes, sorted (a final symlink
// is not followed, as llistxattr).
func (f *FS) ListXattr(p string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lexisting("listxattr", p)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(n.xattrs)), nil
}

// GetXattr returns a copy of one attribute of p (a final symlink is not
// followed); a missing one is vfs.ErrNoXattr.
func (f *FS) GetXattr(p, name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lexisting("getxattr", p)
	if err != nil {
		return nil, err
	}
	v, ok := n.xattrs[name]
	if !ok {
		return nil, vfs.PathErr("getxattr", p, fmt.Errorf("%s: %w", name, vfs.ErrNoXattr))
	}
	return slices.Clone(v), nil
}

// SetTimes sets p's access and modification times and its change time to
// now; a final symlink is not followed.
func (f *FS) SetTimes(p string, atime, mtime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lexisting("utimes", p)
	if err != nil {
		return err
	}
	n.atime, n.mtime, n.ctime = atime, mtime, time.Now()
	return nil
}

// Times returns p's access, modification and change times (a final
// symlink is not followed); vfs.FileInfo carries only the modification
// time, and tests of SetTimes need the others.
func (f *FS) Times(p string) (atime, mtime, ctime time.Time, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lexisting("stat", p)
	if err != nil {
		return
	}
	return n.atime, n.mtime, n.ctime, nil
}

// Truncate sets the regular file p's size (following symlinks with guest
// semantics, as truncate(2)); growing adds zeros.
func (f *FS) Truncate(p string, size int64) error {
	if size < 0 || size > maxFileSize {
		return vfs.PathErr("truncate", p, fmt.Errorf("size %d outside 0..%d: %w", size, int64(maxFileSize), fs.ErrInvalid))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("truncate", p, true)
	if err != nil {
		return err
	}
	if n, err = regular("truncate", p, n); err != nil {
		return err
	}
	if size <= int64(len(n.data)) {
		n.data = slices.Clip(n.data[:size])
	} else {
		n.data = append(n.data, make([]byte, int(size)-len(n.data))...)
	}
	n.mtime = time.Now()
	n.ctime = n.mtime
	return nil
}
