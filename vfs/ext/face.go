package ext

import (
	"io"
	"io/fs"
	"path"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var (
	_ vfs.FS          = (*FS)(nil)
	_ vfs.Reader      = (*FS)(nil)
	_ vfs.XattrReader = (*FS)(nil)
)

// The write side of vfs.FS: each operation is one transaction of the
// write engine (facewrite.go), on an FS opened with Options.Writable.

// MakePath creates p and any missing parent directories (0755 root:root).
func (f *FS) MakePath(p string) error {
	defer f.wlock()()
	return f.writeMakePath(p)
}

// AppendFile appends data to the regular file at p (symlinks followed),
// creating it 0644 root:root.
func (f *FS) AppendFile(p string, data []byte) error {
	defer f.wlock()()
	return f.writeFile("append", p, data, true)
}

// ReplaceFile sets the content of the regular file at p (symlinks
// followed), creating it 0644 root:root.
func (f *FS) ReplaceFile(p string, data []byte) error {
	defer f.wlock()()
	return f.writeFile("write", p, data, false)
}

// SetPermissions sets the permission bits of p (symlinks followed).
func (f *FS) SetPermissions(p string, mode fs.FileMode) error {
	defer f.wlock()()
	return f.writeSetPermissions(p, mode)
}

// SetOwnership sets the owner and group of p (symlinks followed), names
// resolved in the guest's /etc/passwd and /etc/group.
func (f *FS) SetOwnership(p, user, group string) error { return f.writeSetOwnership(p, user, group) }

// rlock holds the FS for a read and returns the release; wlock holds it
// for a write alone (see FS).
func (f *FS) rlock() func() {
	f.opMu.RLock()
	return f.opMu.RUnlock
}

func (f *FS) wlock() func() {
	f.opMu.Lock()
	return f.opMu.Unlock
}

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
	return vfs.Exists[uint32](tree{f}, p)
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
	name := path.Base(p) // the name asked for, as os.Stat reports it, not the link target's
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
		Name: name, Mode: in.mode(), UID: in.raw.UID(), GID: in.raw.GID(),
		Size: in.size, Nlink: uint32(in.raw.LinksCount), Ino: uint64(in.num),
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

// MaxDirEntries bounds what ReadDir collects: a directory whose blocks
// repeat (a hostile block map) cannot make it allocate without limit.
const MaxDirEntries = 1 << 21

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
	ents, err := f.collectEntries(dir)
	if err != nil {
		return nil, vfs.PathErr("readdir", p, err)
	}
	return f.describeEntries(p, ents)
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
	return sortedNames(visibleXattrs(xs)), nil
}

// visibleXattrs drops system.data, the inline-data carrier, which the
// kernel does not list.
func visibleXattrs(xs []xattr) []xattr {
	out := xs[:0:0]
	for _, x := range xs {
		if !(x.index == layout.XattrIndexSystem && x.name == "system.data") {
			out = append(out, x)
		}
	}
	return out
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
	for _, x := range visibleXattrs(xs) {
		if x.name != name {
			continue
		}
		v, err := f.xattrValue(x, in.num)
		if err == nil && (x.index == layout.XattrIndexPosixACLAccess || x.index == layout.XattrIndexPosixACLDefault) {
			v, err = aclToXattr(v, in.num)
		}
		if err != nil {
			return nil, vfs.PathErr("getxattr", p, err)
		}
		return v, nil
	}
	return nil, vfs.PathErr("getxattr", p, vfs.ErrNoXattr)
}

// File is an open regular file, read through a block iterator: its size
// is not bounded by memory.
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
func (fl *File) Size() int64 { return fl.d.in.size }

// Stat describes the file.
func (fl *File) Stat() vfs.FileInfo { return fl.info }

// Reader returns a sequential reader over the whole file.
func (fl *File) Reader() io.Reader { return io.NewSectionReader(fl, 0, fl.Size()) }
