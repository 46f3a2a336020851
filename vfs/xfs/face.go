package xfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"

	"github.com/guestinject/guestinject/vfs"
)

var (
	_ vfs.FS          = (*FS)(nil)
	_ vfs.Reader      = (*FS)(nil)
	_ vfs.XattrReader = (*FS)(nil)
)

// ReadFile returns the content of the regular file at p (symlinks
// followed), up to Options.MaxReadFileSize bytes.
func (f *FS) ReadFile(p string) ([]byte, error) {
	defer f.rlock()()
	in, err := f.regular("read", p)
	if err != nil {
		return nil, err
	}
	b, err := f.readAll(in, f.opts.MaxReadFileSize)
	if err != nil {
		return nil, vfs.PathErr("read", p, err)
	}
	return b, nil
}

// regular resolves p to a regular file.
func (f *FS) regular(op, p string) (*inode, error) {
	_, in, err := f.resolve(op, p, true)
	if err != nil {
		return nil, err
	}
	switch {
	case in.isDir():
		return nil, vfs.PathErr(op, p, vfs.ErrIsDir)
	case !in.isReg():
		return nil, vfs.PathErr(op, p, vfs.ErrNotRegular)
	}
	return in, nil
}

// HasFile reports whether p names an object (a dangling symlink does not).
func (f *FS) HasFile(p string) (bool, error) {
	defer f.rlock()()
	return vfs.Exists[uint64](tree{f}, p)
}

// Stat describes the object at p, following a final symlink.
func (f *FS) Stat(p string) (vfs.FileInfo, error) {
	defer f.rlock()()
	return f.stat("stat", p, true)
}

// Lstat describes the object at p itself.
func (f *FS) Lstat(p string) (vfs.FileInfo, error) {
	defer f.rlock()()
	return f.stat("lstat", p, false)
}

func (f *FS) stat(op, p string, follow bool) (vfs.FileInfo, error) {
	r, in, err := f.resolve(op, p, follow)
	if err != nil {
		return vfs.FileInfo{}, err
	}
	name := path.Base(p)
	if r.Path == "/" {
		name = "/"
	}
	fi, err := f.fileInfo(in, name)
	if err != nil {
		return vfs.FileInfo{}, vfs.PathErr(op, p, err)
	}
	return fi, nil
}

// fileInfo describes inode in under name.
func (f *FS) fileInfo(in *inode, name string) (vfs.FileInfo, error) {
	fi := vfs.FileInfo{
		Name: name, Mode: in.mode(), UID: in.core.UID, GID: in.core.GID,
		Size: in.size(), Nlink: in.core.Links(), Ino: in.ino,
		ModTime: in.mtime(), Rdev: in.rdev(),
	}
	if in.isSymlink() {
		t, err := f.readlink(in)
		if err != nil {
			return fi, err
		}
		fi.Target = t
	}
	return fi, nil
}

// maxReadDirErrors bounds how many unreadable entries ReadDir names.
const maxReadDirErrors = 16

// ReadDir lists the directory at p (symlinks followed), sorted by name,
// without "." and "..". Entries whose inode cannot be read are left out
// and named in the error, which is then non-nil beside the good entries.
func (f *FS) ReadDir(p string) ([]vfs.FileInfo, error) {
	defer f.rlock()()
	_, dir, err := f.resolve("readdir", p, true)
	if err != nil {
		return nil, err
	}
	if !dir.isDir() {
		return nil, vfs.PathErr("readdir", p, vfs.ErrNotDir)
	}
	ents, err := f.dirEntries(dir)
	if err != nil {
		return nil, vfs.PathErr("readdir", p, err)
	}
	out := make([]vfs.FileInfo, 0, len(ents))
	var errs []error
	bad := 0
	for _, e := range ents {
		in, err := f.inode(e.ino)
		var fi vfs.FileInfo
		if err == nil {
			fi, err = f.fileInfo(in, e.name)
		}
		if err == nil {
			out = append(out, fi)
			continue
		}
		if bad++; bad <= maxReadDirErrors {
			errs = append(errs, vfs.PathErr("readdir", path.Join(p, e.name), err))
		}
	}
	if bad > maxReadDirErrors {
		errs = append(errs, fmt.Errorf("readdir %s: %d more unreadable entries", p, bad-maxReadDirErrors))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

// Readlink returns the target of the symlink at p.
func (f *FS) Readlink(p string) (string, error) {
	defer f.rlock()()
	_, in, err := f.resolve("readlink", p, false)
	if err != nil {
		return "", err
	}
	if !in.isSymlink() {
		return "", vfs.PathErr("readlink", p, fs.ErrInvalid)
	}
	t, err := f.readlink(in)
	if err != nil {
		return "", vfs.PathErr("readlink", p, err)
	}
	return t, nil
}

// ListXattr returns the names of the extended attributes of p, sorted; a
// final symlink is not followed (its own attributes, as llistxattr).
func (f *FS) ListXattr(p string) ([]string, error) {
	defer f.rlock()()
	_, in, err := f.resolve("listxattr", p, false)
	if err != nil {
		return nil, err
	}
	xs, err := f.xattrs(in)
	if err != nil {
		return nil, vfs.PathErr("listxattr", p, err)
	}
	return sortedNames(xs), nil
}

// GetXattr returns the value of attribute name of p (a final symlink not
// followed, as lgetxattr, like SetXattr);
// POSIX ACLs come in the xattr interface's format.
func (f *FS) GetXattr(p, name string) ([]byte, error) {
	defer f.rlock()()
	_, in, err := f.resolve("getxattr", p, false)
	if err != nil {
		return nil, err
	}
	xs, err := f.xattrs(in)
	if err != nil {
		return nil, vfs.PathErr("getxattr", p, err)
	}
	for _, x := range xs {
		if x.name != name {
			continue
		}
		v, err := f.xattrValue(in, x)
		if err == nil && (name == posixACLAccess || name == posixACLDefault) {
			v, err = aclToXattr(v, at("ACL", in.ino))
		}
		if err != nil {
			return nil, vfs.PathErr("getxattr", p, err)
		}
		return v, nil
	}
	return nil, vfs.PathErr("getxattr", p, vfs.ErrNoXattr)
}

// File is an open regular file, read through its extent map: its size is
// not bounded by memory.
type File struct {
	f    *FS
	d    *fileData
	info vfs.FileInfo
}

// OpenFile opens the regular file at p (symlinks followed) for reading.
func (f *FS) OpenFile(p string) (*File, error) {
	defer f.rlock()()
	in, err := f.regular("open", p)
	if err != nil {
		return nil, err
	}
	d, err := f.openData(in)
	if err != nil {
		return nil, vfs.PathErr("open", p, err)
	}
	fi, _ := f.fileInfo(in, path.Base(p))
	return &File{f: f, d: d, info: fi}, nil
}

// ReadAt reads from the file at off.
func (fl *File) ReadAt(p []byte, off int64) (int, error) {
	defer fl.f.rlock()()
	return fl.d.ReadAt(p, off)
}

// Size returns the file's size in bytes.
func (fl *File) Size() int64 { return fl.d.in.size() }

// Stat describes the file.
func (fl *File) Stat() vfs.FileInfo { return fl.info }

// Reader returns a sequential reader over the whole file.
func (fl *File) Reader() io.Reader { return io.NewSectionReader(fl, 0, fl.Size()) }

// rlock holds the FS for a read and returns the release; wlock holds it
// for a write alone (see FS.opMu).
func (f *FS) rlock() func() {
	f.opMu.RLock()
	return f.opMu.RUnlock
}

func (f *FS) wlock() func() {
	f.opMu.Lock()
	return f.opMu.Unlock
}
