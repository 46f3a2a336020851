package ext

import (
	"io/fs"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var errNotDir = vfs.ErrNotDir

// tree serves vfs.Resolve over inode numbers.
type tree struct{ f *FS }

var _ vfs.Tree[uint32] = tree{}

func (t tree) Root() (uint32, error) {
	in, err := t.f.inode(layout.RootIno)
	if err != nil {
		return 0, err
	}
	if !in.isDir() {
		return 0, corrupt("inode", layout.RootIno, 0, -1, "root is not a directory (mode %#o)", in.raw.Mode)
	}
	return layout.RootIno, nil
}

func (t tree) Lookup(dir uint32, name string) (uint32, error) {
	in, err := t.f.inode(dir)
	if err != nil {
		return 0, err
	}
	return t.f.lookup(in, name)
}

func (t tree) Type(n uint32) (fs.FileMode, error) {
	in, err := t.f.inode(n)
	if err != nil {
		return 0, err
	}
	return in.mode().Type(), nil
}

func (t tree) Readlink(n uint32) (string, error) {
	in, err := t.f.inode(n)
	if err != nil {
		return "", err
	}
	return t.f.readlink(in)
}

// resolve walks guest path p; a missing final object is fs.ErrNotExist.
func (f *FS) resolve(op, p string, follow bool) (vfs.Resolved[uint32], *inode, error) {
	r, err := vfs.Resolve[uint32](tree{f}, p, follow)
	if err != nil {
		return r, nil, vfs.Relabel(op, p, err)
	}
	if !r.Exists {
		return r, nil, vfs.PathErr(op, p, fs.ErrNotExist)
	}
	in, err := f.inode(r.Node)
	if err != nil {
		return r, nil, vfs.PathErr(op, p, err)
	}
	return r, in, nil
}
