package ext

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var _ vfs.Renamer = (*FS)(nil)

// Rename moves oldpath to newpath as rename(2) does (see vfs.Renamer), in
// one transaction: an existing target is unlinked as Remove would (a
// directory target must be empty), the old entry removed, the new one
// added; a directory that changes parent gets its ".." pointed at the new
// parent and both parents' link counts follow (dir_nlink semantics, as
// mkdir and rmdir keep them). Linear, htree and inline directories are
// handled by the directory writer. A directory moving into its own
// subtree is refused (fs.ErrInvalid).
func (f *FS) Rename(oldpath, newpath string) error {
	defer f.wlock()()
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
	if o.Name == "" || n.Exists && n.Name == "" {
		return vfs.PathErr("rename", oldpath, fmt.Errorf("cannot move the root: %w", fs.ErrInvalid))
	}
	if n.Exists && n.Node == o.Node {
		return nil // the same object under both names
	}
	otyp, err := tree{f}.Type(o.Node)
	if err != nil {
		return vfs.PathErr("rename", oldpath, err)
	}
	isDir := otyp.IsDir()
	if isDir && strings.HasPrefix(n.Path, o.Path+"/") {
		return vfs.PathErr("rename", newpath, fmt.Errorf("cannot move %s into its own subtree: %w", o.Path, fs.ErrInvalid))
	}
	if !isDir && strings.HasSuffix(newpath, "/") {
		return vfs.PathErr("rename", newpath, vfs.ErrNotDir)
	}
	failed := newpath
	err = f.inTx(func(t *tx) error {
		in, err := t.inode(o.Node)
		if err != nil {
			failed = oldpath
			return err
		}
		if in.flag(layout.FlagImmutable) || in.flag(layout.FlagAppend) {
			failed = oldpath
			return fmt.Errorf("inode %d is immutable or append-only: %w", in.num, fs.ErrPermission)
		}
		if err := t.checkProjectMove(in, n.Parent); err != nil {
			return err
		}
		if n.Exists {
			if err := t.renameTarget(in, n.Parent, n.Name, n.Node); err != nil {
				return err
			}
		}
		return t.move(in, o.Parent, o.Name, n.Parent, n.Name)
	})
	if err != nil {
		return vfs.PathErr("rename", failed, err)
	}
	return nil
}

// checkProjectMove refuses to move in into directory parent when parent
// gives its tree a project (PROJINHERIT) other than in's. The kernel
// refuses such a rename (EXDEV: mv then copies, and the copy takes the
// directory's project); moving the inode would leave a file of another
// project inside the tree, outside the directory quota meant to hold it.
func (t *tx) checkProjectMove(in *inode, parent uint32) error {
	dir, err := t.inode(parent)
	if err != nil {
		return err
	}
	if !dir.flag(layout.FlagProjinherit) {
		return nil
	}
	want, have := quotaIDs(dir)[layout.QuotaProject], quotaIDs(in)[layout.QuotaProject]
	if want == have {
		return nil
	}
	return fmt.Errorf("%w: moving inode %d (project %d) into directory inode %d, whose tree is project %d (PROJINHERIT): the kernel refuses this rename too (EXDEV); copy it instead",
		ErrUnsupportedFeature, in.num, have, dir.num, want)
}

// renameTarget checks the object a rename replaces (inode ino, name in
// directory parent) against the moved inode in, then unlinks it as
// Remove does.
func (t *tx) renameTarget(in *inode, parent uint32, name string, ino uint32) error {
	target, err := t.inode(ino)
	if err != nil {
		return err
	}
	switch {
	case in.isDir() && !target.isDir():
		return fmt.Errorf("inode %d replacing non-directory inode %d: %w", in.num, ino, vfs.ErrNotDir)
	case !in.isDir() && target.isDir():
		return fmt.Errorf("inode %d replacing directory inode %d: %w", in.num, ino, vfs.ErrIsDir)
	}
	return t.remove(parent, name, ino)
}

// move takes in's entry oname out of directory from and adds it as nname
// to directory to; a directory changing parent gets its ".." and both
// parents' link counts updated.
func (t *tx) move(in *inode, from uint32, oname string, to uint32, nname string) error {
	od, err := t.inode(from)
	if err != nil {
		return err
	}
	got, err := t.removeEntry(od, oname)
	if err != nil {
		return err
	}
	if got != in.num {
		return corrupt("inode", uint64(from), 0, -1, "entry %q names inode %d, resolved to %d", oname, got, in.num)
	}
	nd, err := t.inode(to)
	if err != nil {
		return err
	}
	if err := t.addEntry(nd, nname, in.num, ftypeOf(in)); err != nil {
		return err
	}
	t.setTimes(in, false, true, false, false)
	t.dirtyInode(in)
	if !in.isDir() || from == to {
		return nil
	}
	if err := t.setDotDot(in, from, to); err != nil {
		return err
	}
	t.decDirLinks(od)
	return t.incDirLinks(nd)
}

// setDotDot points directory in's ".." entry, which must name old, at
// parent: the first four bytes of i_block for an inline directory, else
// the second entry of block 0 (a linear leaf, or an htree root whose
// ".." covers the index).
func (t *tx) setDotDot(in *inode, old, parent uint32) error {
	if err := t.checkDirForWrite(in); err != nil {
		return err
	}
	if in.flag(layout.FlagInlineData) {
		ib := append([]byte(nil), in.raw.BlockBytes()...)
		if got := binary.LittleEndian.Uint32(ib); got != old {
			return corrupt("inode", uint64(in.num), 0, -1, "inline directory's parent is inode %d, resolved under %d", got, old)
		}
		putLE32(ib, parent)
		setIblock(in, ib)
		t.dirtyInode(in)
		return nil
	}
	w, err := t.dirWriter(in)
	if err != nil {
		return err
	}
	if w.st.blocks() == 0 {
		return corrupt("inode", uint64(in.num), 0, -1, "directory has no blocks")
	}
	var b []byte
	if w.indexed {
		if _, _, err := w.dxRoot(); err != nil { // checks the root and its checksum
			return err
		}
		b, err = w.st.block(0)
	} else {
		b, err = w.leaf(0)
	}
	if err != nil {
		return err
	}
	dot, err := layout.DecodeDirent(b)
	if err != nil {
		return err
	}
	at := int(dot.RecLen)
	if at < layout.DirentSize(1) || at+layout.DirentSize(2) > len(b) {
		return corrupt("directory block", 0, in.num, -1, "\".\" entry of %d bytes", dot.RecLen)
	}
	dd, _ := layout.DecodeDirent(b[at:])
	name := b[at+layout.DirentHeaderSize : at+layout.DirentHeaderSize+2]
	if dd.NameLen != 2 || string(name) != ".." || dd.Inode != old {
		return corrupt("directory block", 0, in.num, -1, "second entry is not \"..\" -> %d", old)
	}
	putLE32(b[at:], parent)
	if w.indexed {
		w.sealDx(b, layout.DxRootEntries)
	} else {
		w.sealLeaf(b)
	}
	return nil
}
