package ext

import (
	"fmt"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// errNoSpace builds the ENOSPC-style error of a failed allocation.
func errNoSpace(format string, args ...any) error {
	return fmt.Errorf("ext: %s: %w", fmt.Sprintf(format, args...), vfs.ErrNoSpace)
}

// allocBlocks allocates a run of up to n contiguous free clusters (blocks
// without bigalloc), starting at the cluster of goal when it is free, else
// at the first free one after it (in its group, then the following
// groups, wrapping around), and returns its first block and its length in
// blocks (whole clusters). Only the bitmaps of groups whose descriptors
// count free clusters are read.
func (t *tx) allocBlocks(goal, n uint64) (uint64, uint64, error) {
	f := t.f
	if n == 0 {
		return 0, 0, fmt.Errorf("ext: internal error: allocating 0 blocks")
	}
	if int64(f.sb.FreeBlocksCount())+t.space.blocksDelta < int64(f.ratio()) {
		if f.bigalloc() {
			return 0, 0, errNoSpace("no free cluster (%d blocks each) left", f.ratio())
		}
		return 0, 0, errNoSpace("no free block for %d more", n)
	}
	if !f.validBlock(goal) {
		goal = f.geo.firstData + 1
	}
	g0 := f.groupOf(goal)
	for i := uint32(0); i <= f.geo.groups; i++ {
		g := (g0 + i) % f.geo.groups
		from := uint64(0)
		if i == 0 {
			from = goal - f.groupFirst(g)
		}
		start, got, err := t.allocIn(g, from, n)
		if err != nil || got > 0 {
			return start, got, err
		}
	}
	return 0, 0, errNoSpace("no free block for %d more", n)
}

// allocIn allocates up to n contiguous clusters in group g from the one
// holding block from (counted from the group's first block) on, and
// returns the first block and the number of blocks.
func (t *tx) allocIn(g uint32, from, n uint64) (uint64, uint64, error) {
	gr, err := t.group(g)
	if err != nil || gr.desc.FreeBlocksCount() == 0 {
		return 0, 0, err
	}
	b, err := t.blockBitmap(gr)
	if err != nil {
		return 0, 0, err
	}
	r := t.f.ratio()
	size := t.f.groupClusters(g)
	i := findZero(b, from/r, size)
	if i == size {
		return 0, 0, nil
	}
	got := uint64(0)
	for i+got < size && got < n && !testBit(b, i+got) {
		got++
	}
	start := t.f.groupFirst(g) + i*r
	if !t.f.validRange(start, got*r) {
		return 0, 0, corrupt("block bitmap", uint64(g), 0, -1, "blocks %d+%d marked free lie outside the filesystem", start, got*r)
	}
	if err := t.checkFreeRun(gr, start, got*r); err != nil {
		return 0, 0, err
	}
	setRange(b, i, i+got)
	if uint64(gr.desc.FreeBlocksCount()) < got {
		return 0, 0, corrupt("group descriptor", uint64(g), 0, -1, "bitmap has more free clusters than the %d counted", gr.desc.FreeBlocksCount())
	}
	gr.desc.SetFreeBlocksCount(gr.desc.FreeBlocksCount() - uint32(got))
	gr.bbDirty, gr.descDirty = true, true
	t.space.recordAlloc(start, got*r)
	return start, got * r, nil
}

// checkFreeRun refuses blocks a (damaged) bitmap calls free although
// they hold filesystem metadata (the group's superblock copy and
// descriptors, the bitmaps and inode tables of its flex group, the
// journal, the MMP block: see writecheck.go), or are used by this
// transaction.
func (t *tx) checkFreeRun(gr *txGroup, start, n uint64) error {
	r, meta, err := t.metadataIn(start, n)
	if err != nil {
		return err
	}
	if meta {
		return corrupt("block bitmap", uint64(gr.g), 0, -1, "block %d is marked free but holds %s", max(start, r.start), r)
	}
	for b := start; b < start+n; b++ {
		if t.blocks[b] != nil {
			return corrupt("block bitmap", uint64(gr.g), 0, -1, "block %d is marked free but the transaction uses it", b)
		}
	}
	return nil
}

// allocBlock allocates one cluster (one block without bigalloc) near
// goal and returns its first block; the caller owns the whole cluster
// and counts it in i_blocks (f.ratio() blocks).
func (t *tx) allocBlock(goal uint64) (uint64, error) {
	b, _, err := t.allocBlocks(goal, 1)
	return b, err
}

// freeBlocks frees blocks [start, start+n) of inode ino (0: none) at
// commit, widened to whole clusters with bigalloc (the caller frees only
// clusters no block of which stays mapped). Buffers the transaction held
// for them are dropped. Blocks that are filesystem metadata are refused
// (a damaged pointer named them).
func (t *tx) freeBlocks(ino uint32, start, n uint64) error {
	if n == 0 {
		return nil
	}
	if !t.f.validRange(start, n) {
		return corrupt("block", start, ino, -1, "freeing %d blocks outside the filesystem", n)
	}
	start, n = t.f.clusterSpan(start, n)
	if !t.f.validRange(start, n) {
		return corrupt("block", start, ino, -1, "freeing %d blocks outside the filesystem", n)
	}
	if err := t.checkFree(ino, start, n); err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		t.forget(start + i)
	}
	t.space.recordFree(start, n)
	return nil
}

// applyFrees clears the bits of every freed cluster (block without
// bigalloc; commit, step 2).
func (t *tx) applyFrees() error {
	ratio := t.f.ratio()
	for _, r := range t.space.freed {
		for blk := r.start; blk < r.start+r.n; {
			g := t.f.groupOf(blk)
			gr, err := t.group(g)
			if err != nil {
				return err
			}
			b, err := t.blockBitmap(gr)
			if err != nil {
				return err
			}
			first := t.f.groupFirst(g)
			end := min(r.start+r.n, first+t.f.groupLen(g))
			freed := uint32(0)
			for ; blk < end; blk += ratio {
				bit := t.f.clusterBit(g, blk)
				if !testBit(b, bit) {
					return corrupt("block bitmap", uint64(g), 0, -1, "freeing block %d, which is already free", blk)
				}
				clearBit(b, bit)
				freed++
			}
			gr.desc.SetFreeBlocksCount(gr.desc.FreeBlocksCount() + freed)
			gr.bbDirty, gr.descDirty = true, true
			t.space.blocksDelta += int64(uint64(freed) * ratio) // the superblock counts blocks
		}
	}
	t.space.released = append(t.space.released, t.space.freed...)
	t.space.freed = nil
	return nil
}

// allocInode allocates an inode for a new file (dir false) or directory
// in directory parent, and returns it zeroed but for i_extra_isize, a
// random generation, the four timestamps and, on an extents filesystem,
// the EXTENTS flag (callers set mode, links and content; an inline-data
// or fast-symlink inode clears it). It is not yet dirty: the caller
// calls dirtyInode once it has set it up.
func (t *tx) allocInode(parent uint32, dir bool) (*inode, error) {
	f := t.f
	if f.sb.FreeInodesCount == 0 && t.space.inodesDelta >= 0 {
		return nil, errNoSpace("no free inode")
	}
	pg := (parent - 1) / f.geo.ipg
	start := pg
	if dir && parent == layout.RootIno {
		start = t.spreadGroup(pg)
	}
	for i := uint32(0); i < f.geo.groups; i++ {
		g := (start + i) % f.geo.groups
		in, err := t.allocInodeIn(g, dir)
		if err != nil || in != nil {
			return in, err
		}
	}
	return nil, errNoSpace("no free inode")
}

// spreadGroup picks the group for a new top-level directory, Orlov-like:
// the first group after the parent's with at least the average number of
// free inodes and free blocks (only descriptors are read).
func (t *tx) spreadGroup(pg uint32) uint32 {
	f := t.f
	avgInodes := uint64(f.sb.FreeInodesCount) / uint64(f.geo.groups)
	avgBlocks := f.sb.FreeBlocksCount() / f.ratio() / uint64(f.geo.groups) // descriptors count clusters
	for i := uint32(1); i < f.geo.groups; i++ {
		g := (pg + i) % f.geo.groups
		gr, err := t.group(g)
		if err != nil {
			break
		}
		if uint64(gr.desc.FreeInodesCount()) >= max(avgInodes, 1) && uint64(gr.desc.FreeBlocksCount()) >= avgBlocks {
			return g
		}
	}
	return pg
}

// allocInodeIn allocates the lowest free inode of group g, or returns nil.
func (t *tx) allocInodeIn(g uint32, dir bool) (*inode, error) {
	f := t.f
	gr, err := t.group(g)
	if err != nil || gr.desc.FreeInodesCount() == 0 {
		return nil, err
	}
	b, err := t.inodeBitmap(gr)
	if err != nil {
		return nil, err
	}
	from := uint64(0)
	if g == 0 {
		from = uint64(f.geo.firstIno - 1)
	}
	idx := findZero(b, from, uint64(f.geo.ipg))
	if idx == uint64(f.geo.ipg) {
		return nil, nil
	}
	if f.hasGroupCsum() && gr.desc.Flags&layout.GroupBlockUninit != 0 {
		if _, err := t.blockBitmap(gr); err != nil { // as the kernel does
			return nil, err
		}
	}
	setBit(b, idx)
	t.takeInode(gr, uint32(idx), dir)
	return t.freshInode(g*f.geo.ipg + uint32(idx) + 1)
}

// takeInode updates group gr's counters for the inode at index idx.
func (t *tx) takeInode(gr *txGroup, idx uint32, dir bool) {
	d := &gr.desc
	d.SetFreeInodesCount(d.FreeInodesCount() - 1)
	if dir {
		d.SetUsedDirsCount(d.UsedDirsCount() + 1)
	}
	if t.f.hasGroupCsum() {
		if ipg := t.f.geo.ipg; idx >= ipg-d.ItableUnused() {
			d.SetItableUnused(ipg - idx - 1)
		}
	}
	gr.ibDirty, gr.descDirty = true, true
	t.space.inodesDelta--
}

// freeInode releases in at commit: its blocks (and xattr block, when it
// is the last user) are freed now, the inode gets dtime and no links, and
// its bitmap bit is cleared at commit.
func (t *tx) freeInode(in *inode) error {
	if !in.flag(layout.FlagInlineData) {
		if err := t.truncate(in, 0); err != nil {
			return err
		}
	}
	if err := t.dropXattrBlock(in); err != nil {
		return err
	}
	in.raw.LinksCount = 0
	in.raw.Dtime = uint32(t.now.Unix())
	t.dirtyInode(in)
	t.space.recordInodeFree(in.num)
	return nil
}

// applyInodeFrees clears the bitmap bits of freed inodes (commit).
func (t *tx) applyInodeFrees() error {
	for _, ino := range t.space.ifreed {
		g, idx := (ino-1)/t.f.geo.ipg, uint64((ino-1)%t.f.geo.ipg)
		gr, err := t.group(g)
		if err != nil {
			return err
		}
		b, err := t.inodeBitmap(gr)
		if err != nil {
			return err
		}
		if !testBit(b, idx) {
			return corrupt("inode bitmap", uint64(g), 0, -1, "freeing inode %d, which is already free", ino)
		}
		clearBit(b, idx)
		d := &gr.desc
		d.SetFreeInodesCount(d.FreeInodesCount() + 1)
		if in := t.inodes.copies[ino]; in != nil && in.isDir() {
			d.SetUsedDirsCount(d.UsedDirsCount() - 1)
		}
		gr.ibDirty, gr.descDirty = true, true
		t.space.inodesDelta++
	}
	t.space.ifreed = nil
	return nil
}

// dropXattrBlock releases in's xattr block: freed when in is its last
// user, else its reference count is lowered.
func (t *tx) dropXattrBlock(in *inode) error {
	blk := in.raw.FileACL()
	if blk == 0 {
		return nil
	}
	if !t.f.validBlock(blk) {
		return corrupt("inode", uint64(in.num), 0, -1, "xattr block %d outside the filesystem", blk)
	}
	if err := t.checkTarget(kindXattr, in.num, -1, blk); err != nil {
		return err
	}
	b, err := t.metaBlock(blk, kindXattr)
	if err != nil {
		return err
	}
	if err := t.f.checkXattrBlock(b, blk, in.num); err != nil {
		return err
	}
	h, _ := layout.DecodeXattrHeader(b)
	in.raw.SetFileACL(0)
	t.addBlocks(in, -int64(t.f.ratio())) // its whole cluster
	if h.Refcount <= 1 {
		return t.freeBlocks(in.num, blk, 1)
	}
	putLE32(b[4:], h.Refcount-1)
	return t.onSeal(blk, func(b []byte) { t.sealXattrBlock(blk, b) })
}

// sealXattrBlock recomputes an xattr block's checksum (metadata_csum).
func (t *tx) sealXattrBlock(blk uint64, b []byte) {
	if !t.f.geo.metaCsum {
		return
	}
	const off = layout.XattrBlockCsumOffset
	clear(b[off : off+4])
	putLE32(b[off:], crc32c(crc32cU64(t.f.geo.csumSeed, blk), b))
}
