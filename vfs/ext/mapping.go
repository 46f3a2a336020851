package ext

import (
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// run is a stretch of a file's logical blocks mapped the same way: to
// consecutive physical blocks from pblk, or to zeros (a hole or an
// uninitialised extent) when zero is set.
type run struct {
	lblk uint64
	n    uint64
	pblk uint64
	zero bool
}

// maxLblk bounds logical block numbers: ext4 addresses 2^32 of them.
const maxLblk = 1 << 32

// mapper maps a logical block to the run that starts there.
type mapper interface {
	mapBlock(lblk uint64) (run, error)
}

// mapperFor returns the block mapper of a block-backed inode.
func (f *FS) mapperFor(in *inode) (mapper, error) {
	switch {
	case in.flag(layout.FlagInlineData):
		return nil, corrupt("inode", uint64(in.num), 0, -1, "inline-data inode has no block map")
	case in.flag(layout.FlagExtents):
		return f.newExtentMapper(in)
	}
	return &blockMap{f: f, in: in}, nil
}
