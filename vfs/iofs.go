package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"time"
)

// ReadFS is a guest filesystem that can also be listed and stat'ed: what
// IOFS needs.
type ReadFS interface {
	FS
	Reader
}

// FileReader is a regular file opened for reading in pieces.
type FileReader interface {
	io.ReaderAt
	Size() int64
}

// ReaderOpener is served by backends that read a file in pieces (the ext
// and XFS engines), so a file of any size is read in constant memory.
type ReaderOpener interface {
	// OpenReader opens the regular file at path, following a final
	// symlink with guest semantics.
	OpenReader(path string) (FileReader, error)
}

// IOFS returns a read-only io/fs view of fsys, so fs.WalkDir, fs.ReadFile,
// fs.Glob and testing/fstest work on a guest. Names are unrooted io/fs
// names ("etc/passwd", "." for the root); they are resolved as the guest
// path "/"+name, symlinks with guest semantics (never leaving the guest).
// Open follows a final symlink (as os.Open does); the view also serves
// fs.ReadLinkFS (ReadLink, Lstat) and fs.StatFS. Files are read in pieces
// when the backend is a ReaderOpener, else loaded with ReadFile (bounded by
// the backend's read limit).
func IOFS(fsys ReadFS) fs.FS { return ioFS{fsys} }

type ioFS struct{ f ReadFS }

// guestPath maps an io/fs name to a guest path, or reports it invalid.
func guestPath(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return "/", nil
	}
	return "/" + name, nil
}

// relabel gives a backend error the io/fs name instead of the guest path.
func relabelIO(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: op, Path: name, Err: pe.Err}
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

func (v ioFS) Open(name string) (fs.File, error) {
	p, err := guestPath("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := v.f.Stat(p)
	if err != nil {
		return nil, relabelIO("open", name, err)
	}
	fi.Name = path.Base(name)
	if name == "." {
		fi.Name = "."
	}
	if fi.Mode.IsDir() {
		return &ioDir{v: v, name: name, p: p, info: fi}, nil
	}
	if !fi.Mode.IsRegular() {
		return &ioFile{info: fi, r: io.NewSectionReader(bytes.NewReader(nil), 0, 0)}, nil
	}
	if o, ok := v.f.(ReaderOpener); ok {
		fr, err := o.OpenReader(p)
		if err != nil {
			return nil, relabelIO("open", name, err)
		}
		return &ioFile{info: fi, r: io.NewSectionReader(fr, 0, fr.Size())}, nil
	}
	data, err := v.f.ReadFile(p)
	if err != nil {
		return nil, relabelIO("open", name, err)
	}
	fi.Size = int64(len(data))
	return &ioFile{info: fi, r: io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data)))}, nil
}

func (v ioFS) Stat(name string) (fs.FileInfo, error) {
	p, err := guestPath("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := v.f.Stat(p)
	if err != nil {
		return nil, relabelIO("stat", name, err)
	}
	fi.Name = path.Base(name)
	return ioInfo{fi}, nil
}

func (v ioFS) Lstat(name string) (fs.FileInfo, error) {
	p, err := guestPath("lstat", name)
	if err != nil {
		return nil, err
	}
	fi, err := v.f.Lstat(p)
	if err != nil {
		return nil, relabelIO("lstat", name, err)
	}
	fi.Name = path.Base(name)
	return ioInfo{fi}, nil
}

func (v ioFS) ReadLink(name string) (string, error) {
	p, err := guestPath("readlink", name)
	if err != nil {
		return "", err
	}
	t, err := v.f.Readlink(p)
	if err != nil {
		return "", relabelIO("readlink", name, err)
	}
	return t, nil
}

func (v ioFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := guestPath("readdir", name)
	if err != nil {
		return nil, err
	}
	list, err := v.f.ReadDir(p)
	if err != nil {
		return nil, relabelIO("readdir", name, err)
	}
	out := make([]fs.DirEntry, len(list))
	for i, fi := range list {
		out[i] = fs.FileInfoToDirEntry(ioInfo{fi})
	}
	return out, nil
}

// ioInfo is a FileInfo as io/fs describes one.
type ioInfo struct{ fi FileInfo }

func (i ioInfo) Name() string       { return i.fi.Name }
func (i ioInfo) Size() int64        { return i.fi.Size }
func (i ioInfo) Mode() fs.FileMode  { return i.fi.Mode }
func (i ioInfo) ModTime() time.Time { return i.fi.ModTime }
func (i ioInfo) IsDir() bool        { return i.fi.Mode.IsDir() }
func (i ioInfo) Sys() any           { return i.fi }

// ioFile is an opened non-directory.
type ioFile struct {
	info   FileInfo
	r      *io.SectionReader
	closed bool
}

func (f *ioFile) Stat() (fs.FileInfo, error) { return ioInfo{f.info}, nil }
func (f *ioFile) Close() error {
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	return nil
}
func (f *ioFile) Read(p []byte) (int, error) {
	if f.closed {
		return 0, fs.ErrClosed
	}
	return f.r.Read(p)
}
func (f *ioFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, fs.ErrClosed
	}
	return f.r.ReadAt(p, off)
}
func (f *ioFile) Seek(off int64, whence int) (int64, error) {
	if f.closed {
		return 0, fs.ErrClosed
	}
	return f.r.Seek(off, whence)
}

// ioDir is an opened directory; its entries are listed on the first
// ReadDir.
type ioDir struct {
	v       ioFS
	name, p string
	info    FileInfo
	list    []fs.DirEntry
	listed  bool
	closed  bool
}

func (d *ioDir) Stat() (fs.FileInfo, error) { return ioInfo{d.info}, nil }
func (d *ioDir) Close() error {
	if d.closed {
		return fs.ErrClosed
	}
	d.closed = true
	return nil
}
func (d *ioDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: ErrIsDir}
}

func (d *ioDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, fs.ErrClosed
	}
	if !d.listed {
		list, err := d.v.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.list, d.listed = list, true
	}
	if n <= 0 {
		out := d.list
		d.list = nil
		return out, nil
	}
	if len(d.list) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(d.list))
	out := d.list[:k:k]
	d.list = d.list[k:]
	return out, nil
}
