package ext

import (
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// inlineParentSize is the parent inode number that opens an inline
// directory's i_block.
const inlineParentSize = 4

// inlineXattr returns the system.data value of an inline-data inode (in
// the inode body only, where the kernel keeps it).
func (f *FS) inlineXattr(in *inode) ([]byte, error) {
	xs, err := f.ibodyXattrs(in)
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		if x.index == layout.XattrIndexSystem && x.name == "system.data" && x.inum == 0 {
			return x.value, nil
		}
	}
	return nil, corrupt("inode", uint64(in.num), 0, -1, "inline-data inode has no system.data attribute")
}

// inlineDirEntries walks an inline directory: the parent number, the
// entries in the rest of i_block, then those in system.data.
func (f *FS) inlineDirEntries(dir *inode, fn func(dirEntry) bool) error {
	ib := dir.iblock()
	parent := le32(ib, 0)
	if !f.validIno(parent) {
		return corrupt("inode", uint64(dir.num), 0, -1, "inline directory's parent %d is invalid", parent)
	}
	if fn(dirEntry{name: []byte(".."), ino: parent, ftype: layout.FTDir}) {
		return nil
	}
	stop, err := f.parseDirEntries(ib[inlineParentSize:], 0, dir, fn)
	if err != nil || stop {
		return err
	}
	extra, err := f.inlineXattr(dir)
	if err != nil || len(extra) == 0 {
		return err
	}
	_, err = f.parseDirEntries(extra, 1, dir, fn)
	return err
}
