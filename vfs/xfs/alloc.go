package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// ErrNoSpace: an allocation group (or the filesystem) has no free extent
// long enough. It wraps vfs.ErrNoSpace.
var ErrNoSpace = fmt.Errorf("xfs: %w", vfs.ErrNoSpace)

// agAlloc edits one AG's free space inside a transaction: the AGF, the
// AGFL and the by-block and by-count btrees, kept in step, and the
// superblock's free-block count.
//
// Accounting, as the kernel keeps it: agf_freeblks counts the blocks of
// the free-space records; blocks on the AGFL and blocks of the btrees
// beyond their roots (agf_btreeblks) are not free extents but count in
// sb_fdblocks, which is the sum over AGs of freeblks + flcount +
// btreeblks. Moving a block between the AGFL and a btree therefore
// changes no free count; only extents leaving or joining the free-space
// records change agf_freeblks and sb_fdblocks.
type agAlloc struct {
	t    *tx
	ag   uint32
	agf  *txBuf
	bno  *sbtree
	cnt  *sbtree
	rmap *sbtree // the reverse-mapping btree, nil without rmapbt (rmap.go)
}

// AGF field offsets the allocator edits.
const (
	agfRoots     = 0x10
	agfLevels    = 0x1C
	agfFLFirst   = 0x28
	agfFLLast    = 0x2C
	agfFLCount   = 0x30
	agfFreeBlks  = 0x34
	agfLongest   = 0x38
	agfBtreeBlks = 0x3C
)

func (a *agAlloc) agf32(off int) uint32 { return binary.BigEndian.Uint32(a.agf.data[off:]) }
func (a *agAlloc) setAGF32(off int, v uint32) {
	binary.BigEndian.PutUint32(a.agf.data[off:], v)
	a.t.markDirty(a.agf)
}
func (a *agAlloc) addAGF32(off int, d int64) { a.setAGF32(off, uint32(int64(a.agf32(off))+d)) }

// allocGroup loads AG ag's AGF into the transaction (once) and validates
// what the allocator relies on.
func (t *tx) allocGroup(ag uint32) (*agAlloc, error) {
	if t.allocs == nil {
		t.allocs = map[uint32]*agAlloc{}
	}
	if a, ok := t.allocs[ag]; ok {
		return a, nil
	}
	g := &t.f.geo
	if uint64(ag) >= g.agCount {
		return nil, fmt.Errorf("xfs: AG %d does not exist (%d AGs)", ag, g.agCount)
	}
	agStart := int64(ag) * int64(g.agBlocks) << g.blockLog
	w := where{what: "AGF", ag: int64(ag), block: 0, off: agStart + layout.AGFSector*g.sectSize}
	b, err := t.buf(w.off, int(g.sectSize), kindAGF, classAlloc, w)
	if err != nil {
		return nil, err
	}
	h, err := layout.DecodeAGF(b.data)
	if err != nil {
		return nil, w.corrupt("%v", err)
	}
	a := &agAlloc{t: t, ag: ag, agf: b}
	length := uint32(g.agBlocks)
	if uint64(ag) == g.agCount-1 {
		length = uint32(g.dBlocks - uint64(ag)*g.agBlocks)
	}
	slots, _ := layout.AGFLSlots(int(g.sectSize), g.crc)
	switch {
	case h.Magic != layout.AGFMagic || h.VersionNum != 1:
		return nil, w.corrupt("bad magic %#x or version %d", h.Magic, h.VersionNum)
	case h.SeqNo != ag || h.Length != length:
		return nil, w.corrupt("AG number %d and length %d, want %d and %d", h.SeqNo, h.Length, ag, length)
	case g.crc && h.UUID != g.metaUUID:
		return nil, w.corrupt("UUID does not match the superblock's")
	case h.FreeBlks > length || h.Longest > h.FreeBlks || h.FLCount > uint32(slots) || h.FLFirst >= uint32(slots) || h.FLLast >= uint32(slots):
		return nil, w.corrupt("counters out of range (freeblks %d, longest %d, free list %d..%d count %d of %d slots)", h.FreeBlks, h.Longest, h.FLFirst, h.FLLast, h.FLCount, slots)
	}
	if h.FLCount > 0 && (h.FLLast+uint32(slots)-h.FLFirst)%uint32(slots)+1 != h.FLCount {
		return nil, w.corrupt("free list slots %d..%d do not hold %d blocks", h.FLFirst, h.FLLast, h.FLCount)
	}
	crc := g.crc
	mk := func(idx int, what string, v4, v5 uint32) *sbtree {
		bt := &sbtree{t: t, ag: ag, what: what, magic: v4, recSize: layout.AllocRecSize, keySize: layout.AllocRecSize}
		if crc {
			bt.magic = v5
		}
		bt.keyOf = func(rec []byte) []byte { return rec }
		bt.root = func() (uint32, int) {
			return a.agf32(agfRoots + 4*idx), int(a.agf32(agfLevels + 4*idx))
		}
		bt.setRoot = func(agbno uint32, levels int) error {
			a.setAGF32(agfRoots+4*idx, agbno)
			a.setAGF32(agfLevels+4*idx, uint32(levels))
			return nil
		}
		bt.allocBlock = func() (uint32, error) { return a.getFree(true) }
		bt.freeBlock = func(agbno uint32) error { return a.putFree(agbno, true) }
		bt.init()
		return bt
	}
	a.bno = mk(0, "bnobt", layout.BnoMagic, layout.BnoCRCMagic)
	a.bno.cmp = func(x, y []byte) int { return cmp32(x[0:], y[0:]) }
	a.cnt = mk(1, "cntbt", layout.CntMagic, layout.CntCRCMagic)
	a.cnt.cmp = func(x, y []byte) int {
		if c := cmp32(x[4:], y[4:]); c != 0 {
			return c
		}
		return cmp32(x[0:], y[0:])
	}
	a.initRmap()
	t.allocs[ag] = a
	return a, nil
}

func cmp32(x, y []byte) int {
	a, b := binary.BigEndian.Uint32(x), binary.BigEndian.Uint32(y)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func allocRec(start, count uint32) []byte {
	var r [layout.AllocRecSize]byte
	binary.BigEndian.PutUint32(r[0:], start)
	binary.BigEndian.PutUint32(r[4:], count)
	return r[:]
}

func decodeAllocRec(r []byte) (start, count uint32) {
	return binary.BigEndian.Uint32(r[0:]), binary.BigEndian.Uint32(r[4:])
}

// agfl returns the AGFL sector of the AG, held by the transaction.
func (a *agAlloc) agfl() (*txBuf, error) {
	g := &a.t.f.geo
	agStart := int64(a.ag) * int64(g.agBlocks) << g.blockLog
	w := where{what: "AGFL", ag: int64(a.ag), block: 0, off: agStart + layout.AGFLSector*g.sectSize}
	b, err := a.t.buf(w.off, int(g.sectSize), kindAGFL, classAlloc, w)
	if err != nil {
		return nil, err
	}
	if g.crc && (binary.BigEndian.Uint32(b.data) != layout.AGFLMagic || binary.BigEndian.Uint32(b.data[4:]) != a.ag) {
		return nil, w.corrupt("bad AGFL header")
	}
	return b, nil
}

// firstUsable is the first AG block past the AG headers and the AGFL.
func (a *agAlloc) firstUsable() uint32 {
	g := &a.t.f.geo
	return uint32((4*g.sectSize + g.blockSize - 1) / g.blockSize)
}

// getFree takes a block off the AGFL; forBtree counts it in btreeblks.
func (a *agAlloc) getFree(forBtree bool) (uint32, error) {
	if a.agf32(agfFLCount) == 0 {
		return 0, fmt.Errorf("%w: the free list of AG %d is empty", ErrNoSpace, a.ag)
	}
	fl, err := a.agfl()
	if err != nil {
		return 0, err
	}
	slots, base := layout.AGFLSlots(len(fl.data), a.t.f.geo.crc)
	first := a.agf32(agfFLFirst)
	bno := binary.BigEndian.Uint32(fl.data[base+4*int(first):])
	if bno < a.firstUsable() || bno >= a.bno.agLength() {
		return 0, (&where{what: "AGFL", ag: int64(a.ag), block: -1, off: fl.off}).corrupt("slot %d holds block %d, outside the AG", first, bno)
	}
	binary.BigEndian.PutUint32(fl.data[base+4*int(first):], layout.NullAGBlock)
	a.t.markDirty(fl)
	a.setAGF32(agfFLFirst, (first+1)%uint32(slots))
	a.addAGF32(agfFLCount, -1)
	if forBtree {
		a.addAGF32(agfBtreeBlks, 1)
	}
	return bno, nil
}

// putFree puts block bno on the AGFL; fromBtree uncounts it from
// btreeblks.
func (a *agAlloc) putFree(bno uint32, fromBtree bool) error {
	fl, err := a.agfl()
	if err != nil {
		return err
	}
	slots, base := layout.AGFLSlots(len(fl.data), a.t.f.geo.crc)
	if int(a.agf32(agfFLCount)) >= slots {
		return fmt.Errorf("xfs: the free list of AG %d is full (%d slots)", a.ag, slots)
	}
	last := (a.agf32(agfFLLast) + 1) % uint32(slots)
	binary.BigEndian.PutUint32(fl.data[base+4*int(last):], bno)
	a.t.markDirty(fl)
	a.setAGF32(agfFLLast, last)
	a.addAGF32(agfFLCount, 1)
	if fromBtree {
		a.addAGF32(agfBtreeBlks, -1)
	}
	return nil
}

// minFreelist is the AGFL length the kernel requires before an
// allocation (xfs_alloc_min_freelist): a full split of each free-space
// btree, new root included.
func (a *agAlloc) minFreelist() uint32 {
	maxLevels := uint32(a.maxLevels())
	_, bl := a.bno.root()
	_, cl := a.cnt.root()
	return min(uint32(bl)+1, maxLevels) + min(uint32(cl)+1, maxLevels) + a.rmapMinFreelist()
}

// maxLevels is the height of a free-space btree holding the most records
// an AG can have (xfs_btree_compute_maxlevels over agblocks/2 records).
func (a *agAlloc) maxLevels() int {
	minLeaf, minNode := uint64(a.bno.maxRecs[0]/2), uint64(a.bno.maxRecs[1]/2)
	n := (a.t.f.geo.agBlocks + 1) / 2
	blocks := (n + minLeaf - 1) / minLeaf
	levels := 1
	for blocks > 1 {
		blocks = (blocks + minNode - 1) / minNode
		levels++
	}
	return levels
}

// fixFreelist refills the AGFL to the kernel's minimum from the AG's
// free space, or trims it back to it, as xfs_alloc_fix_freelist does
// before each allocation and free. With rmapbt, blocks joining the AGFL
// are mapped to OWN_AG and blocks leaving it for the free space unmapped.
func (a *agAlloc) fixFreelist() error {
	for i := 0; ; i++ {
		if i > 64 {
			return fmt.Errorf("xfs: AG %d: the free list does not settle", a.ag)
		}
		need, have := a.minFreelist(), a.agf32(agfFLCount)
		switch {
		case have > need:
			bno, err := a.getFree(false)
			if err != nil {
				return err
			}
			if err := a.rmapUnmap(bno, 1, ownAG); err != nil {
				return err
			}
			if err := a.freeRecords(bno, 1); err != nil {
				return err
			}
		case have < need:
			start, n, err := a.allocRecords(1, need-have)
			if err != nil {
				return fmt.Errorf("refilling the free list of AG %d: %w", a.ag, err)
			}
			if err := a.rmapMap(start, n, ownAG); err != nil {
				return err
			}
			for b := start; b < start+n; b++ {
				if err := a.putFree(b, false); err != nil {
					return err
				}
			}
		default:
			return nil
		}
	}
}

// alloc allocates between minLen and maxLen contiguous blocks in the AG
// for o: maxLen when a free extent that long exists (the shortest such,
// by the by-count btree), else the longest free extent if at least
// minLen.
func (a *agAlloc) alloc(minLen, maxLen uint32, o rmapOwner) (agbno, n uint32, err error) {
	if minLen == 0 || minLen > maxLen {
		return 0, 0, fmt.Errorf("xfs: allocating %d..%d blocks (a bug)", minLen, maxLen)
	}
	if err := a.fixFreelist(); err != nil {
		return 0, 0, err
	}
	if maxLen, err = a.usable(minLen, maxLen); err != nil {
		return 0, 0, err
	}
	start, n, err := a.allocRecords(minLen, maxLen)
	if err != nil {
		return 0, 0, err
	}
	if err := a.t.addFDBlocks(-int64(n)); err != nil {
		return 0, 0, err
	}
	if err := a.setLongest(); err != nil {
		return 0, 0, err
	}
	return start, n, a.mapAllocated(start, n, o)
}

// mapAllocated records n blocks just allocated at agbno as o's in the
// rmapbt, the free list fixed first (the kernel's deferred rmap update
// fixes it again).
func (a *agAlloc) mapAllocated(agbno, n uint32, o rmapOwner) error {
	if a.rmap == nil {
		return nil
	}
	if err := a.fixFreelist(); err != nil {
		return err
	}
	if err := a.rmapMap(agbno, n, o); err != nil {
		return err
	}
	return a.setLongest()
}

// free returns n blocks at agbno, o's, to the AG's free space.
func (a *agAlloc) free(agbno, n uint32, o rmapOwner) error {
	if err := a.checkNotShared(agbno, n); err != nil {
		return err
	}
	return a.freeUnshared(agbno, n, o)
}

// freeUnshared returns n blocks at agbno that cannot be shared with
// another owner (a directory's blocks, bmap btree blocks: reflink shares
// only regular files' data), so the refcount btree is not consulted.
func (a *agAlloc) freeUnshared(agbno, n uint32, o rmapOwner) error {
	if err := a.fixFreelist(); err != nil {
		return err
	}
	// The reverse mapping goes first (xfs_free_ag_extent): a refill
	// must not take these blocks while they are still mapped.
	if err := a.rmapUnmap(agbno, n, o); err != nil {
		return err
	}
	if err := a.freeRecords(agbno, n); err != nil {
		return err
	}
	if err := a.t.addFDBlocks(int64(n)); err != nil {
		return err
	}
	a.t.frees = true
	return a.setLongest()
}

// allocRecords removes an extent of minLen..maxLen blocks from the
// free-space records (both btrees and agf_freeblks); the caller accounts
// for where the blocks go.
func (a *agAlloc) allocRecords(minLen, maxLen uint32) (uint32, uint32, error) {
	path, err := a.cnt.lookup(allocRec(0, maxLen))
	if err != nil {
		return 0, 0, err
	}
	var fs, fc uint32
	found := false
	// The first record with count >= maxLen, else the last record.
	if path[0].idx >= 0 || path[0].blk.n() > 0 {
		ok, err := a.cnt.step(path, 1)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			fs, fc = decodeAllocRec(path[0].rec())
			found = true
		}
	}
	if !found {
		if path, err = a.cnt.edge(true); err != nil {
			return 0, 0, err
		}
		if path[0].idx >= 0 {
			fs, fc = decodeAllocRec(path[0].rec())
			found = fc >= minLen
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("%w: AG %d has no free extent of %d blocks", ErrNoSpace, a.ag, minLen)
	}
	n := min(fc, maxLen)
	if err := a.takeFrom(fs, fc, fs, n); err != nil {
		return 0, 0, err
	}
	return fs, n, nil
}

// takeFrom removes [start, start+n) from the free extent [fs, fs+fc).
func (a *agAlloc) takeFrom(fs, fc, start, n uint32) error {
	if err := a.checkFreeRec(fs, fc); err != nil {
		return err
	}
	// By count: the record goes, what is left of it comes back.
	cp, err := a.cnt.lookup(allocRec(fs, fc))
	if err != nil {
		return err
	}
	if cp[0].idx < 0 || a.cnt.cmp(cp[0].rec(), allocRec(fs, fc)) != 0 {
		return a.bno.where(cp[0].blk.agbno).corrupt("free extent %d+%d is missing from the by-count btree", fs, fc)
	}
	if err := a.cnt.remove(cp); err != nil {
		return err
	}
	// By block: the record shrinks, or splits in two around the hole.
	bp, err := a.bno.lookup(allocRec(fs, 0))
	if err != nil {
		return err
	}
	if bp[0].idx < 0 || a.bno.cmp(bp[0].rec(), allocRec(fs, 0)) != 0 {
		return a.bno.where(bp[0].blk.agbno).corrupt("free extent %d+%d is missing from the by-block btree", fs, fc)
	}
	if _, c := decodeAllocRec(bp[0].rec()); c != fc {
		return a.bno.where(bp[0].blk.agbno).corrupt("free extent at %d is %d blocks by block and %d by count", fs, c, fc)
	}
	leftN, rightN := start-fs, fs+fc-(start+n)
	var adds [][]byte
	switch {
	case leftN > 0:
		a.bno.update(bp, allocRec(fs, leftN))
		if rightN > 0 {
			adds = append(adds, allocRec(start+n, rightN))
		}
	case rightN > 0:
		a.bno.update(bp, allocRec(start+n, rightN))
	default:
		if err := a.bno.remove(bp); err != nil {
			return err
		}
	}
	for _, r := range adds {
		if err := a.bno.insert(r); err != nil {
			return err
		}
	}
	if leftN > 0 {
		if err := a.cnt.insert(allocRec(fs, leftN)); err != nil {
			return err
		}
	}
	if rightN > 0 {
		if err := a.cnt.insert(allocRec(start+n, rightN)); err != nil {
			return err
		}
	}
	a.addAGF32(agfFreeBlks, -int64(n))
	return nil
}

// checkFreeRec bounds a free-space record read from disk.
func (a *agAlloc) checkFreeRec(start, count uint32) error {
	if count == 0 || start < a.firstUsable() || uint64(start)+uint64(count) > uint64(a.bno.agLength()) {
		return a.bno.where(0).corrupt("free extent %d+%d lies outside the AG's usable %d..%d", start, count, a.firstUsable(), a.bno.agLength())
	}
	return nil
}

// freeRecords adds [agbno, agbno+n) to the free-space records, merged
// with the free extents it touches; space already free is corruption
// (a double free) and refused.
func (a *agAlloc) freeRecords(agbno, n uint32) error {
	if n == 0 || agbno < a.firstUsable() || uint64(agbno)+uint64(n) > uint64(a.bno.agLength()) {
		return fmt.Errorf("xfs: freeing %d+%d in AG %d: outside the AG's usable blocks (a bug)", agbno, n, a.ag)
	}
	end := agbno + n
	bp, err := a.bno.lookup(allocRec(agbno, 0))
	if err != nil {
		return err
	}
	var ls, lc, rs, rc uint32
	hasL, hasR := false, false
	if bp[0].idx >= 0 {
		ls, lc = decodeAllocRec(bp[0].rec())
		hasL = true
	}
	rp := append([]pathEnt(nil), bp...)
	ok, err := a.bno.step(rp, 1)
	if err != nil {
		return err
	}
	if ok {
		rs, rc = decodeAllocRec(rp[0].rec())
		hasR = true
	}
	if hasL && ls+lc > agbno || hasR && rs < end {
		return a.bno.where(bp[0].blk.agbno).corrupt("freeing %d+%d, which overlaps free extents (%d+%d, %d+%d): a double free", agbno, n, ls, lc, rs, rc)
	}
	mergeL, mergeR := hasL && ls+lc == agbno, hasR && rs == end
	ns, nc := agbno, n
	if mergeL {
		ns, nc = ls, nc+lc
		if err := a.removeCnt(ls, lc); err != nil {
			return err
		}
	}
	if mergeR {
		nc += rc
		if err := a.removeCnt(rs, rc); err != nil {
			return err
		}
	}
	switch {
	case mergeL && mergeR:
		// The right record goes; the left one grows over both.
		p, err := a.bno.lookup(allocRec(rs, 0))
		if err != nil {
			return err
		}
		if err := a.bno.remove(p); err != nil {
			return err
		}
		if p, err = a.bno.lookup(allocRec(ls, 0)); err != nil {
			return err
		}
		a.bno.update(p, allocRec(ns, nc))
	case mergeL:
		a.bno.update(bp, allocRec(ns, nc))
	case mergeR:
		a.bno.update(rp, allocRec(ns, nc))
	default:
		if err := a.bno.insert(allocRec(ns, nc)); err != nil {
			return err
		}
	}
	if err := a.cnt.insert(allocRec(ns, nc)); err != nil {
		return err
	}
	a.addAGF32(agfFreeBlks, int64(n))
	return nil
}

// removeCnt deletes the by-count record of free extent start+count.
func (a *agAlloc) removeCnt(start, count uint32) error {
	p, err := a.cnt.lookup(allocRec(start, count))
	if err != nil {
		return err
	}
	if p[0].idx < 0 || a.cnt.cmp(p[0].rec(), allocRec(start, count)) != 0 {
		return a.cnt.where(p[0].blk.agbno).corrupt("free extent %d+%d is missing from the by-count btree", start, count)
	}
	return a.cnt.remove(p)
}

// setLongest records the longest free extent: the by-count btree's last
// record.
func (a *agAlloc) setLongest() error {
	p, err := a.cnt.edge(true)
	if err != nil {
		return err
	}
	var longest uint32
	if p[0].idx >= 0 {
		_, longest = decodeAllocRec(p[0].rec())
	}
	if longest != a.agf32(agfLongest) {
		a.setAGF32(agfLongest, longest)
	}
	return nil
}

// addFDBlocks adds d to the superblock's free data block count.
func (t *tx) addFDBlocks(d int64) error {
	g := &t.f.geo
	b, err := t.buf(0, int(g.sectSize), kindSuper, classSuper, at("superblock", 0))
	if err != nil {
		return err
	}
	v := int64(binary.BigEndian.Uint64(b.data[0x90:])) + d
	if v < 0 || uint64(v) > g.dBlocks {
		return errors.New("xfs: superblock free block count out of range")
	}
	binary.BigEndian.PutUint64(b.data[0x90:], uint64(v))
	t.markDirty(b)
	return nil
}

// maxAlignedScan bounds the by-count records allocAligned looks at.
const maxAlignedScan = 1 << 16

// allocAligned allocates exactly n blocks starting at a multiple of
// align (AG-relative), from the shortest free extent that has room for
// them, for inode chunks.
func (a *agAlloc) allocAligned(n, align uint32, o rmapOwner) (uint32, error) {
	return a.allocAlignedIn(n, align, 0, a.bno.agLength(), o)
}

// allocAlignedIn is allocAligned with the blocks inside [lo, hi).
func (a *agAlloc) allocAlignedIn(n, align, lo, hi uint32, o rmapOwner) (uint32, error) {
	if n == 0 || align == 0 {
		return 0, fmt.Errorf("xfs: aligned allocation of %d blocks at %d (a bug)", n, align)
	}
	if err := a.fixFreelist(); err != nil {
		return 0, err
	}
	if _, err := a.usable(n, n); err != nil {
		return 0, err
	}
	fs, fc, start, ok, err := a.findAligned(n, align, lo, hi)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: AG %d has no free extent holding %d blocks aligned to %d", ErrNoSpace, a.ag, n, align)
	}
	if err := a.takeFrom(fs, fc, start, n); err != nil {
		return 0, err
	}
	if err := a.t.addFDBlocks(-int64(n)); err != nil {
		return 0, err
	}
	if err := a.setLongest(); err != nil {
		return 0, err
	}
	return start, a.mapAllocated(start, n, o)
}

// findAligned looks, changing nothing, for the shortest free extent
// fs+fc holding n blocks from start, a multiple of align inside [lo, hi).
func (a *agAlloc) findAligned(n, align, lo, hi uint32) (fs, fc, start uint32, ok bool, err error) {
	path, err := a.cnt.lookup(allocRec(0, n))
	if err != nil {
		return 0, 0, 0, false, err
	}
	more := path[0].blk.n() > 0
	if more {
		if more, err = a.cnt.step(path, 1); err != nil {
			return 0, 0, 0, false, err
		}
	}
	for i := 0; more && i < maxAlignedScan; i++ {
		fs, fc = decodeAllocRec(path[0].rec())
		if err := a.checkFreeRec(fs, fc); err != nil {
			return 0, 0, 0, false, err
		}
		from := uint64(max(fs, lo)+align-1) / uint64(align) * uint64(align)
		if end := from + uint64(n); end <= uint64(fs)+uint64(fc) && end <= uint64(hi) {
			return fs, fc, uint32(from), true, nil
		}
		if more, err = a.cnt.step(path, 1); err != nil {
			return 0, 0, 0, false, err
		}
	}
	return 0, 0, 0, false, nil
}
