package ext

import (
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// txGroup is a transaction's view of one block group: a copy of its
// descriptor and, once loaded, its bitmaps.
type txGroup struct {
	g                           uint32
	desc                        layout.GroupDesc
	bb, ib                      []byte // block and inode bitmaps, nil until loaded
	bbDirty, ibDirty, descDirty bool
}

// group returns the transaction's view of group g.
func (t *tx) group(g uint32) (*txGroup, error) {
	if gr, ok := t.space.groups[g]; ok {
		return gr, nil
	}
	d, err := t.f.groupDesc(g)
	if err != nil {
		return nil, err
	}
	gr := &txGroup{g: g, desc: *d}
	t.space.groups[g] = gr
	return gr, nil
}

// groupFirst is the first block of group g; groupLen how many blocks it
// has (the last group may be short).
func (f *FS) groupFirst(g uint32) uint64 { return f.geo.firstData + uint64(g)*uint64(f.geo.bpg) }
func (f *FS) groupLen(g uint32) uint64 {
	return min(uint64(f.geo.bpg), f.geo.blocksCount-f.groupFirst(g))
}

// groupOf is the group holding block n.
func (f *FS) groupOf(n uint64) uint32 { return uint32((n - f.geo.firstData) / uint64(f.geo.bpg)) }

// blockBitmap loads group gr's block bitmap, building it for a group still
// flagged BLOCK_UNINIT.
func (t *tx) blockBitmap(gr *txGroup) ([]byte, error) {
	if gr.bb != nil {
		return gr.bb, nil
	}
	if t.f.hasGroupCsum() && gr.desc.Flags&layout.GroupBlockUninit != 0 {
		b, err := t.initBlockBitmap(gr)
		if err != nil {
			return nil, err
		}
		gr.bb, gr.bbDirty = b, true
		return b, nil
	}
	b, err := t.readBitmap(gr, gr.desc.BlockBitmap(), "block bitmap")
	if err != nil {
		return nil, err
	}
	if t.f.geo.metaCsum {
		want := uint32(gr.desc.BlockBitmapCsumLo) | uint32(gr.desc.BlockBitmapCsumHi)<<16
		if err := t.checkBitmapCsum(gr, b, t.bbBytes(), want, "block bitmap"); err != nil {
			return nil, err
		}
	}
	gr.bb = b
	return b, nil
}

// inodeBitmap loads group gr's inode bitmap, building it for a group
// still flagged INODE_UNINIT.
func (t *tx) inodeBitmap(gr *txGroup) ([]byte, error) {
	if gr.ib != nil {
		return gr.ib, nil
	}
	if t.f.hasGroupCsum() && gr.desc.Flags&layout.GroupInodeUninit != 0 {
		if gr.desc.FreeInodesCount() != t.f.geo.ipg {
			return nil, corrupt("group descriptor", uint64(gr.g), 0, -1, "INODE_UNINIT group with %d free inodes of %d", gr.desc.FreeInodesCount(), t.f.geo.ipg)
		}
		b := make([]byte, t.f.geo.blockSize)
		setRange(b, uint64(t.f.geo.ipg), uint64(len(b))*8)
		gr.ib, gr.ibDirty = b, true
		return b, nil
	}
	b, err := t.readBitmap(gr, gr.desc.InodeBitmap(), "inode bitmap")
	if err != nil {
		return nil, err
	}
	if t.f.geo.metaCsum {
		want := uint32(gr.desc.InodeBitmapCsumLo)
		if t.f.geo.descSize >= layout.GroupDesc64Size {
			want |= uint32(gr.desc.InodeBitmapCsumHi) << 16
		}
		if err := t.checkBitmapCsum(gr, b, t.ibBytes(), want, "inode bitmap"); err != nil {
			return nil, err
		}
	}
	gr.ib = b
	return b, nil
}

// readBitmap reads bitmap block n of group gr, past the cache.
func (t *tx) readBitmap(gr *txGroup, n uint64, what string) ([]byte, error) {
	if !t.f.validBlock(n) {
		return nil, corrupt("group descriptor", uint64(gr.g), 0, -1, "%s at block %d is outside the filesystem", what, n)
	}
	b := make([]byte, t.f.geo.blockSize)
	return b, t.f.readAt(b, int64(n)*t.f.geo.blockSize, what, n)
}

// bbBytes and ibBytes are how many bytes of a bitmap its checksum covers.
func (t *tx) bbBytes() int { return int(t.f.sb.ClustersPerGroup / 8) }
func (t *tx) ibBytes() int { return int(t.f.geo.ipg / 8) }

// bitmapCsum is the crc32c of a bitmap's first n bytes.
func (t *tx) bitmapCsum(b []byte, n int) uint32 { return crc32c(t.f.geo.csumSeed, b[:n]) }

// checkBitmapCsum compares a bitmap's checksum with the descriptor's
// (only 16 bits with 32-byte descriptors).
func (t *tx) checkBitmapCsum(gr *txGroup, b []byte, n int, want uint32, what string) error {
	got := t.bitmapCsum(b, n)
	if t.f.geo.descSize < layout.GroupDesc64Size {
		got &= 0xFFFF
	}
	if got != want {
		return badChecksum(what, uint64(gr.g), 0, -1, want, got)
	}
	return nil
}

// initBlockBitmap builds the bitmap of a BLOCK_UNINIT group: the group's
// superblock backup and descriptor blocks, the bitmaps and inode tables
// it holds (its own, and with flex_bg those of its flex group), and the
// padding past the group's end; with bigalloc, the cluster of each of
// those blocks. The result must agree with the descriptor's free count,
// else the group is refused.
func (t *tx) initBlockBitmap(gr *txGroup) ([]byte, error) {
	f := t.f
	b := make([]byte, f.geo.blockSize)
	first, n := f.groupFirst(gr.g), f.groupLen(gr.g)
	mark := func(blk, cnt uint64) {
		for i := uint64(0); i < cnt; i++ {
			if x := blk + i; x >= first && x < first+n {
				setBit(b, f.clusterBit(gr.g, x))
			}
		}
	}
	mark(f.superAndDescBlocks(gr.g))
	lo, hi := f.flexRange(gr.g)
	itBlocks := f.itableBlocks()
	for h := lo; h < hi; h++ {
		d := &gr.desc
		if h != gr.g {
			hg, err := t.group(h)
			if err != nil {
				return nil, err
			}
			d = &hg.desc
		}
		mark(d.BlockBitmap(), 1)
		mark(d.InodeBitmap(), 1)
		mark(d.InodeTable(), itBlocks)
	}
	nc := f.groupClusters(gr.g)
	setRange(b, nc, uint64(len(b))*8)
	if free := nc - countBits(b, nc); free != uint64(gr.desc.FreeBlocksCount()) {
		return nil, corrupt("group descriptor", uint64(gr.g), 0, -1,
			"BLOCK_UNINIT group: its metadata leaves %d clusters free, the descriptor says %d", free, gr.desc.FreeBlocksCount())
	}
	return b, nil
}

// superAndDescBlocks returns the run of group g's superblock backup and
// descriptor blocks (old-style table plus reserved GDT blocks, or the
// meta_bg descriptor block), as e2fsprogs lays them out.
func (f *FS) superAndDescBlocks(g uint32) (uint64, uint64) {
	sb := f.sb
	first := f.groupFirst(g)
	if first == 0 && f.geo.blockSize == 1024 {
		first = 1 // bigalloc with 1 KiB blocks: group 0 starts at block 0, the superblock is block 1
	}
	has := f.groupHasSuper(uint64(g))
	n := uint64(0)
	if has {
		n = 1
	}
	dpb := f.geo.descPerBlock
	metaBG := sb.FeatureIncompat.Has(layout.IncompatMetaBG)
	if !metaBG || g/dpb < sb.FirstMetaBg {
		if has {
			old := uint64(f.geo.descBlocks) + uint64(sb.ReservedGDTBlocks)
			if metaBG {
				old = uint64(sb.FirstMetaBg)
			}
			n += old
		}
		return first, n
	}
	if r := g % dpb; r == 0 || r == 1 || r == dpb-1 {
		n++
	}
	return first, n
}

// flexRange is the range of groups whose metadata may live in group g:
// its flex group with flex_bg, else g alone.
func (f *FS) flexRange(g uint32) (uint32, uint32) {
	if !f.sb.FeatureIncompat.Has(layout.IncompatFlexBG) || f.sb.LogGroupsPerFlex == 0 || f.sb.LogGroupsPerFlex > 31 {
		return g, g + 1
	}
	size := uint32(1) << f.sb.LogGroupsPerFlex
	lo := g / size * size
	return lo, min(lo+size, f.geo.groups)
}

// itableBlocks is how many blocks one group's inode table spans.
func (f *FS) itableBlocks() uint64 {
	return (uint64(f.geo.ipg)*uint64(f.geo.inodeSize) + uint64(f.geo.blockSize) - 1) / uint64(f.geo.blockSize)
}

// Bit helpers over little-endian bitmaps.
func testBit(b []byte, i uint64) bool { return b[i/8]&(1<<(i%8)) != 0 }
func setBit(b []byte, i uint64)       { b[i/8] |= 1 << (i % 8) }
func clearBit(b []byte, i uint64)     { b[i/8] &^= 1 << (i % 8) }

// setRange sets bits [from, to).
func setRange(b []byte, from, to uint64) {
	for i := from; i < to; i++ {
		setBit(b, i)
	}
}

// countBits counts the set bits among the first n.
func countBits(b []byte, n uint64) uint64 {
	c := uint64(0)
	for i := uint64(0); i < n; i++ {
		if testBit(b, i) {
			c++
		}
	}
	return c
}

// findZero returns the first clear bit in [from, to), or to.
func findZero(b []byte, from, to uint64) uint64 {
	for i := from; i < to; i++ {
		if i%8 == 0 && i+8 <= to && b[i/8] == 0xFF {
			i += 7
			continue
		}
		if !testBit(b, i) {
			return i
		}
	}
	return to
}
