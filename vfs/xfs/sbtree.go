package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// sbtree edits one short-form (per-AG) B+tree inside a transaction: the
// free-space btrees now, the inode btrees next. Node keys are the first
// record's key of the child below (no overlapping intervals); every
// block but the root keeps at least maxrecs/2 entries, as xfs_repair
// checks; siblings point at each other at every level.
//
// Each operation looks its path up again from the root (a path is
// O(levels) blocks, all held by the transaction after the first use), so
// no cursor outlives a change.
type sbtree struct {
	t       *tx
	ag      uint32
	what    string // "bnobt", ...
	magic   uint32
	recSize int
	keySize int
	keyOf   func(rec []byte) []byte // the key of a record: a prefix of it
	cmp     func(a, b []byte) int   // orders keys
	// root and levels as recorded in the AG header, and their update.
	root    func() (agbno uint32, levels int)
	setRoot func(agbno uint32, levels int) error
	// allocBlock and freeBlock give the tree a block and take one back.
	allocBlock func() (uint32, error)
	freeBlock  func(agbno uint32) error

	maxRecs [2]int // leaf, node

	// overlap marks an overlapping-interval tree (the rmap btree): a
	// node entry is the child's low key followed by its high key (the
	// largest high key below it), each keySize/2 bytes; keyOf returns
	// both for a record, cmp orders by the low key alone.
	overlap bool
}

// maxBtreeLevels bounds a per-AG btree's height (an AG of 2^31 blocks
// indexed with the smallest fanout needs fewer).
const maxBtreeLevels = 9

const sbPtrSize = 4

func (bt *sbtree) init() {
	g := &bt.t.f.geo
	bs := int(g.blockSize)
	bt.maxRecs[0] = layout.ShortBtreeMaxRecs(bs, g.crc, true, bt.recSize, bt.keySize, sbPtrSize)
	bt.maxRecs[1] = layout.ShortBtreeMaxRecs(bs, g.crc, false, bt.recSize, bt.keySize, sbPtrSize)
}

func (bt *sbtree) hdrSize() int {
	if bt.t.f.geo.crc {
		return layout.ShortBlockCRCSize
	}
	return layout.ShortBlockSize
}

// sblk is a btree block held by the transaction.
type sblk struct {
	bt    *sbtree
	agbno uint32
	b     *txBuf
}

func (s sblk) level() int        { return int(binary.BigEndian.Uint16(s.b.data[4:])) }
func (s sblk) n() int            { return int(binary.BigEndian.Uint16(s.b.data[6:])) }
func (s sblk) setN(n int)        { binary.BigEndian.PutUint16(s.b.data[6:], uint16(n)) }
func (s sblk) left() uint32      { return binary.BigEndian.Uint32(s.b.data[8:]) }
func (s sblk) right() uint32     { return binary.BigEndian.Uint32(s.b.data[12:]) }
func (s sblk) setLeft(v uint32)  { binary.BigEndian.PutUint32(s.b.data[8:], v) }
func (s sblk) setRight(v uint32) { binary.BigEndian.PutUint32(s.b.data[12:], v) }
func (s sblk) leaf() bool        { return s.level() == 0 }
func (s sblk) max() int          { return s.bt.maxRecs[min(s.level(), 1)] }
func (s sblk) dirty()            { s.bt.t.markDirty(s.b) }
func (s sblk) entSize() int      { return s.bt.entSize(s.leaf()) }
func (s sblk) ptrBase() int      { return s.bt.hdrSize() + s.bt.maxRecs[1]*s.bt.keySize }
func (s sblk) ptr(i int) uint32  { return binary.BigEndian.Uint32(s.b.data[s.ptrBase()+i*sbPtrSize:]) }
func (s sblk) setPtr(i int, v uint32) {
	binary.BigEndian.PutUint32(s.b.data[s.ptrBase()+i*sbPtrSize:], v)
}

// ent returns entry i: a record in a leaf, a key in a node.
func (s sblk) ent(i int) []byte {
	sz := s.entSize()
	off := s.bt.hdrSize() + i*sz
	return s.b.data[off : off+sz]
}

// key returns the key of entry i.
func (s sblk) key(i int) []byte {
	if s.leaf() {
		return s.bt.keyOf(s.ent(i))
	}
	return s.ent(i)
}

func (bt *sbtree) entSize(leaf bool) int {
	if leaf {
		return bt.recSize
	}
	return bt.keySize
}

// item is one entry moved around: a record, or a key and its pointer.
type item struct {
	ent []byte
	ptr uint32
}

func (s sblk) item(i int) item {
	it := item{ent: bytes.Clone(s.ent(i))}
	if !s.leaf() {
		it.ptr = s.ptr(i)
	}
	return it
}

// setItems replaces the block's entries.
func (s sblk) setItems(items []item) {
	for i, it := range items {
		copy(s.ent(i), it.ent)
		if !s.leaf() {
			s.setPtr(i, it.ptr)
		}
	}
	// Clear what lies beyond, so stale entries do not linger on disk.
	end := s.bt.hdrSize() + len(items)*s.entSize()
	if s.leaf() {
		clear(s.b.data[end:])
	} else {
		clear(s.b.data[end:s.ptrBase()])
		clear(s.b.data[s.ptrBase()+len(items)*sbPtrSize:])
	}
	s.setN(len(items))
	s.dirty()
}

func (s sblk) items() []item {
	out := make([]item, s.n())
	for i := range out {
		out[i] = s.item(i)
	}
	return out
}

func (bt *sbtree) where(agbno uint32) where {
	g := &bt.t.f.geo
	lin := int64(bt.ag)*int64(g.agBlocks) + int64(agbno)
	return where{what: bt.what + " block", ag: int64(bt.ag), block: int64(agbno), off: lin << g.blockLog}
}

func (bt *sbtree) blockOff(agbno uint32) int64 {
	g := &bt.t.f.geo
	return (int64(bt.ag)*int64(g.agBlocks) + int64(agbno)) << g.blockLog
}

// agLength is the number of blocks of the tree's AG.
func (bt *sbtree) agLength() uint32 {
	g := &bt.t.f.geo
	if last := g.agCount - 1; uint64(bt.ag) == last {
		return uint32(g.dBlocks - last*g.agBlocks)
	}
	return uint32(g.agBlocks)
}

// get reads and checks block agbno, which must sit at level.
func (bt *sbtree) get(agbno uint32, level int) (sblk, error) {
	w := bt.where(agbno)
	if agbno == 0 || agbno >= bt.agLength() {
		return sblk{}, w.corrupt("%s pointer %d lies outside the AG's %d blocks", bt.what, agbno, bt.agLength())
	}
	b, err := bt.t.buf(bt.blockOff(agbno), int(bt.t.f.geo.blockSize), kindShortBtree, classAlloc, w)
	if err != nil {
		return sblk{}, err
	}
	s := sblk{bt: bt, agbno: agbno, b: b}
	h, err := layout.DecodeShortBlock(b.data)
	if err != nil {
		return sblk{}, w.corrupt("%v", err)
	}
	if h.Magic != bt.magic {
		return sblk{}, w.corrupt("magic %#x, want %#x", h.Magic, bt.magic)
	}
	if int(h.Level) != level {
		return sblk{}, w.corrupt("level %d, want %d", h.Level, level)
	}
	if int(h.NumRecs) > s.max() {
		return sblk{}, w.corrupt("%d records, at most %d fit", h.NumRecs, s.max())
	}
	if g := &bt.t.f.geo; g.crc && !b.fresh {
		if h.Blkno != uint64(bt.blockOff(agbno))/layout.BBSize || h.UUID != g.metaUUID || h.Owner != bt.ag {
			return sblk{}, w.corrupt("self-description (daddr %d, owner %d) does not match its place", h.Blkno, h.Owner)
		}
	}
	return s, nil
}

// newBlock allocates and formats an empty block at level.
func (bt *sbtree) newBlock(level int) (sblk, error) {
	agbno, err := bt.allocBlock()
	if err != nil {
		return sblk{}, err
	}
	w := bt.where(agbno)
	b, err := bt.t.newBuf(bt.blockOff(agbno), int(bt.t.f.geo.blockSize), kindShortBtree, w)
	if err != nil {
		return sblk{}, err
	}
	d := b.data
	binary.BigEndian.PutUint32(d[0:], bt.magic)
	binary.BigEndian.PutUint16(d[4:], uint16(level))
	binary.BigEndian.PutUint32(d[8:], layout.NullAGBlock)
	binary.BigEndian.PutUint32(d[12:], layout.NullAGBlock)
	if g := &bt.t.f.geo; g.crc {
		binary.BigEndian.PutUint64(d[0x10:], uint64(bt.blockOff(agbno))/layout.BBSize)
		copy(d[0x20:0x30], g.metaUUID[:])
		binary.BigEndian.PutUint32(d[0x30:], bt.ag)
	}
	s := sblk{bt: bt, agbno: agbno, b: b}
	s.dirty()
	return s, nil
}

// pathEnt is one step of a lookup path: a block and the entry chosen.
type pathEnt struct {
	blk sblk
	idx int
}

// lookup descends to the leaf where key belongs. At each level idx is
// the last entry whose key is <= key, -1 when key sorts before every
// entry (only in the leftmost blocks). path[0] is the leaf.
func (bt *sbtree) lookup(key []byte) ([]pathEnt, error) {
	root, levels := bt.root()
	if levels < 1 || levels > maxBtreeLevels {
		return nil, bt.where(root).corrupt("%s height %d outside [1, %d]", bt.what, levels, maxBtreeLevels)
	}
	path := make([]pathEnt, levels)
	agbno := root
	for level := levels - 1; level >= 0; level-- {
		s, err := bt.get(agbno, level)
		if err != nil {
			return nil, err
		}
		n := s.n()
		if level > 0 && n == 0 {
			return nil, bt.where(agbno).corrupt("empty %s node", bt.what)
		}
		// Binary search: the last entry with key <= key.
		lo, hi := 0, n // entries [0, lo) are <= key
		for lo < hi {
			mid := (lo + hi) / 2
			if bt.cmp(s.key(mid), key) <= 0 {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		idx := lo - 1
		path[level] = pathEnt{s, idx}
		if level > 0 {
			agbno = s.ptr(max(idx, 0))
			path[level].idx = max(idx, 0)
		}
	}
	return path, nil
}

// first returns a path to the first record (idx 0 of the leftmost leaf,
// possibly an empty root leaf); last to the last record.
func (bt *sbtree) edge(last bool) ([]pathEnt, error) {
	root, levels := bt.root()
	if levels < 1 || levels > maxBtreeLevels {
		return nil, bt.where(root).corrupt("%s height %d outside [1, %d]", bt.what, levels, maxBtreeLevels)
	}
	path := make([]pathEnt, levels)
	agbno := root
	for level := levels - 1; level >= 0; level-- {
		s, err := bt.get(agbno, level)
		if err != nil {
			return nil, err
		}
		idx := 0
		if last {
			idx = s.n() - 1
		}
		if level > 0 {
			if s.n() == 0 {
				return nil, bt.where(agbno).corrupt("empty %s node", bt.what)
			}
			agbno = s.ptr(idx)
		}
		path[level] = pathEnt{s, idx}
	}
	return path, nil
}

// step moves path to the next (dir 1) or previous (dir -1) record; it
// reports false at either end of the tree.
func (bt *sbtree) step(path []pathEnt, dir int) (bool, error) {
	path[0].idx += dir
	if path[0].idx >= 0 && path[0].idx < path[0].blk.n() {
		return true, nil
	}
	l := 1
	for ; l < len(path); l++ {
		path[l].idx += dir
		if path[l].idx >= 0 && path[l].idx < path[l].blk.n() {
			break
		}
	}
	if l == len(path) {
		return false, nil
	}
	for ; l > 0; l-- {
		child, err := bt.get(path[l].blk.ptr(path[l].idx), l-1)
		if err != nil {
			return false, err
		}
		if child.n() == 0 {
			return false, bt.where(child.agbno).corrupt("empty non-root %s block", bt.what)
		}
		idx := 0
		if dir < 0 {
			idx = child.n() - 1
		}
		path[l-1] = pathEnt{child, idx}
	}
	return true, nil
}

// rec returns a copy of the record path points at.
func (path0 pathEnt) rec() []byte { return bytes.Clone(path0.blk.ent(path0.idx)) }

// parentKey is the key the parent holds for block s: its first key, and
// in an overlapping tree the largest high key of its entries after it
// (the first one kept on ties, as the kernel keeps it).
func (bt *sbtree) parentKey(s sblk) []byte {
	k := bytes.Clone(s.key(0))
	if !bt.overlap {
		return k
	}
	h := bt.keySize / 2
	for i := 1; i < s.n(); i++ {
		if hk := s.key(i)[h:]; bt.cmp(hk, k[h:]) > 0 {
			copy(k[h:], hk)
		}
	}
	return k
}

// updateKeys rewrites the parents' keys after the first entry of the
// block at level changed, as far up as it stays the first entry (in an
// overlapping tree, after any change: the high key may move).
func (bt *sbtree) updateKeys(path []pathEnt, level int) {
	for l := level; l+1 < len(path); l++ {
		s := path[l].blk
		if s.n() == 0 {
			return
		}
		p := path[l+1]
		k := bt.parentKey(s)
		if bytes.Equal(p.blk.ent(p.idx), k) {
			return
		}
		copy(p.blk.ent(p.idx), k)
		p.blk.dirty()
		if p.idx != 0 && !bt.overlap {
			return
		}
	}
}

// siblingPath is path with the block at level replaced by its sibling
// under the same parent at parent entry pidx.
func siblingPath(path []pathEnt, level int, sib sblk, pidx int) []pathEnt {
	sp := append([]pathEnt(nil), path...)
	sp[level], sp[level+1].idx = pathEnt{sib, 0}, pidx
	return sp
}

// insert adds rec, which must not be present.
func (bt *sbtree) insert(rec []byte) error {
	path, err := bt.lookup(bt.keyOf(rec))
	if err != nil {
		return err
	}
	if i := path[0].idx; i >= 0 && bt.cmp(path[0].blk.key(i), bt.keyOf(rec)) == 0 {
		return bt.where(path[0].blk.agbno).corrupt("%s already holds a record with the key being inserted", bt.what)
	}
	return bt.insertAt(path, 0, path[0].idx+1, item{ent: bytes.Clone(rec)})
}

// insertAt puts it at position idx of the block at level of path,
// splitting blocks as needed.
func (bt *sbtree) insertAt(path []pathEnt, level, idx int, it item) error {
	s := path[level].blk
	items := s.items()
	items = append(items[:idx], append([]item{it}, items[idx:]...)...)
	if len(items) <= s.max() {
		s.setItems(items)
		if idx == 0 || bt.overlap {
			bt.updateKeys(path, level)
		}
		return nil
	}
	// Split: the left half stays, the right half moves to a new block.
	r, err := bt.newBlock(level)
	if err != nil {
		return err
	}
	h := len(items) / 2
	s.setItems(items[:h])
	r.setItems(items[h:])
	r.setLeft(s.agbno)
	r.setRight(s.right())
	if nr := s.right(); nr != layout.NullAGBlock {
		rs, err := bt.get(nr, level)
		if err != nil {
			return err
		}
		rs.setLeft(r.agbno)
		rs.dirty()
	}
	s.setRight(r.agbno)
	s.dirty()
	r.dirty()
	if idx == 0 || bt.overlap {
		bt.updateKeys(path, level)
	}
	up := item{ent: bt.parentKey(r), ptr: r.agbno}
	if level+1 < len(path) {
		return bt.insertAt(path, level+1, path[level+1].idx+1, up)
	}
	// The root split: a new root above both halves.
	if len(path) >= maxBtreeLevels {
		return fmt.Errorf("xfs: %s in AG %d would grow beyond %d levels", bt.what, bt.ag, maxBtreeLevels)
	}
	nr, err := bt.newBlock(level + 1)
	if err != nil {
		return err
	}
	nr.setItems([]item{{ent: bt.parentKey(s), ptr: s.agbno}, up})
	return bt.setRoot(nr.agbno, len(path)+1)
}

// remove deletes the record path points at.
func (bt *sbtree) remove(path []pathEnt) error {
	return bt.removeAt(path, 0, path[0].idx)
}

// removeAt deletes entry idx of the block at level, then rebalances: a
// block left below maxrecs/2 borrows an entry from a sibling under the
// same parent, or is joined with it.
func (bt *sbtree) removeAt(path []pathEnt, level, idx int) error {
	s := path[level].blk
	items := s.items()
	if idx < 0 || idx >= len(items) {
		return fmt.Errorf("xfs: %s in AG %d: removing entry %d of %d (a bug)", bt.what, bt.ag, idx, len(items))
	}
	items = append(items[:idx], items[idx+1:]...)
	s.setItems(items)
	if level+1 == len(path) { // the root
		if level > 0 && len(items) == 1 {
			if err := bt.setRoot(items[0].ptr, level); err != nil {
				return err
			}
			return bt.freeBlock(s.agbno)
		}
		return nil
	}
	if idx == 0 || bt.overlap {
		bt.updateKeys(path, level)
	}
	minRecs := s.max() / 2
	if len(items) >= minRecs {
		return nil
	}
	p := path[level+1]
	var left, right sblk
	var err error
	if p.idx > 0 {
		if left, err = bt.get(p.blk.ptr(p.idx-1), level); err != nil {
			return err
		}
	}
	if p.idx+1 < p.blk.n() {
		if right, err = bt.get(p.blk.ptr(p.idx+1), level); err != nil {
			return err
		}
	}
	switch {
	case right.b != nil && right.n() > minRecs:
		ri := right.items()
		s.setItems(append(items, ri[0]))
		right.setItems(ri[1:])
		bt.updateKeys(siblingPath(path, level, right, p.idx+1), level)
		bt.updateKeys(path, level)
		return nil
	case left.b != nil && left.n() > minRecs:
		li := left.items()
		s.setItems(append([]item{li[len(li)-1]}, items...))
		left.setItems(li[:len(li)-1])
		bt.updateKeys(path, level)
		if bt.overlap {
			bt.updateKeys(siblingPath(path, level, left, p.idx-1), level)
		}
		return nil
	case left.b != nil:
		// Join this block into its left sibling.
		left.setItems(append(left.items(), items...))
		if bt.overlap {
			bt.updateKeys(siblingPath(path, level, left, p.idx-1), level)
		}
		return bt.unlinkJoined(path, level, left, s, p.idx)
	case right.b != nil:
		// Join the right sibling into this block.
		s.setItems(append(items, right.items()...))
		bt.updateKeys(path, level)
		return bt.unlinkJoined(path, level, s, right, p.idx+1)
	}
	return bt.where(s.agbno).corrupt("non-root %s block with no sibling under its parent", bt.what)
}

// unlinkJoined drops block gone (emptied into keep, its left neighbour)
// from the sibling chain and from its parent, at entry pidx, and frees it.
func (bt *sbtree) unlinkJoined(path []pathEnt, level int, keep, gone sblk, pidx int) error {
	keep.setRight(gone.right())
	keep.dirty()
	if nr := gone.right(); nr != layout.NullAGBlock {
		rs, err := bt.get(nr, level)
		if err != nil {
			return err
		}
		rs.setLeft(keep.agbno)
		rs.dirty()
	}
	gone.setItems(nil)
	if err := bt.freeBlock(gone.agbno); err != nil {
		return err
	}
	return bt.removeAt(path, level+1, pidx)
}

// update overwrites the record path points at with rec, whose key must
// keep the record's place in the order.
func (bt *sbtree) update(path []pathEnt, rec []byte) {
	s := path[0].blk
	copy(s.ent(path[0].idx), rec)
	s.dirty()
	if path[0].idx == 0 || bt.overlap {
		bt.updateKeys(path, 0)
	}
}
