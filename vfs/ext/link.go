package ext

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var _ vfs.Linker = (*FS)(nil)

// Link makes newpath a second name of the non-directory oldpath (a final
// symlink is linked itself), in one transaction: the entry is added and
// the inode's link count and change time go up. A directory is refused
// (vfs.ErrIsDir), as is an inode at ext4's 65,000 links
// (vfs.ErrLinkLimit), immutable or append-only (fs.ErrPermission).
func (f *FS) Link(oldpath, newpath string) error {
	defer f.wlock()()
	o, err := f.lresolve("link", oldpath)
	if err != nil {
		return err
	}
	if !o.Exists {
		return vfs.PathErr("link", oldpath, fs.ErrNotExist)
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
	failed := oldpath
	err = f.inTx(func(t *tx) error {
		in, err := t.inode(o.Node)
		if err != nil {
			return err
		}
		switch {
		case in.isDir():
			return fmt.Errorf("hard link to directory inode %d: %w", in.num, vfs.ErrIsDir)
		case in.flag(layout.FlagImmutable) || in.flag(layout.FlagAppend):
			return fmt.Errorf("inode %d is immutable or append-only: %w", in.num, fs.ErrPermission)
		case in.raw.LinksCount >= linkMax:
			return fmt.Errorf("inode %d has %d links: %w", in.num, in.raw.LinksCount, vfs.ErrLinkLimit)
		case in.raw.LinksCount == 0:
			return corrupt("inode", uint64(in.num), 0, -1, "reached by a name but has no links")
		}
		dir, err := t.inode(n.Parent)
		if err != nil {
			return err
		}
		failed = newpath
		if err := t.addEntry(dir, n.Name, in.num, ftypeOf(in)); err != nil {
			return err
		}
		in.raw.LinksCount++
		t.setTimes(in, false, true, false, false)
		t.dirtyInode(in)
		return nil
	})
	if err != nil {
		return vfs.PathErr("link", failed, err)
	}
	return nil
}

// ftypeOf is the directory entry file type of in's mode.
func ftypeOf(in *inode) uint8 {
	switch in.raw.Type() {
	case layout.ModeRegular:
		return layout.FTRegular
	case layout.ModeDir:
		return layout.FTDir
	case layout.ModeSymlink:
		return layout.FTSymlink
	case layout.ModeChar:
		return layout.FTChar
	case layout.ModeBlock:
		return layout.FTBlock
	case layout.ModeFIFO:
		return layout.FTFIFO
	case layout.ModeSocket:
		return layout.FTSocket
	}
	return layout.FTUnknown
}
