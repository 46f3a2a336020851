package ext

import (
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// bmPath is where logical block l sits in an ext2/ext3 block map: the
// i_block slot, then one index per indirect level.
type bmPath struct {
	slot int
	idx  []uint64
}

// blockMapPath computes the path to logical block l, or false past what
// a triple-indirect map addresses.
func (f *FS) blockMapPath(l uint64) (bmPath, bool) {
	if l < layout.NDirBlocks {
		return bmPath{slot: int(l)}, true
	}
	per := uint64(f.geo.blockSize / 4)
	rel, span := l-layout.NDirBlocks, per
	for level := 1; level <= 3; level++ {
		if rel < span {
			p := bmPath{slot: layout.IndBlock + level - 1, idx: make([]uint64, level)}
			for i := level - 1; i >= 0; i-- {
				p.idx[i], rel = rel%per, rel/per
			}
			return p, true
		}
		rel -= span
		span *= per
	}
	return bmPath{}, false
}

// blockMapMapBlock is mapBlock for a block-mapped (ext2/ext3) inode: the
// indirect blocks on the way are allocated too when alloc is set.
func (t *tx) blockMapMapBlock(in *inode, l uint64, alloc bool) (uint64, bool, error) {
	p, ok := t.f.blockMapPath(l)
	if !ok || l >= 1<<32 {
		return 0, false, corrupt("inode", uint64(in.num), 0, -1, "logical block %d is beyond what a block map addresses", l)
	}
	ptr := uint64(in.raw.Block[p.slot])
	if len(p.idx) == 0 {
		return t.bmLeaf(in, ptr, l, alloc, func(v uint32) { in.raw.Block[p.slot] = v; t.dirtyInode(in) }, t.inodeGoal(in))
	}
	set := func(v uint32) { in.raw.Block[p.slot] = v; t.dirtyInode(in) }
	goal := t.inodeGoal(in)
	if d := in.raw.Block[layout.NDirBlocks-1]; d != 0 {
		goal = uint64(d) + 1
	}
	for level, idx := range p.idx {
		if ptr == 0 {
			if !alloc {
				return 0, false, nil
			}
			n, err := t.allocMapBlock(in, goal, set, kindIndirect)
			if err != nil {
				return 0, false, err
			}
			ptr = n
		}
		if !t.f.validBlock(ptr) {
			return 0, false, corrupt("block map", l, in.num, -1, "indirect block %d outside the filesystem", ptr)
		}
		if err := t.checkTarget(kindIndirect, in.num, int64(l), ptr); err != nil {
			return 0, false, err
		}
		b, err := t.metaBlock(ptr, kindIndirect)
		if err != nil {
			return 0, false, err
		}
		off := 4 * int(idx)
		set = func(v uint32) { putLE32(b[off:], v) }
		goal = ptr + 1
		if idx > 0 && le32(b, off-4) != 0 {
			goal = uint64(le32(b, off-4)) + 1
		}
		ptr = uint64(le32(b, off))
		if level == len(p.idx)-1 {
			return t.bmLeaf(in, ptr, l, alloc, set, goal)
		}
	}
	return 0, false, nil
}

// bmLeaf returns the data block in a map slot, allocating it if needed.
func (t *tx) bmLeaf(in *inode, ptr, l uint64, alloc bool, set func(uint32), goal uint64) (uint64, bool, error) {
	if ptr != 0 {
		if !t.f.validBlock(ptr) {
			return 0, false, corrupt("block map", l, in.num, -1, "logical block %d maps to block %d outside the filesystem", l, ptr)
		}
		if err := t.checkTarget(mapKind(in), in.num, int64(l), ptr); err != nil {
			return 0, false, err
		}
		return ptr, false, nil
	}
	if !alloc {
		return 0, false, nil
	}
	n, err := t.allocMapBlock(in, goal, set, kindData)
	return n, true, err
}

// allocMapBlock allocates one block for a block map (data, or a zeroed
// indirect block), stores it through set and counts it in i_blocks.
func (t *tx) allocMapBlock(in *inode, goal uint64, set func(uint32), kind blockKind) (uint64, error) {
	if err := t.checkBlocksRoom(in, 1); err != nil {
		return 0, err
	}
	n, err := t.allocBlock(goal)
	if err != nil {
		return 0, err
	}
	if n >= 1<<32 {
		return 0, corrupt("block map", n, in.num, -1, "block %d does not fit a 32-bit block map", n)
	}
	if kind != kindData {
		t.newBlock(n, kind)
	}
	set(uint32(n))
	t.addBlocks(in, 1)
	return n, nil
}

// truncateBlockMap frees every block of a block-mapped inode from
// logical block keep on, and the indirect blocks left empty.
func (t *tx) truncateBlockMap(in *inode, keep uint64) error {
	for i := uint64(0); i < layout.NDirBlocks; i++ {
		if p := in.raw.Block[i]; i >= keep && p != 0 {
			if err := t.freeFileBlocks(in, uint64(p), 1); err != nil {
				return err
			}
			in.raw.Block[i] = 0
		}
	}
	per := uint64(t.f.geo.blockSize / 4)
	base, span := uint64(layout.NDirBlocks), per
	budget := t.f.blocks512(in)/uint64(t.f.geo.blockSize/512) + 1
	for level := 1; level <= 3; level++ {
		slot := &in.raw.Block[layout.IndBlock+level-1]
		if *slot != 0 && base+span > keep {
			empty, err := t.truncInd(in, uint64(*slot), level, base, keep, &budget)
			if err != nil {
				return err
			}
			if empty {
				if err := t.freeFileBlocks(in, uint64(*slot), 1); err != nil {
					return err
				}
				*slot = 0
			}
		}
		base += span
		span *= per
	}
	t.dirtyInode(in)
	return nil
}

// truncInd frees what indirect block blk (level levels above the data,
// mapping logical blocks from base) maps at or after keep, and reports
// whether it is left empty. budget bounds the blocks visited.
func (t *tx) truncInd(in *inode, blk uint64, level int, base, keep uint64, budget *uint64) (bool, error) {
	if *budget == 0 || !t.f.validBlock(blk) {
		return false, corrupt("block map", blk, in.num, -1, "indirect block %d is invalid or visited too often", blk)
	}
	*budget--
	if err := t.checkTarget(kindIndirect, in.num, int64(base), blk); err != nil {
		return false, err
	}
	b, err := t.metaBlock(blk, kindIndirect)
	if err != nil {
		return false, err
	}
	per := uint64(len(b) / 4)
	span := uint64(1)
	for i := 1; i < level; i++ {
		span *= per
	}
	empty := true
	for i := uint64(0); i < per; i++ {
		p := uint64(le32(b, int(4*i)))
		lo := base + i*span
		if p == 0 {
			continue
		}
		if lo+span <= keep {
			empty = false
			continue
		}
		gone := lo >= keep
		if level > 1 {
			e, err := t.truncInd(in, p, level-1, lo, keep, budget)
			if err != nil {
				return false, err
			}
			gone = e
		}
		if gone {
			if err := t.freeFileBlocks(in, p, 1); err != nil {
				return false, err
			}
			putLE32(b[4*i:], 0)
		} else {
			empty = false
		}
	}
	return empty, nil
}
