package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

var _ vfs.Renamer = (*FS)(nil)

// Rename moves oldpath to newpath, as rename(2) does (neither final
// symlink followed). Without the log it cannot be one atomic write, so it
// commits two transactions ordered for a crash: first the new name (and
// the moved inode's extra link, written before it); then the old name's
// removal, the link dropped after it, and the replaced target's link or
// inode and blocks. A crash between leaves the object under both names
// with a link count matching them (a replaced target keeps a link count
// above its names: a leak; a directory moved to another parent is named
// in both, and xfs_repair drops the name its ".." disagrees with); never
// a name without an inode. A directory moved to another parent gets its
// ".." repointed in the second transaction, in whatever form it is (in
// the inode for short form, else in the data block holding it); a move
// into its own subtree is refused with fs.ErrInvalid, as the kernel's
// EINVAL.
func (f *FS) Rename(oldpath, newpath string) error {
	defer f.wlock()()
	for _, p := range []string{oldpath, newpath} {
		if err := f.writable("rename", p); err != nil {
			return err
		}
	}
	ro, err := f.lresolve("rename", oldpath)
	if err != nil {
		return err
	}
	switch {
	case ro.Path == "/" || ro.Name == "":
		return vfs.PathErr("rename", oldpath, fmt.Errorf("the root: %w", fs.ErrInvalid))
	case !ro.Exists:
		return vfs.PathErr("rename", oldpath, fs.ErrNotExist)
	}
	rn, err := f.lresolve("rename", newpath)
	if err != nil {
		return err
	}
	if rn.Path == "/" || rn.Name == "" {
		return vfs.PathErr("rename", newpath, fmt.Errorf("the root: %w", fs.ErrInvalid))
	}
	if rn.Exists && rn.Node == ro.Node {
		return nil // the same object: nothing to do
	}
	src, err := f.inode(ro.Node)
	if err != nil {
		return vfs.PathErr("rename", oldpath, err)
	}
	if err := f.checkRename(src, ro, rn); err != nil {
		return vfs.PathErr("rename", newpath, err)
	}
	now := f.now()
	mode := uint32(src.core.Mode)
	// 2: the old name goes, then the extra link, the replaced target and
	// a moved directory's "..".
	second := func(t *tx) error {
		got, err := t.dirRemoveEntry(ro.Parent, ro.Name, now)
		if err != nil {
			return err
		}
		if got != src.ino {
			return at("directory", ro.Parent).corrupt("entry %q names inode %d, resolved to %d", ro.Name, got, src.ino)
		}
		b, c, err := t.inodeBuf(src.ino)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(b.data[0x10:], c.Nlink-1)
		t.touchCtime(b, c, now)
		if src.isDir() && ro.Parent != rn.Parent {
			if err := t.dirSetParent(src.ino, ro.Parent, rn.Parent); err != nil {
				return err
			}
		}
		t.frees = true // names before the links they counted
		if rn.Exists {
			dst, err := t.f.inode(rn.Node)
			if err != nil {
				return err
			}
			if dst.isDir() || dst.core.Links() <= 1 {
				if err := t.freeForks(dst); err != nil {
					return err
				}
				return t.ifree(dst, now)
			}
			db, dc, err := t.inodeBuf(dst.ino)
			if err != nil {
				return err
			}
			binary.BigEndian.PutUint32(db.data[0x10:], dc.Nlink-1)
			t.touchCtime(db, dc, now)
		}
		return nil
	}
	// The second transaction is built once before the first commits
	// (and dropped), so that what only it can refuse (a replaced
	// target's shared blocks, an attribute B+tree) fails with nothing
	// written, not after the new name has landed.
	if err := f.inTx(func(t *tx) error {
		if err := second(t); err != nil {
			return err
		}
		return errRehearsed
	}); !errors.Is(err, errRehearsed) {
		return vfs.PathErr("rename", oldpath, err)
	}
	// 1: the new name, the moved inode's link first.
	err = f.inTx(func(t *tx) error {
		if err := t.checkDirWrite(rn.Parent); err != nil {
			return err
		}
		if err := t.checkDirWrite(ro.Parent); err != nil {
			return err
		}
		if src.core.Flags&(layout.FlagImmutable|layout.FlagAppend) != 0 {
			return fmt.Errorf("xfs: inode %d is immutable or append-only: %w", src.ino, fs.ErrPermission)
		}
		b, c, err := t.inodeBuf(src.ino)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(b.data[0x10:], c.Nlink+1)
		t.touchCtime(b, c, now)
		if rn.Exists {
			old, err := t.dirReplaceEntry(rn.Parent, rn.Name, src.ino, mode, now)
			if err == nil && old != rn.Node {
				err = at("directory", rn.Parent).corrupt("entry %q names inode %d, resolved to %d", rn.Name, old, rn.Node)
			}
			return err
		}
		return t.dirAddEntry(rn.Parent, rn.Name, src.ino, mode, now)
	})
	if err != nil {
		return vfs.PathErr("rename", newpath, err)
	}
	if err := f.inTx(second); err != nil {
		return vfs.PathErr("rename", oldpath, err)
	}
	return nil
}

// errRehearsed ends a transaction built only to see whether it can be.
var errRehearsed = errors.New("xfs: rehearsal (not an error)")

// checkRename applies rename(2)'s rules before anything is written.
func (f *FS) checkRename(src *inode, ro, rn vfs.Resolved[uint64]) error {
	// A PROJINHERIT directory keeps its tree in its project: the kernel
	// refuses (EXDEV) to rename in an inode of another project.
	dir, err := f.inode(rn.Parent)
	if err != nil {
		return err
	}
	if dir.core.Flags&layout.FlagProjInherit != 0 && dir.core.Projid() != src.core.Projid() {
		return unsupported("moving inode %d (project %d) into directory inode %d, whose tree is project %d (PROJINHERIT): the kernel refuses this rename too (EXDEV); copy it instead",
			src.ino, src.core.Projid(), dir.ino, dir.core.Projid())
	}
	if rn.Exists {
		dst, err := f.inode(rn.Node)
		if err != nil {
			return err
		}
		switch {
		case src.isDir() && !dst.isDir():
			return vfs.ErrNotDir
		case !src.isDir() && dst.isDir():
			return vfs.ErrIsDir
		case dst.isDir():
			ents, err := f.dirEntries(dst)
			if err != nil {
				return err
			}
			if len(ents) > 0 {
				return fmt.Errorf("xfs: directory inode %d is not empty: %w", dst.ino, fs.ErrExist)
			}
		}
		if dst.core.Flags&(layout.FlagImmutable|layout.FlagAppend) != 0 {
			return fmt.Errorf("xfs: inode %d is immutable or append-only: %w", dst.ino, fs.ErrPermission)
		}
	}
	if !src.isDir() || ro.Parent == rn.Parent {
		return nil
	}
	if strings.HasPrefix(rn.Path, strings.TrimSuffix(ro.Path, "/")+"/") {
		return fmt.Errorf("xfs: moving directory inode %d into its own subtree: %w", src.ino, fs.ErrInvalid)
	}
	if src.core.Format == layout.FormatLocal && rn.Parent > 0xFFFFFFFF && !sfWide(src) {
		return unsupported("moving short-form directory inode %d under inode %d: its \"..\" would need 8 bytes the directory has no room for", src.ino, rn.Parent)
	}
	return nil
}

// sfWide reports whether the short-form directory in's entries are 8
// bytes wide (its header's i8count is not zero).
func sfWide(in *inode) bool {
	return len(in.data) > 1 && in.data[1] != 0
}

// dirSetParent points the ".." entry of directory dir, which names
// parent old, at parent: in the inode for a short-form directory, else in
// the data block holding it (the first, where the kernel puts it), found
// through the hash index like any name and rewritten in place (its name,
// hash and place stay).
func (t *tx) dirSetParent(dir, old, parent uint64) error {
	w := at("directory", dir)
	in, err := t.f.inode(dir)
	if err != nil {
		return err
	}
	if in.core.Format == layout.FormatLocal {
		b, c, err := t.inodeBuf(dir)
		if err != nil {
			return err
		}
		area := int(t.f.geo.inodeSize) - c.CoreSize()
		if c.ForkOff != 0 {
			area = int(c.ForkOff) * 8
		}
		fork := b.data[c.CoreSize() : c.CoreSize()+area]
		i8, _, err := t.sfEntries(dir, fork, int(c.Size))
		if err != nil {
			return err
		}
		got := uint64(binary.BigEndian.Uint32(fork[2:]))
		if i8 {
			got = binary.BigEndian.Uint64(fork[2:])
		}
		if got != old {
			return w.corrupt("\"..\" names inode %d, but the directory is named in inode %d", got, old)
		}
		if i8 {
			binary.BigEndian.PutUint64(fork[2:], parent)
		} else if parent > 0xFFFFFFFF {
			return unsupported("directory %d: a \"..\" of 8 bytes in a short-form directory of 4-byte entries", dir)
		} else {
			binary.BigEndian.PutUint32(fork[2:], uint32(parent))
		}
		t.markDirty(b)
		return nil
	}
	d, err := t.openDirW(dir)
	if err != nil {
		return err
	}
	i, de, err := d.find("..")
	if err != nil {
		return err
	}
	if i < 0 {
		return w.corrupt("no \"..\" entry")
	}
	if de.ino != old {
		return w.corrupt("\"..\" names inode %d, but the directory is named in inode %d", de.ino, old)
	}
	db, pos, err := d.splitAddr(d.ents[i].addr)
	if err != nil {
		return err
	}
	var b *txBuf
	if d.form == formBlock {
		b, err = d.block(0, kindDirData, d.blockMagic())
	} else {
		b, err = d.dataBlock(db)
	}
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint64(b.data[pos:], parent)
	t.markDirty(b)
	return nil
}
