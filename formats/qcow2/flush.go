package qcow2

import (
	"encoding/binary"
	"sort"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Crash safety. A write reaches the file in this order, with a sync between
// each step, so that whatever prefix survives a crash (of the process or of
// the host) can only leak clusters, never make a table point at a cluster
// that is unwritten or uncounted, or count a cluster too low:
//
//  1. data clusters, new L2 tables (empty or copied) and refcount increments
//     — written by WriteAt as it goes; nothing points at them yet;
//  2. changed L2 tables;
//  3. changed L1 entries;
//  4. refcount decrements of what the new entries replaced.
//
// The guest's own write order (an ext transaction writes data, then extent
// nodes, then inodes, then directories, then bitmaps) must hold through
// the container too, or a crash can leave an inode pointing at an extent
// node the guest never sees. A write to a cluster already mapped reaches
// the guest at once, while one into a new cluster becomes visible only
// when its L2 entry is written. So the pending changes to what the guest
// reads form one batch, kept in a single L2 table (batchL2), which one
// write of that table (or of the L1 entry linking a new table) makes
// visible as a whole. The barrier flushes the batch, in the order above,
// before a write that would become visible outside it: a write in place
// to a cluster the batch did not allocate, or a mapping change in another
// L2 table. Consecutive writes into new clusters of one table still batch.
// A fresh overlay (Options.Unordered) is discarded after a crash, so it
// needs no barrier.

// flushIfFull writes pending metadata when too much is pinned in memory.
func (img *Image) flushIfFull() error {
	if len(img.dirtyL2) >= max(2, img.l2.max/2) || len(img.pendingFree) >= 1<<14 {
		return img.flushMeta()
	}
	return nil
}

// sync is a sync that orders metadata writes: everything written so far
// becomes durable before what follows is written. With Options.Unordered it
// does nothing; Flush still makes everything durable at its end.
func (img *Image) sync() error {
	if img.unordered {
		return nil
	}
	return img.syncNow()
}

// syncNow makes everything written so far durable (a no-op when nothing
// was written since the last sync).
func (img *Image) syncNow() error {
	if !img.unsynced {
		return nil
	}
	if err := img.f.Sync(); err != nil {
		return diskerr.At(-1, "sync qcow2 image", err)
	}
	img.unsynced = false
	return nil
}

// barrier flushes the pending batch before a write that would reach the
// guest outside it: visible says the write lands in place where the guest
// reads it at once; l2 is the table whose entry the write changes.
func (img *Image) barrier(visible bool, l2 int64) error {
	if img.unordered || img.batchL2 == 0 || (!visible && l2 == img.batchL2) {
		return nil
	}
	return img.flushMeta()
}

// flushMeta runs steps 2-4 above. A sync separates two steps only when
// the later one has something to write.
func (img *Image) flushMeta() error {
	if len(img.dirtyL2) == 0 && len(img.dirtyL1) == 0 && len(img.pendingFree) == 0 {
		return nil
	}
	if err := img.sync(); err != nil {
		return err
	}
	if err := img.writeDirtyL2(); err != nil {
		return err
	}
	if len(img.dirtyL1) > 0 {
		if err := img.sync(); err != nil {
			return err
		}
	}
	if err := img.writeDirtyL1(); err != nil {
		return err
	}
	img.batchL2 = 0
	clear(img.fresh)
	if len(img.pendingFree) > 0 {
		if err := img.sync(); err != nil {
			return err
		}
	}
	for len(img.pendingFree) > 0 {
		c := img.pendingFree[0]
		if err := img.decRef(c); err != nil {
			return err
		}
		img.pendingFree = img.pendingFree[1:]
	}
	img.pendingFree = nil
	return nil
}

func sortedKeys(m map[int64]bool) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func (img *Image) writeDirtyL2() error {
	if len(img.dirtyL2) == 0 {
		return nil
	}
	for _, off := range sortedKeys(img.dirtyL2) {
		t := img.l2.get(off)
		if t == nil {
			return diskerr.At(off, "qcow2 dirty L2 table lost from the cache", diskerr.ErrCorrupt)
		}
		if err := img.writeHost(t, off); err != nil {
			return err
		}
	}
	clear(img.dirtyL2)
	return nil
}

func (img *Image) writeDirtyL1() error {
	if len(img.dirtyL1) == 0 {
		return nil
	}
	base := int64(img.meta.L1TableOffset)
	for _, i := range sortedKeys(img.dirtyL1) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], img.l1[i/l1Chunk][i%l1Chunk])
		if err := img.writeHost(b[:], base+i*8); err != nil {
			return err
		}
	}
	clear(img.dirtyL1)
	return nil
}
