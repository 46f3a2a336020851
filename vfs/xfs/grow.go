package xfs

import (
	"encoding/binary"
	"fmt"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// Growing the data section offline, as xfs_growfs does it online: the
// last allocation group is extended up to the AG size (its new blocks
// join its free space), then whole new AGs follow, each with fresh
// headers — a superblock copy, an AGF whose free-space btrees hold one
// extent from the first block after the btree roots to the AG's end, an
// AGI with empty inode btrees, an empty AGFL — and the primary superblock
// gets the new block and AG counts and free blocks; every secondary
// superblock is rewritten from it, as the kernel does after a growfs.
//
// One transaction: the new AGs' blocks are fresh (nothing references
// them until the primary superblock names them), the last AG's
// free-space change is allocation state, the superblocks go last (see
// writeorder.go), so a crash before the primary superblock leaves the old
// filesystem. A new last AG shorter than XFS's minimum AG (64 blocks) is
// left out, as the kernel leaves it out. Shrinking is refused.

// GrowReport is what Grow did (or CheckGrow would do).
type GrowReport struct {
	BlockSize        int
	OldBlocks        uint64
	NewBlocks        uint64
	OldAGs, NewAGs   uint32
	NewFreeBlocks    uint64 // blocks added to the free space
	Writes           int    // buffers written
	Bytes            int64  // bytes written
	LastAGOldBlocks  uint32
	LastAGNewBlocks  uint32 // the old last AG's length after growing
	DroppedTailBlock uint64 // blocks at the end left out (a too-small last AG)
}

// Changed reports whether the filesystem grew.
func (r GrowReport) Changed() bool { return r.NewBlocks > r.OldBlocks }

// maxGrowAGs bounds the AGs one growth creates: each costs its header
// sectors and btree root blocks in memory until commit.
const maxGrowAGs = 1 << 14

// CheckGrow says what growing to size bytes would do, writing nothing;
// size may exceed the device the FS was opened on (inspect asks before
// the partition is extended).
func (f *FS) CheckGrow(size int64) (GrowReport, error) {
	defer f.rlock()()
	r, _, err := f.planGrow(size, false)
	return r, err
}

// growPlan is the geometry growth leads to.
type growPlan struct {
	dBlocks  uint64
	agCount  uint64
	lastOld  uint32 // length of the old last AG
	lastNew  uint32 // its length after growing
	prealloc uint32 // blocks before a new AG's free space
}

// planGrow computes the new geometry for a data section of size bytes.
func (f *FS) planGrow(size int64, onDevice bool) (GrowReport, growPlan, error) {
	g := f.geo
	r := GrowReport{BlockSize: int(g.blockSize), OldBlocks: g.dBlocks, NewBlocks: g.dBlocks, OldAGs: uint32(g.agCount), NewAGs: uint32(g.agCount)}
	var p growPlan
	if onDevice && size > f.size {
		return r, p, fmt.Errorf("xfs: growing to %d bytes: the device holds %d", size, f.size)
	}
	newD := uint64(size) >> g.blockLog
	if newD < g.dBlocks {
		return r, p, unsupported("shrinking the filesystem from %d to %d blocks", g.dBlocks, newD)
	}
	if newD > g.dBlocks && f.sb.FeaturesROCompat&layout.ROCompatRmapbt != 0 {
		// New AGs would need an rmapbt root and records for their
		// headers and roots; growing is left to xfs_growfs.
		return r, p, unsupported("growing a filesystem with a reverse-mapping btree (rmapbt); grow it from the booted guest with xfs_growfs")
	}
	last := g.agCount - 1
	p.lastOld = uint32(g.dBlocks - last*g.agBlocks)
	nag := (newD + g.agBlocks - 1) / g.agBlocks
	if tail := newD - (nag-1)*g.agBlocks; nag > g.agCount && tail < minAGBlocks {
		r.DroppedTailBlock = tail
		newD -= tail
		nag--
	}
	if nag-g.agCount > maxGrowAGs {
		return r, p, unsupported("growing by %d allocation groups of %d blocks (at most %d at once)", nag-g.agCount, g.agBlocks, maxGrowAGs)
	}
	p.dBlocks, p.agCount = newD, nag
	p.lastNew = uint32(min(g.agBlocks, newD-last*g.agBlocks))
	p.prealloc = f.agPrealloc()
	r.NewBlocks, r.NewAGs = newD, uint32(nag)
	r.LastAGOldBlocks, r.LastAGNewBlocks = p.lastOld, p.lastNew
	r.NewFreeBlocks = uint64(p.lastNew - p.lastOld)
	for ag := g.agCount; ag < nag; ag++ {
		r.NewFreeBlocks += p.agLen(ag, g.agBlocks) - uint64(p.prealloc)
	}
	return r, p, nil
}

// agLen is the length of AG ag in the planned geometry.
func (p growPlan) agLen(ag, agBlocks uint64) uint64 {
	if ag == p.agCount-1 {
		return p.dBlocks - ag*agBlocks
	}
	return agBlocks
}

// AG-relative blocks of a new AG's btree roots, in the kernel's order:
// after the header sectors, the by-block and by-count roots, the inode
// btree root, the free inode btree root (finobt), the refcount root
// (reflink). Growing an rmapbt filesystem is refused (Grow).
func (f *FS) rootBlocks() (bno, cnt, ino, fino, refc uint32) {
	g := f.geo
	agfl := uint32(layout.AGFLSector * g.sectSize / g.blockSize)
	bno, cnt, ino = agfl+1, agfl+2, agfl+3
	next := ino + 1
	if f.sb.FeaturesROCompat&layout.ROCompatFinobt != 0 {
		fino, next = next, next+1
	}
	if f.sb.FeaturesROCompat&layout.ROCompatReflink != 0 {
		refc = next
	}
	return
}

// agPrealloc is the first block of a new AG's free space.
func (f *FS) agPrealloc() uint32 {
	_, _, ino, fino, refc := f.rootBlocks()
	return max(ino, fino, refc) + 1
}

// Grow extends the data section to size bytes (at most the size the FS
// was opened with), offline. The FS must be writable; after Grow it
// serves the grown filesystem.
func (f *FS) Grow(size int64) (GrowReport, error) {
	defer f.wlock()()
	if f.w == nil {
		return GrowReport{}, ErrReadOnlyFS
	}
	if err := f.checkWritable(); err != nil {
		return GrowReport{}, err
	}
	r, p, err := f.planGrow(size, true)
	if err != nil || !r.Changed() {
		return r, err
	}
	old := f.geo
	t, err := f.begin()
	if err != nil {
		return r, err
	}
	if err := f.growTx(t, p); err != nil {
		t.abort()
		f.geo = old
		return r, err
	}
	for _, b := range t.bufs {
		if b.dirty {
			r.Writes++
			r.Bytes += int64(len(b.data))
		}
	}
	if err := t.commit(); err != nil {
		f.geo = old
		return r, err
	}
	if err := f.loadSuperblock(); err != nil {
		return r, fmt.Errorf("xfs: reading the grown superblock back: %w", err)
	}
	return r, nil
}

// growTx builds the growth in transaction t.
func (f *FS) growTx(t *tx, p growPlan) error {
	g := &f.geo
	oldAGs := g.agCount
	var lastAG *agAlloc
	if p.lastNew > p.lastOld {
		a, err := t.allocGroup(uint32(oldAGs - 1)) // checked against the old geometry
		if err != nil {
			return err
		}
		lastAG = a
	}
	g.dBlocks, g.agCount = p.dBlocks, p.agCount
	sectSize := int(g.sectSize)
	if lastAG != nil {
		ag := uint32(oldAGs - 1)
		lastAG.setAGF32(0x0C, p.lastNew)
		agStart := int64(ag) * int64(g.agBlocks) << g.blockLog
		w := where{what: "AGI", ag: int64(ag), off: agStart + layout.AGISector*g.sectSize}
		agi, err := t.buf(w.off, sectSize, kindAGI, classAlloc, w)
		if err != nil {
			return err
		}
		if got := binary.BigEndian.Uint32(agi.data[0x0C:]); got != p.lastOld {
			return w.corrupt("length %d, want %d as the AGF says", got, p.lastOld)
		}
		binary.BigEndian.PutUint32(agi.data[0x0C:], p.lastNew)
		t.markDirty(agi)
		// The new blocks were never part of the filesystem: they join the
		// free space directly (no refcount question on reflink), and the
		// free list is refilled from them if it must be.
		n := p.lastNew - p.lastOld
		if err := lastAG.freeRecords(p.lastOld, n); err != nil {
			return err
		}
		if err := t.addFDBlocks(int64(n)); err != nil {
			return err
		}
		if err := lastAG.setLongest(); err != nil {
			return err
		}
		if err := lastAG.fixFreelist(); err != nil {
			return err
		}
	}
	var added uint64
	for ag := oldAGs; ag < p.agCount; ag++ {
		n, err := f.newAG(t, uint32(ag), uint32(p.agLen(ag, g.agBlocks)), p.prealloc)
		if err != nil {
			return err
		}
		added += uint64(n)
	}
	if err := t.addFDBlocks(int64(added)); err != nil {
		return err
	}
	sb, err := t.buf(0, sectSize, kindSuper, classSuper, at("superblock", 0))
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint64(sb.data[0x08:], p.dBlocks)
	binary.BigEndian.PutUint32(sb.data[0x58:], uint32(p.agCount))
	t.markDirty(sb)
	// Every other AG's superblock becomes a copy of the new primary.
	for ag := uint64(1); ag < p.agCount; ag++ {
		off := int64(ag) * int64(g.agBlocks) << g.blockLog
		w := where{what: "secondary superblock", ag: int64(ag), off: off}
		var b *txBuf
		if ag < oldAGs {
			b, err = t.buf(off, sectSize, kindSuper, classSuper, w)
		} else {
			b, err = t.newBuf(off, sectSize, kindSuper, w)
		}
		if err != nil {
			return err
		}
		copy(b.data, sb.data)
		t.markDirty(b)
	}
	return nil
}

// newAG writes the headers and btree roots of a new, empty AG of length
// blocks; it returns the free blocks it adds.
func (f *FS) newAG(t *tx, ag, length, prealloc uint32) (uint32, error) {
	g := &f.geo
	crc := g.crc
	sect := int(g.sectSize)
	agStart := int64(ag) * int64(g.agBlocks) << g.blockLog
	if length <= prealloc {
		return 0, fmt.Errorf("xfs: new AG %d of %d blocks has no room after its %d header blocks (a bug)", ag, length, prealloc)
	}
	free := length - prealloc
	be := binary.BigEndian
	bno, cnt, ino, fino, refc := f.rootBlocks()
	hdr := func(sector int64, kind bufKind, what string) (*txBuf, error) {
		w := where{what: what, ag: int64(ag), off: agStart + sector*g.sectSize}
		return t.newBuf(w.off, sect, kind, w)
	}
	agf, err := hdr(layout.AGFSector, kindAGF, "AGF")
	if err != nil {
		return 0, err
	}
	slots, first := layout.AGFLSlots(sect, crc)
	d := agf.data
	be.PutUint32(d[0x00:], layout.AGFMagic)
	be.PutUint32(d[0x04:], 1)
	be.PutUint32(d[0x08:], ag)
	be.PutUint32(d[0x0C:], length)
	be.PutUint32(d[0x10:], bno)
	be.PutUint32(d[0x14:], cnt)
	be.PutUint32(d[0x1C:], 1)
	be.PutUint32(d[0x20:], 1)
	be.PutUint32(d[agfFLFirst:], 0)
	be.PutUint32(d[agfFLLast:], uint32(slots-1))
	be.PutUint32(d[agfFreeBlks:], free)
	be.PutUint32(d[agfLongest:], free)
	if crc {
		copy(d[0x40:0x50], g.metaUUID[:])
		if refc != 0 {
			be.PutUint32(d[0x54:], 1) // refcount btree blocks
			be.PutUint32(d[0x58:], refc)
			be.PutUint32(d[0x5C:], 1)
		}
	}
	t.markDirty(agf)
	agi, err := hdr(layout.AGISector, kindAGI, "AGI")
	if err != nil {
		return 0, err
	}
	d = agi.data
	be.PutUint32(d[0x00:], layout.AGIMagic)
	be.PutUint32(d[0x04:], 1)
	be.PutUint32(d[0x08:], ag)
	be.PutUint32(d[0x0C:], length)
	be.PutUint32(d[0x14:], ino)
	be.PutUint32(d[0x18:], 1)
	be.PutUint32(d[0x20:], layout.NullAGIno)
	be.PutUint32(d[0x24:], layout.NullAGIno)
	for i := range layout.AGIUnlinkedBuckets {
		be.PutUint32(d[0x28+4*i:], layout.NullAGIno)
	}
	if crc {
		copy(d[0x128:0x138], g.metaUUID[:])
		if fino != 0 {
			be.PutUint32(d[0x148:], fino)
			be.PutUint32(d[0x14C:], 1)
		}
		if f.sb.FeaturesROCompat&layout.ROCompatInobtCnt != 0 {
			be.PutUint32(d[0x150:], 1)
			if fino != 0 {
				be.PutUint32(d[0x154:], 1)
			}
		}
	}
	t.markDirty(agi)
	agfl, err := hdr(layout.AGFLSector, kindAGFL, "AGFL")
	if err != nil {
		return 0, err
	}
	d = agfl.data
	if crc {
		be.PutUint32(d[0x00:], layout.AGFLMagic)
		be.PutUint32(d[0x04:], ag)
		copy(d[0x08:0x18], g.metaUUID[:])
	}
	for i := range slots {
		be.PutUint32(d[first+4*i:], layout.NullAGBlock)
	}
	t.markDirty(agfl)
	root := func(agbno, magic uint32, what string, rec []byte) error {
		w := where{what: what, ag: int64(ag), block: int64(agbno)}
		off := agStart + int64(agbno)<<g.blockLog
		w.off = off
		b, err := t.newBuf(off, int(g.blockSize), kindShortBtree, w)
		if err != nil {
			return err
		}
		d := b.data
		be.PutUint32(d[0:], magic)
		be.PutUint32(d[8:], layout.NullAGBlock)
		be.PutUint32(d[12:], layout.NullAGBlock)
		hs := layout.ShortBlockSize
		if crc {
			be.PutUint64(d[0x10:], uint64(off)/layout.BBSize)
			copy(d[0x20:0x30], g.metaUUID[:])
			be.PutUint32(d[0x30:], ag)
			hs = layout.ShortBlockCRCSize
		}
		if rec != nil {
			be.PutUint16(d[6:], 1)
			copy(d[hs:], rec)
		}
		t.markDirty(b)
		return nil
	}
	pick := func(v4, v5 uint32) uint32 {
		if crc {
			return v5
		}
		return v4
	}
	freeRec := allocRec(prealloc, free)
	if err := root(bno, pick(layout.BnoMagic, layout.BnoCRCMagic), "bnobt", freeRec); err != nil {
		return 0, err
	}
	if err := root(cnt, pick(layout.CntMagic, layout.CntCRCMagic), "cntbt", freeRec); err != nil {
		return 0, err
	}
	if err := root(ino, pick(layout.InobtMagic, layout.InobtCRCMagic), "inobt", nil); err != nil {
		return 0, err
	}
	if fino != 0 {
		if err := root(fino, layout.FinobtCRCMagic, "finobt", nil); err != nil {
			return 0, err
		}
	}
	if refc != 0 {
		if err := root(refc, refcountCRCMagic, "refcountbt", nil); err != nil {
			return 0, err
		}
	}
	return free, nil
}
