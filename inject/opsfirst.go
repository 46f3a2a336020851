package inject

import (
	"fmt"
	"io/fs"

	"github.com/guestinject/guestinject/vfs"
)

// prepareOpsFirst plans Data.Ops first and then the classic items on a
// read-only view of the guest as the operations leave it, so the classic
// items' checks and contents (an authorized_keys to append to, a
// directory to create) see the operations' result; the items run in that
// order. When the operations fail, the classic items are planned on the
// guest itself (the run is refused anyway).
func prepareOpsFirst(fsys vfs.FS, data *Data) []*item {
	opItems, m := planOps(fsys, nil, data.Ops, data.HostOwners)
	view := fsys
	if m != nil {
		view = modelView{m}
	}
	classic := prepare(view, data)
	simulate(view, classic)
	return append(opItems, classic...)
}

// modelView is the model as a read-only vfs.FS and vfs.Reader.
type modelView struct{ m *model }

func (v modelView) info(name string, n *mnode) (vfs.FileInfo, error) {
	fi := vfs.FileInfo{Name: name, Mode: n.typ | n.perm, UID: n.uid, GID: n.gid, Size: n.size, Nlink: n.nlink}
	if fi.Nlink == 0 {
		fi.Nlink = 1
	}
	if n.typ == fs.ModeSymlink {
		t, err := v.m.Readlink(n)
		if err != nil {
			return fi, err
		}
		fi.Target, fi.Size = t, int64(len(t))
	}
	return fi, nil
}

func (v modelView) stat(p string, follow bool) (vfs.FileInfo, error) {
	r, err := v.m.resolve(p, follow)
	if err != nil {
		return vfs.FileInfo{}, err
	}
	if !r.Exists {
		return vfs.FileInfo{}, vfs.PathErr("stat", p, fs.ErrNotExist)
	}
	name := r.Name
	if r.Path == "/" {
		name = "/"
	}
	return v.info(name, r.Node)
}

func (v modelView) Stat(p string) (vfs.FileInfo, error)  { return v.stat(p, true) }
func (v modelView) Lstat(p string) (vfs.FileInfo, error) { return v.stat(p, false) }

func (v modelView) ReadDir(p string) ([]vfs.FileInfo, error) {
	r, err := v.m.resolve(p, true)
	if err != nil {
		return nil, err
	}
	if !r.Exists {
		return nil, vfs.PathErr("readdir", p, fs.ErrNotExist)
	}
	if !r.Node.typ.IsDir() {
		return nil, vfs.PathErr("readdir", p, vfs.ErrNotDir)
	}
	names, err := v.m.names(r.Node)
	if err != nil {
		return nil, err
	}
	out := make([]vfs.FileInfo, 0, len(names))
	for _, n := range names {
		fi, err := v.info(n, r.Node.kids[n])
		if err != nil {
			return nil, err
		}
		out = append(out, fi)
	}
	return out, nil
}

func (v modelView) Readlink(p string) (string, error) {
	r, err := v.m.resolve(p, false)
	if err != nil {
		return "", err
	}
	if !r.Exists || r.Node.typ != fs.ModeSymlink {
		return "", vfs.PathErr("readlink", p, fmt.Errorf("not a symlink: %w", fs.ErrInvalid))
	}
	return v.m.Readlink(r.Node)
}

func (v modelView) ReadFile(p string) ([]byte, error) {
	r, err := v.m.existing("read", p, true)
	if err != nil {
		return nil, err
	}
	if r.Node.typ != 0 {
		return nil, vfs.PathErr("read", p, vfs.ErrNotRegular)
	}
	return v.m.content(r.Node, r.Path)
}

func (v modelView) HasFile(p string) (bool, error) {
	r, err := v.m.resolve(p, true)
	if isMissing(err) {
		return false, nil
	}
	return err == nil && r.Exists, err
}

func (modelView) MakePath(string) error                     { return errReadOnlyView }
func (modelView) AppendFile(string, []byte) error           { return errReadOnlyView }
func (modelView) ReplaceFile(string, []byte) error          { return errReadOnlyView }
func (modelView) SetPermissions(string, fs.FileMode) error  { return errReadOnlyView }
func (modelView) SetOwnership(string, string, string) error { return errReadOnlyView }
