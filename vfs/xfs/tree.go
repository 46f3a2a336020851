package xfs

import (
	"io/fs"

	"github.com/guestinject/guestinject/vfs"
)

// tree serves vfs.Resolve over inode numbers.
type tree struct{ f *FS }

func (t tree) Root() (uint64, error) { return t.f.sb.RootIno, nil }

func (t tree) Lookup(dir uint64, name string) (uint64, error) {
	in, err := t.f.inode(dir)
	if err != nil {
		return 0, err
	}
	if !in.isDir() {
		return 0, vfs.ErrNotDir
	}
	return t.f.lookup(in, name)
}

func (t tree) Type(n uint64) (fs.FileMode, error) {
	in, err := t.f.inode(n)
	if err != nil {
		return 0, err
	}
	return in.mode().Type(), nil
}

func (t tree) Readlink(n uint64) (string, error) {
	in, err := t.f.inode(n)
	if err != nil {
		return "", err
	}
	return t.f.readlink(in)
}

// resolve walks p with guest semantics and loads the inode it names.
func (f *FS) resolve(op, p string, follow bool) (vfs.Resolved[uint64], *inode, error) {
	r, err := vfs.Resolve[uint64](tree{f}, p, follow)
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

// lresolve resolves p for an operation that names an entry without
// following a final symlink (see vfs.ResolveEntry).
func (f *FS) lresolve(op, p string) (vfs.Resolved[uint64], error) {
	return vfs.ResolveEntry[uint64](tree{f}, op, p)
}
