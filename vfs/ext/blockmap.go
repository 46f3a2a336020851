package ext

import "github.com/guestinject/guestinject/vfs/ext/internal/layout"

// blockMap maps logical blocks through the ext2/ext3 block map: 12 direct
// pointers, then single, double and triple indirect blocks.
type blockMap struct {
	f  *FS
	in *inode
}

// mapBlock returns the run starting at logical block l.
func (m *blockMap) mapBlock(l uint64) (run, error) {
	if l < layout.NDirBlocks {
		ptrs := m.in.raw.Block[:layout.NDirBlocks]
		return m.runIn(l, ptrs, int(l))
	}
	per := uint64(m.f.geo.blockSize / 4)
	rel := l - layout.NDirBlocks
	span := per
	for level := 1; level <= 3; level++ {
		if rel < span {
			return m.walk(l, m.in.raw.Block[layout.IndBlock+level-1], level, rel)
		}
		rel -= span
		span *= per
	}
	return run{lblk: l, n: maxLblk, zero: true}, nil // past what a block map can address
}

// walk descends level indirect blocks from ptr to the entry for offset rel
// of that subtree.
func (m *blockMap) walk(l uint64, ptr uint32, level int, rel uint64) (run, error) {
	per := uint64(m.f.geo.blockSize / 4)
	span := uint64(1)
	for i := 1; i < level; i++ {
		span *= per
	}
	for {
		if ptr == 0 {
			return run{lblk: l, n: span*per - rel, zero: true}, nil
		}
		b, err := m.f.block(uint64(ptr), "indirect block", m.in.num)
		if err != nil {
			return run{}, err
		}
		ptrs := make([]uint32, per)
		for i := range ptrs {
			ptrs[i] = le32(b, 4*i)
		}
		idx := rel / span
		if level == 1 {
			return m.runIn(l, ptrs, int(idx))
		}
		ptr, rel, level, span = ptrs[idx], rel%span, level-1, span/per
	}
}

// runIn builds the run at ptrs[i]: the following pointers that continue
// it (consecutive blocks, or zeros for a hole).
func (m *blockMap) runIn(l uint64, ptrs []uint32, i int) (run, error) {
	p := ptrs[i]
	if p != 0 && !m.f.validBlock(uint64(p)) {
		return run{}, corrupt("block map", l, m.in.num, -1, "logical block %d maps to block %d outside the filesystem", l, p)
	}
	n := uint64(1)
	for j := i + 1; j < len(ptrs); j++ {
		q := ptrs[j]
		if (p == 0 && q != 0) || (p != 0 && (uint64(q) != uint64(p)+n || !m.f.validBlock(uint64(q)))) {
			break
		}
		n++
	}
	return run{lblk: l, n: n, pblk: uint64(p), zero: p == 0}, nil
}
