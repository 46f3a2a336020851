package xfs

import (
	"encoding/binary"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// The reference-count btree of a reflink filesystem: per AG, one record
// (start, length, refcount) per extent of blocks owned more than once,
// keyed by start block; copy-on-write staging extents carry bit 31 of the
// start and sort after every shared one. The engine never shares a block,
// so it only reads the tree: before freeing an extent, to refuse freeing
// blocks another file still owns.

// Refcount btree constants (struct xfs_refcount_rec).
const (
	refcountCRCMagic = 0x52334643 // "R3FC"
	refcountRecSize  = 12
	refcountKeySize  = 4
	refcountCowFlag  = 1 << 31
	agfRefcountRoot  = 0x58
	agfRefcountLevel = 0x5C
)

// refcountTree returns AG a's refcount btree, read-only: a block it
// would allocate or free is a bug.
func (a *agAlloc) refcountTree() *sbtree {
	t := a.t
	bt := &sbtree{t: t, ag: a.ag, what: "refcountbt", magic: refcountCRCMagic, recSize: refcountRecSize, keySize: refcountKeySize}
	bt.keyOf = func(rec []byte) []byte { return rec[:refcountKeySize] }
	bt.cmp = cmp32
	bt.root = func() (uint32, int) { return a.agf32(agfRefcountRoot), int(a.agf32(agfRefcountLevel)) }
	readOnly := func() error { return unsupported("changing the refcount btree") }
	bt.setRoot = func(uint32, int) error { return readOnly() }
	bt.allocBlock = func() (uint32, error) { return 0, readOnly() }
	bt.freeBlock = func(uint32) error { return readOnly() }
	bt.init()
	return bt
}

// maxRefcountScan bounds the records checkNotShared walks.
const maxRefcountScan = 1 << 20

// checkNotShared refuses, on a reflink filesystem, to free n blocks at
// agbno when any of them has a reference-count record (another file
// shares it) or a copy-on-write staging record covers them. The two kinds
// live in two key ranges of the one tree (staging keys carry bit 31), so
// each range is searched from its own key.
func (a *agAlloc) checkNotShared(agbno, n uint32) error {
	if a.t.f.sb.FeaturesROCompat&layout.ROCompatReflink == 0 {
		return nil
	}
	bt := a.refcountTree()
	if err := a.refcountOverlap(bt, agbno, n, false); err != nil {
		return err
	}
	return a.refcountOverlap(bt, agbno, n, true)
}

// refcountOverlap refuses when a record of one kind (shared, or
// copy-on-write staging when cow) overlaps blocks agbno..agbno+n-1.
func (a *agAlloc) refcountOverlap(bt *sbtree, agbno, n uint32, cow bool) error {
	var key [refcountKeySize]byte
	flag := uint32(0)
	if cow {
		flag = refcountCowFlag
	}
	binary.BigEndian.PutUint32(key[:], agbno|flag)
	path, err := bt.lookup(key[:])
	if err != nil {
		return err
	}
	if path[0].blk.n() == 0 {
		return nil // an empty tree
	}
	if path[0].idx < 0 {
		path[0].idx = 0
	}
	end := uint64(agbno) + uint64(n)
	for i := 0; i < maxRefcountScan; i++ {
		r := path[0].blk.ent(path[0].idx)
		start, count, refs := binary.BigEndian.Uint32(r), binary.BigEndian.Uint32(r[4:]), binary.BigEndian.Uint32(r[8:])
		switch {
		case start&refcountCowFlag != flag && !cow:
			return nil // past the shared records: the staging ones follow
		case start&refcountCowFlag != flag:
			// A shared record before the first staging one: step on.
		case uint64(start&^refcountCowFlag) >= end:
			return nil
		case uint64(start&^refcountCowFlag)+uint64(count) <= uint64(agbno):
			// Ends before the blocks: step on.
		case cow:
			return unsupported("freeing blocks %d..%d of AG %d: a copy-on-write staging extent covers them (mount the filesystem once to clean it up)", agbno, end-1, a.ag)
		default:
			return unsupported("freeing blocks %d..%d of AG %d: %d of them are shared with another file (refcount %d); truncating or removing a reflinked file is not done", agbno, end-1, a.ag, count, refs)
		}
		ok, err := bt.step(path, 1)
		if err != nil || !ok {
			return err
		}
	}
	return bt.where(0).corrupt("more than %d refcount records", maxRefcountScan)
}
