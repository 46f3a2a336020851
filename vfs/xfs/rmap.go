package xfs

import (
	"encoding/binary"
	"fmt"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// The reverse-mapping btree (rmapbt): per AG, one record per run of
// blocks with one owner, keyed by (start block, owner, offset), in an
// overlapping-interval btree whose node entries hold each child's low
// and high keys. Every allocation and free of the engine updates it as
// the kernel does, so that xfs_repair, which rebuilds the mapping from
// the inodes and AG headers, finds each of its records covered:
//
//   - file, directory and symlink data: owner the inode, offset the file
//     block, the unwritten flag copied from the extent; attribute fork
//     extents carry the attr-fork flag; bmap btree blocks the bmbt flag
//     (offset 0);
//   - inode chunks: owner OWN_INODES; inode btree blocks: OWN_INOBT;
//   - blocks on the AGFL and the blocks of the free-space btrees and of
//     the rmapbt itself: OWN_AG. Refilling the AGFL from the free space
//     maps its blocks to OWN_AG and trimming it unmaps them; a btree
//     taking a block from the AGFL or giving one back changes no record
//     (the block stays OWN_AG), as xfs_alloc_fix_freelist and the btrees'
//     alloc_block/free_block keep it.
//
// Records are kept merged as the kernel merges them (xfs_rmap_map): a
// new mapping joins a neighbour with the same owner and flags that
// touches it on disk and, for inode data, continues it in the file; an
// unmapping shrinks or splits the record covering it. The engine never
// shares a block, so on a reflink filesystem too a new mapping overlaps
// nothing; records of blocks other files share are left as they are.
//
// The rmapbt's own blocks come from the AGFL (counted in agf_btreeblks
// and agf_rmap_blocks), and the AGFL minimum grows by the rmapbt's
// height plus one (xfs_alloc_min_freelist).

// Rmap btree constants (struct xfs_rmap_rec, xfs_rmap_key).
const (
	rmapCRCMagic  = 0x524D4233 // "RMB3"
	rmapRecSize   = 24
	rmapKeySize   = 20 // one key; a node entry holds a low and a high key
	agfRmapRoot   = 0x18
	agfRmapLevel  = 0x24
	agfRmapBlocks = 0x50

	rmapOffAttr      = uint64(1) << 63
	rmapOffBmbt      = uint64(1) << 62
	rmapOffUnwritten = uint64(1) << 61
	rmapOffMask      = uint64(1)<<54 - 1
	rmapFlagMask     = rmapOffAttr | rmapOffBmbt | rmapOffUnwritten

	// Owners that are not inodes (XFS_RMAP_OWN_*): negative numbers.
	rmapOwnFS     = ^uint64(2) // -3: AG headers
	rmapOwnAG     = ^uint64(4) // -5: AGFL and free-space and rmap btree blocks
	rmapOwnInobt  = ^uint64(5) // -6
	rmapOwnInodes = ^uint64(6) // -7
)

// rmapOwner says whom blocks being allocated or freed belong to.
type rmapOwner struct {
	owner uint64 // an inode number or an rmapOwn* constant
	off   uint64 // file block of the first block (inode data only)
	flags uint64 // rmapOffAttr, rmapOffBmbt, rmapOffUnwritten
}

// Owners of the allocations the engine makes.
var (
	ownAG     = rmapOwner{owner: rmapOwnAG}
	ownInobt  = rmapOwner{owner: rmapOwnInobt}
	ownInodes = rmapOwner{owner: rmapOwnInodes}
)

// ownData is inode ino's data fork at file block off (unwritten when
// the extent is).
func ownData(ino, off uint64, unwritten bool) rmapOwner {
	o := rmapOwner{owner: ino, off: off}
	if unwritten {
		o.flags = rmapOffUnwritten
	}
	return o
}

// ownAttr is inode ino's attribute fork at block off.
func ownAttr(ino, off uint64, unwritten bool) rmapOwner {
	o := ownData(ino, off, unwritten)
	o.flags |= rmapOffAttr
	return o
}

// ownBmbt is a block of inode ino's data fork bmap btree.
func ownBmbt(ino uint64) rmapOwner { return rmapOwner{owner: ino, flags: rmapOffBmbt} }

// ignoresOffset: records of non-inode owners and bmap btree blocks carry
// no file offset and merge whatever it is.
func (o rmapOwner) ignoresOffset() bool {
	return o.owner&(1<<63) != 0 || o.flags&rmapOffBmbt != 0
}

// at is the owner of the block n blocks further on.
func (o rmapOwner) at(n uint32) rmapOwner {
	if !o.ignoresOffset() {
		o.off += uint64(n)
	}
	return o
}

func (o rmapOwner) String() string {
	s := fmt.Sprintf("owner %d", int64(o.owner))
	if !o.ignoresOffset() {
		s += fmt.Sprintf(" offset %d", o.off)
	}
	if o.flags&rmapOffAttr != 0 {
		s += " attr"
	}
	if o.flags&rmapOffBmbt != 0 {
		s += " bmbt"
	}
	if o.flags&rmapOffUnwritten != 0 {
		s += " unwritten"
	}
	return s
}

// rmapRec is one decoded record.
type rmapRec struct {
	start, count uint32
	rmapOwner
}

func (r rmapRec) end() uint64 { return uint64(r.start) + uint64(r.count) }

func encodeRmap(r rmapRec) []byte {
	var b [rmapRecSize]byte
	binary.BigEndian.PutUint32(b[0:], r.start)
	binary.BigEndian.PutUint32(b[4:], r.count)
	binary.BigEndian.PutUint64(b[8:], r.owner)
	off := r.off
	if r.ignoresOffset() {
		off = 0
	}
	binary.BigEndian.PutUint64(b[16:], off&rmapOffMask|r.flags&rmapFlagMask)
	return b[:]
}

func decodeRmap(b []byte) rmapRec {
	off := binary.BigEndian.Uint64(b[16:])
	return rmapRec{
		start: binary.BigEndian.Uint32(b[0:]),
		count: binary.BigEndian.Uint32(b[4:]),
		rmapOwner: rmapOwner{
			owner: binary.BigEndian.Uint64(b[8:]),
			off:   off & rmapOffMask,
			flags: off & rmapFlagMask,
		},
	}
}

// rmapKeyOf returns a record's low key and high key: the high key is
// its last block, and for inode data its last file block; the keys keep
// the attr and bmbt flags but not the unwritten one.
func rmapKeyOf(rec []byte) []byte {
	r := decodeRmap(rec)
	k := make([]byte, 2*rmapKeySize)
	flags := r.flags &^ rmapOffUnwritten
	off := r.off
	if r.ignoresOffset() {
		off = 0
	}
	binary.BigEndian.PutUint32(k[0:], r.start)
	binary.BigEndian.PutUint64(k[4:], r.owner)
	binary.BigEndian.PutUint64(k[12:], off|flags)
	binary.BigEndian.PutUint32(k[rmapKeySize:], r.start+r.count-1)
	binary.BigEndian.PutUint64(k[rmapKeySize+4:], r.owner)
	if !r.ignoresOffset() {
		off += uint64(r.count) - 1
	}
	binary.BigEndian.PutUint64(k[rmapKeySize+12:], off&rmapOffMask|flags)
	return k
}

// rmapCmp orders two keys (the first rmapKeySize bytes of each): start
// block, owner, then offset without its flags.
func rmapCmp(x, y []byte) int {
	if c := cmp32(x, y); c != 0 {
		return c
	}
	for _, o := range []struct {
		off  int
		mask uint64
	}{{4, ^uint64(0)}, {12, rmapOffMask}} {
		a, b := binary.BigEndian.Uint64(x[o.off:])&o.mask, binary.BigEndian.Uint64(y[o.off:])&o.mask
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	}
	return 0
}

// rmapKey is the search key of block start for owner o.
func rmapKey(start uint32, o rmapOwner) []byte {
	k := make([]byte, rmapKeySize)
	binary.BigEndian.PutUint32(k[0:], start)
	binary.BigEndian.PutUint64(k[4:], o.owner)
	if !o.ignoresOffset() {
		binary.BigEndian.PutUint64(k[12:], o.off&rmapOffMask)
	}
	return k
}

// initRmap sets up the AG's rmap btree when the filesystem has one.
func (a *agAlloc) initRmap() {
	t := a.t
	if t.f.sb.FeaturesROCompat&layout.ROCompatRmapbt == 0 {
		return
	}
	bt := &sbtree{t: t, ag: a.ag, what: "rmapbt", magic: rmapCRCMagic, recSize: rmapRecSize, keySize: 2 * rmapKeySize, overlap: true}
	bt.keyOf = rmapKeyOf
	bt.cmp = rmapCmp
	bt.root = func() (uint32, int) { return a.agf32(agfRmapRoot), int(a.agf32(agfRmapLevel)) }
	bt.setRoot = func(agbno uint32, levels int) error {
		a.setAGF32(agfRmapRoot, agbno)
		a.setAGF32(agfRmapLevel, uint32(levels))
		return nil
	}
	// The rmapbt's blocks come from the AGFL and stay OWN_AG
	// (xfs_rmapbt_alloc_block, xfs_rmapbt_free_block).
	bt.allocBlock = func() (uint32, error) {
		agbno, err := a.getFree(true)
		if err == nil {
			a.addAGF32(agfRmapBlocks, 1)
		}
		return agbno, err
	}
	bt.freeBlock = func(agbno uint32) error {
		if err := a.putFree(agbno, true); err != nil {
			return err
		}
		a.addAGF32(agfRmapBlocks, -1)
		return nil
	}
	bt.init()
	a.rmap = bt
}

// rmapMinFreelist is the rmapbt's share of the AGFL minimum: a full
// split of the tree, new root included, bounded by its largest height.
func (a *agAlloc) rmapMinFreelist() uint32 {
	if a.rmap == nil {
		return 0
	}
	_, l := a.rmap.root()
	return min(uint32(l)+1, uint32(a.rmapMaxLevels()))
}

// rmapMaxLevels is the kernel's m_rmap_maxlevels: with reflink, the
// height the AG's blocks could hold as rmapbt blocks
// (xfs_btree_space_to_height); without, the height of one record per
// AG block (xfs_btree_compute_maxlevels).
func (a *agAlloc) rmapMaxLevels() int {
	minLeaf, minNode := uint64(a.rmap.maxRecs[0]/2), uint64(a.rmap.maxRecs[1]/2)
	agBlocks := a.t.f.geo.agBlocks
	if a.t.f.sb.FeaturesROCompat&layout.ROCompatReflink != 0 {
		if agBlocks < 1 {
			return 0
		}
		nodes, left, height := uint64(2), agBlocks-1, 1
		for nodes < left {
			left -= nodes
			nodes *= minNode
			height++
		}
		return height
	}
	blocks := (agBlocks + minLeaf - 1) / minLeaf
	levels := 1
	for blocks > 1 {
		blocks = (blocks + minNode - 1) / minNode
		levels++
	}
	return levels
}

// maxRmapScan bounds the records walked back looking for the one
// covering a block (records of shared blocks can lie between).
const maxRmapScan = 1 << 16

// rmapMap records that the n blocks at agbno now belong to o, merged
// with neighbours as xfs_rmap_map merges. The blocks must be mapped by
// no record (the engine only maps blocks it just took from the free
// space). The caller has fixed the free list.
func (a *agAlloc) rmapMap(agbno, n uint32, o rmapOwner) error {
	bt := a.rmap
	if bt == nil || n == 0 {
		return nil
	}
	end := uint64(agbno) + uint64(n)
	path, err := bt.lookup(rmapKey(agbno, o))
	if err != nil {
		return err
	}
	w := bt.where(path[0].blk.agbno)
	var left, right rmapRec
	hasL, hasR := false, false
	if path[0].idx >= 0 {
		left, hasL = decodeRmap(path[0].blk.ent(path[0].idx)), true
		if err := a.checkRmapRec(left, w); err != nil {
			return err
		}
		if a.rmapOverlapsOwned(left, agbno, n) {
			return w.corrupt("mapping blocks %d+%d of AG %d to %s: already mapped to %s at %d+%d", agbno, n, a.ag, o, left.rmapOwner, left.start, left.count)
		}
	}
	rp := append([]pathEnt(nil), path...)
	if path[0].idx < 0 && path[0].blk.n() == 0 {
		// An empty tree: nothing on the right either.
	} else {
		ok, err := bt.step(rp, 1)
		if err != nil {
			return err
		}
		if ok {
			right, hasR = decodeRmap(rp[0].blk.ent(rp[0].idx)), true
			if err := a.checkRmapRec(right, bt.where(rp[0].blk.agbno)); err != nil {
				return err
			}
			if uint64(right.start) < end {
				return w.corrupt("mapping blocks %d+%d of AG %d to %s: block %d is already mapped to %s", agbno, n, a.ag, o, right.start, right.rmapOwner)
			}
		}
	}
	joins := func(x rmapRec, xo rmapOwner, y rmapRec) bool { // x then y
		return x.owner == y.owner && x.flags == y.flags && x.end() == uint64(y.start) &&
			(xo.ignoresOffset() || x.off+uint64(x.count) == y.off) &&
			uint64(x.count)+uint64(y.count) <= 0xFFFFFFFF
	}
	rec := rmapRec{start: agbno, count: n, rmapOwner: o}
	if o.ignoresOffset() {
		rec.off = 0
	}
	mergeL := hasL && joins(left, left.rmapOwner, rec)
	mergeR := hasR && joins(rec, o, right) && (!mergeL || uint64(left.count)+uint64(n)+uint64(right.count) <= 0xFFFFFFFF)
	switch {
	case mergeL && mergeR:
		if err := bt.remove(rp); err != nil {
			return err
		}
		left.count += n + right.count
		return a.rmapUpdate(left)
	case mergeL:
		left.count += n
		bt.update(path, encodeRmap(left))
		return nil
	case mergeR:
		right.start, right.count, right.off = agbno, right.count+n, rec.off
		bt.update(rp, encodeRmap(right))
		return nil
	}
	return bt.insert(encodeRmap(rec))
}

// checkRmapRec bounds a record read from disk: at least one block, all
// inside the AG, an offset that fits the file's 54 bits.
func (a *agAlloc) checkRmapRec(r rmapRec, w where) error {
	if r.count == 0 || r.end() > uint64(a.rmap.agLength()) || !r.ignoresOffset() && r.off+uint64(r.count) > rmapOffMask+1 {
		return w.corrupt("reverse mapping %d+%d (%s) lies outside the AG's %d blocks or the file's offsets", r.start, r.count, r.rmapOwner, a.rmap.agLength())
	}
	return nil
}

// rmapOverlapsOwned reports whether record r covers any of the n blocks
// at agbno: a record of a shared extent ending before agbno does not.
func (a *agAlloc) rmapOverlapsOwned(r rmapRec, agbno, n uint32) bool {
	return uint64(r.start) < uint64(agbno)+uint64(n) && r.end() > uint64(agbno)
}

// rmapUpdate rewrites the record starting at r.start with r's owner.
func (a *agAlloc) rmapUpdate(r rmapRec) error {
	bt := a.rmap
	path, err := bt.lookup(rmapKey(r.start, r.rmapOwner))
	if err != nil {
		return err
	}
	if path[0].idx < 0 || decodeRmap(path[0].blk.ent(path[0].idx)).start != r.start {
		return bt.where(path[0].blk.agbno).corrupt("reverse mapping at block %d vanished", r.start)
	}
	bt.update(path, encodeRmap(r))
	return nil
}

// rmapUnmap records that the n blocks at agbno no longer belong to o:
// the record covering them, which must name o (and for inode data the
// matching file offset), shrinks, splits or goes, as xfs_rmap_unmap does.
func (a *agAlloc) rmapUnmap(agbno, n uint32, o rmapOwner) error {
	bt := a.rmap
	if bt == nil || n == 0 {
		return nil
	}
	end := uint64(agbno) + uint64(n)
	path, err := bt.lookup(rmapKey(agbno, o))
	if err != nil {
		return err
	}
	w := bt.where(path[0].blk.agbno)
	var r rmapRec
	found := false
	for i, ok := 0, path[0].idx >= 0; ok && i < maxRmapScan; i++ {
		r = decodeRmap(path[0].blk.ent(path[0].idx))
		if err := a.checkRmapRec(r, bt.where(path[0].blk.agbno)); err != nil {
			return err
		}
		if r.owner == o.owner && r.start <= agbno && r.end() > uint64(agbno) {
			found = true
			break
		}
		if ok, err = bt.step(path, -1); err != nil {
			return err
		}
	}
	if !found {
		return w.corrupt("freeing blocks %d+%d of AG %d (%s): no reverse mapping covers them", agbno, n, a.ag, o)
	}
	w = bt.where(path[0].blk.agbno)
	skip := agbno - r.start
	if r.end() < end || r.flags != o.flags || !o.ignoresOffset() && r.off+uint64(skip) != o.off {
		return w.corrupt("freeing blocks %d+%d of AG %d (%s): the reverse mapping %d+%d says %s", agbno, n, a.ag, o, r.start, r.count, r.rmapOwner)
	}
	switch {
	case r.start == agbno && r.end() == end:
		return bt.remove(path)
	case r.start == agbno:
		r.rmapOwner = r.rmapOwner.at(n)
		r.start, r.count = agbno+n, r.count-n
		bt.update(path, encodeRmap(r))
		return nil
	case r.end() == end:
		r.count -= n
		bt.update(path, encodeRmap(r))
		return nil
	}
	// The middle: the record keeps the left part, the right part is new.
	tail := rmapRec{start: uint32(end), count: uint32(r.end() - end), rmapOwner: r.rmapOwner.at(skip + n)}
	r.count = skip
	bt.update(path, encodeRmap(r))
	return bt.insert(encodeRmap(tail))
}
