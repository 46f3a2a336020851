package xfs

import (
	"encoding/binary"
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
// a name without an inode. A directory
// moves to another parent only in short form (its ".." is then in its
// inode); otherwise that move is refused.
func (f *FS) Rename(oldpath, newpath string) error {
	defer f.wlock()()
	for _, p := range []string{oldpath, newpath} {
		if err := f.writable("rename", p); err != nil {
			return err
		}
	}
	ro, err := vfs.Resolve[uint64](tree{f}, oldpath, false)
	if err != nil {
		return vfs.Relabel("rename", oldpath, err)
	}
	switch {
	case ro.Path == "/" || ro.Name == "":
		return vfs.PathErr("rename", oldpath, fmt.Errorf("the root: %w", fs.ErrInvalid))
	case !ro.Exists:
		return vfs.PathErr("rename", oldpath, fs.ErrNotExist)
	}
	rn, err := vfs.Resolve[uint64](tree{f}, newpath, false)
	if err != nil {
		return vfs.Relabel("rename", newpath, err)
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
	// 2: the old name goes, then the extra link, the replaced target and
	// a moved directory's "..".
	err = f.inTx(func(t *tx) error {
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
		if src.isDir() && ro.Parent != rn.Parent {
			fork := b.data[c.CoreSize():]
			if fork[1] != 0 { // the short-form "..", 8 bytes wide with i8count
				binary.BigEndian.PutUint64(fork[2:], rn.Parent)
			} else {
				binary.BigEndian.PutUint32(fork[2:], uint32(rn.Parent))
			}
		}
		t.touchCtime(b, c, now)
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
	})
	if err != nil {
		return vfs.PathErr("rename", oldpath, err)
	}
	return nil
}

// checkRename applies rename(2)'s rules before anything is written.
func (f *FS) checkRename(src *inode, ro, rn vfs.Resolved[uint64]) error {
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
	if src.core.Format != layout.FormatLocal || rn.Parent > 0xFFFFFFFF {
		return unsupported("moving directory inode %d (in %s form) to another parent: its \"..\" entry is only rewritten in short form", src.ino, src.core.Format)
	}
	return nil
}
