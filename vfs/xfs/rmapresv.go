package xfs

import (
	"encoding/binary"
	"fmt"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// The kernel's per-AG reservations. At mount the kernel sets aside, in
// each AG, free space for its per-AG btrees to grow into whatever
// happens (xfs_ag_resv_init): the metadata reservation (finobt and
// refcount btree) and the rmapbt reservation (1% of the AG or room for a
// record per block, whichever is more), each less the blocks the tree
// already has. Ordinary allocations (xfs_alloc_space_available) leave
// that space alone. An image the engine filled into it mounts with
// "Per-AG reservation ... failed" and "ENOSPC reserving per-AG metadata
// pool, log recovery may fail": the kernel could then be unable to
// finish a deferred btree update. The engine therefore refuses, with
// ErrNoSpace, an allocation that would dip into it, as the kernel does.

// agfRefcountBlocks is agf_refcount_blocks.
const agfRefcountBlocks = 0x54

// resvAsk is what the kernel asks to reserve in AG ag: for the rmapbt
// (xfs_rmapbt_calc_reserves) and for the finobt and refcount btree
// together (the metadata reservation), from the geometry alone.
func (f *FS) resvAsk(ag uint32) (rmap, meta uint64) {
	g := &f.geo
	ro := f.sb.FeaturesROCompat
	if !g.crc {
		return 0, 0
	}
	agLen := g.agBlocks
	if last := g.agCount - 1; uint64(ag) == last {
		agLen = g.dBlocks - last*g.agBlocks
	}
	if ls := f.sb.LogStart; ls != 0 && uint32(ls>>g.agBlkLog) == ag && agLen > uint64(f.sb.LogBlocks) {
		agLen -= uint64(f.sb.LogBlocks) // never available to the btrees
	}
	bs := int(g.blockSize)
	size := func(recSize, keySize int, records uint64) uint64 {
		leaf := uint64(layout.ShortBtreeMaxRecs(bs, true, true, recSize, keySize, sbPtrSize) / 2)
		node := uint64(layout.ShortBtreeMaxRecs(bs, true, false, recSize, keySize, sbPtrSize) / 2)
		return btreeCalcSize(leaf, node, records)
	}
	if ro&layout.ROCompatFinobt != 0 {
		meta += size(layout.InobtRecSize, layout.InobtKeySize, agLen*uint64(f.sb.InoPBlock)/layout.InodesPerChunk)
	}
	if ro&layout.ROCompatReflink != 0 {
		meta += size(refcountRecSize, refcountKeySize, agLen)
	}
	if ro&layout.ROCompatRmapbt != 0 {
		rmap = max(agLen/100, size(rmapRecSize, 2*rmapKeySize, agLen))
	}
	return rmap, meta
}

// globalReserve is the free space (sb_fdblocks) the kernel keeps from
// ordinary allocations: its reserve pool (xfs_default_resblks: 5% of
// the blocks, at most 8192), the per-AG set-aside for the free lists
// (xfs_alloc_set_aside), and every AG's hidden per-AG reservation (all
// of the rmapbt's ask, since its blocks count as free; the metadata
// ask, taken whole here).
func (f *FS) globalReserve() uint64 {
	g := &f.geo
	r := min(g.dBlocks/20, 8192) + 8*g.agCount
	for ag := uint64(0); ag < g.agCount; ag++ {
		rmap, meta := f.resvAsk(uint32(ag))
		r += rmap + meta
	}
	return r
}

// kernelReserve is the number of free blocks of the AG the kernel keeps
// for its per-AG btrees.
func (a *agAlloc) kernelReserve() (uint32, error) {
	f := a.t.f
	ro := f.sb.FeaturesROCompat
	rmapAsk, meta := f.resvAsk(a.ag)
	if rmapAsk == 0 && meta == 0 {
		return 0, nil
	}
	resv := func(ask, used uint64) uint64 {
		if used >= ask {
			return 0
		}
		return ask - used
	}
	var metaUsed uint64
	if ro&layout.ROCompatFinobt != 0 {
		if ro&layout.ROCompatInobtCnt != 0 {
			ia, err := a.t.inodeGroup(a.ag)
			if err != nil {
				return 0, err
			}
			metaUsed += uint64(ia.agi32(layout.AGIFBlocksOffset))
		} // without the count the tree's blocks are not known: reserve all
	}
	if ro&layout.ROCompatReflink != 0 {
		metaUsed += uint64(a.agf32(agfRefcountBlocks))
	}
	total := resv(meta, metaUsed)
	if a.rmap != nil {
		total += resv(rmapAsk, uint64(a.agf32(agfRmapBlocks)))
	}
	return uint32(min(total, uint64(^uint32(0)))), nil
}

// btreeCalcSize is the number of blocks of a btree holding records
// with minLeaf records per leaf and minNode pointers per node
// (xfs_btree_calc_size).
func btreeCalcSize(minLeaf, minNode, records uint64) uint64 {
	if minLeaf == 0 || minNode < 2 {
		return 0
	}
	level := (records + minLeaf - 1) / minLeaf
	blocks := level
	for level > 1 {
		level = (level + minNode - 1) / minNode
		blocks += level
	}
	return blocks
}

// usable bounds an allocation of minLen..maxLen blocks by the free space
// left outside the kernel's reservations, the AG's and the filesystem's;
// it fails with ErrNoSpace when not even minLen blocks are.
func (a *agAlloc) usable(minLen, maxLen uint32) (uint32, error) {
	resv, err := a.kernelReserve()
	if err != nil {
		return 0, err
	}
	free := a.agf32(agfFreeBlks)
	if free < resv || free-resv < minLen {
		return 0, fmt.Errorf("%w: AG %d has %d free blocks, of which the kernel keeps %d for its per-AG btrees (rmapbt, finobt, refcount btree)", ErrNoSpace, a.ag, free, resv)
	}
	maxLen = min(maxLen, free-resv)
	g := &a.t.f.geo
	sb, err := a.t.buf(0, int(g.sectSize), kindSuper, classSuper, at("superblock", 0))
	if err != nil {
		return 0, err
	}
	fd, floor := binary.BigEndian.Uint64(sb.data[0x90:]), a.t.f.globalReserve()
	if fd < floor || fd-floor < uint64(minLen) {
		return 0, fmt.Errorf("%w: the filesystem has %d free blocks, of which the kernel keeps %d (its reserve pool and per-AG reservations)", ErrNoSpace, fd, floor)
	}
	return uint32(min(uint64(maxLen), fd-floor)), nil
}
