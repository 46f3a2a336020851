package ext

import (
	"fmt"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// mapBlock maps logical block lblk of in (a file, directory or slow
// symlink; not inline data), allocating it near the file's previous block
// (or the inode) when alloc is set and it is a hole. isNew reports a block
// allocated (or turned from an uninitialised extent) by this call: its
// old content is garbage, so the caller writes the whole block, through
// t.newBlock. pblk is 0 for a hole when alloc is false. i_blocks, the
// extent tree (written back at commit) and indirect blocks are kept up to
// date.
func (t *tx) mapBlock(in *inode, lblk uint64, alloc bool) (pblk uint64, isNew bool, err error) {
	switch {
	case in.flag(layout.FlagInlineData):
		return 0, false, fmt.Errorf("ext: internal error: mapBlock on inline-data inode %d", in.num)
	case in.flag(layout.FlagExtents):
		return t.extentMapBlock(in, lblk, alloc)
	}
	if err := t.f.checkClusterMapping(in); err != nil {
		return 0, false, err
	}
	return t.blockMapMapBlock(in, lblk, alloc)
}

// truncate sets in's size to size, freeing the blocks past it (and the
// extent or indirect blocks left empty). The tail of the last kept block
// is zeroed, so a later extension reads zeros. Inline data is cut in
// place.
func (t *tx) truncate(in *inode, size int64) error {
	if size < 0 {
		return fmt.Errorf("ext: internal error: negative size")
	}
	if in.flag(layout.FlagInlineData) {
		return t.truncateInline(in, size)
	}
	if t.f.isFastSymlink(in) && in.isSymlink() {
		setIblock(in, nil)
		t.setSize(in, size)
		t.dirtyInode(in)
		return nil
	}
	bs := t.f.geo.blockSize
	keep := uint64((size + bs - 1) / bs)
	if err := t.zeroTail(in, size); err != nil {
		return err
	}
	var err error
	if in.flag(layout.FlagExtents) {
		err = t.truncateExtents(in, keep)
	} else if err = t.f.checkClusterMapping(in); err == nil {
		err = t.truncateBlockMap(in, keep)
	}
	if err != nil {
		return err
	}
	t.setSize(in, size)
	t.dirtyInode(in)
	return nil
}

// zeroTail zeroes the bytes of the block holding offset size past it,
// when size is inside the file and not block aligned.
func (t *tx) zeroTail(in *inode, size int64) error {
	bs := t.f.geo.blockSize
	if size%bs == 0 || size >= in.size {
		return nil
	}
	p, _, err := t.mapBlock(in, uint64(size/bs), false)
	if err != nil || p == 0 {
		return err
	}
	b, err := t.metaBlock(p, kindData)
	if err != nil {
		return err
	}
	clear(b[size%bs:])
	return nil
}

// writeData writes data into in at offset off, allocating blocks as
// needed, and grows the size to cover it. Blocks wholly written are not
// read first.
func (t *tx) writeData(in *inode, off int64, data []byte) error {
	bs := t.f.geo.blockSize
	for len(data) > 0 {
		l, inner := uint64(off/bs), off%bs
		n := min(int64(len(data)), bs-inner)
		p, isNew, err := t.mapBlock(in, l, true)
		if err != nil {
			return err
		}
		b, err := t.dataBlock(p, !isNew && (inner != 0 || n != bs))
		if err != nil {
			return err
		}
		copy(b[inner:], data[:n])
		data, off = data[n:], off+n
		if off > in.size {
			t.setSize(in, off)
		}
	}
	t.dirtyInode(in)
	return nil
}

// dataBlock returns the transaction's buffer for data block p: its
// content when read is set, else zeros (the caller overwrites it all). A
// block the transaction already holds as metadata is refused (a
// cross-linked file).
func (t *tx) dataBlock(p uint64, read bool) ([]byte, error) {
	if b, ok := t.blocks[p]; ok {
		if b.kind != kindData {
			return nil, corrupt("data block", p, 0, -1, "block is also used as a %s", b.kind)
		}
		return b.buf, nil
	}
	if read {
		return t.metaBlock(p, kindData)
	}
	return t.newBlock(p, kindData), nil
}
