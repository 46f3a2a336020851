package qcow2

import (
	"encoding/binary"
	"fmt"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// WriteAt writes the virtual disk. Clusters are allocated at the end of the
// file; a cluster that is compressed, shared (refcount > 1), zero or still
// in the backing file is copied first. Data and refcount increments are
// written at once; L2 and L1 updates and reference drops wait for Flush,
// which orders them so that a crash can only leak clusters.
func (img *Image) WriteAt(p []byte, off int64) (int, error) {
	img.mu.Lock()
	defer img.mu.Unlock()
	if off < 0 || off > img.Size() || int64(len(p)) > img.Size()-off {
		return 0, diskerr.At(off, fmt.Sprintf("qcow2 write of %d bytes", len(p)), diskerr.ErrOutOfRange)
	}
	if err := img.prepareWrite(); err != nil {
		return 0, err
	}
	cs, done := img.meta.ClusterSize, 0
	for done < len(p) {
		if err := img.flushIfFull(); err != nil {
			return done, err
		}
		in := off & (cs - 1)
		n := int(min(int64(len(p)-done), cs-in))
		if err := img.writeCluster(off>>img.meta.ClusterBits, in, p[done:done+n]); err != nil {
			return done, err
		}
		done, off = done+n, off+int64(n)
	}
	return done, nil
}

// prepareWrite runs once before the first write: planWrite's checks, then
// it clears the autoclear bits we do not maintain (so stale persistent
// bitmaps are not trusted afterwards). Everything that can refuse runs
// before the first byte is written; on failure the image is unchanged and
// the next write tries again.
func (img *Image) prepareWrite() error {
	if img.ready {
		return nil
	}
	if err := img.planWrite(); err != nil {
		return err
	}
	if err := img.applyAutoclear(img.plan); err != nil {
		img.w, img.mm, img.plan = nil, nil, nil
		return err
	}
	img.ready = true
	return nil
}

// planWrite makes every check of the first write that writes nothing: it
// refuses images we must not write, loads the refcount table, plans the
// bitmap drop and maps the metadata (metadata.go). It runs once; CheckWrite
// uses it to judge writes before any is made.
func (img *Image) planWrite() error {
	if img.w != nil {
		return nil
	}
	m := img.meta
	switch {
	case img.readOnly:
		return diskerr.At(-1, "qcow2 write", diskerr.ErrReadOnly)
	case m.IncompatibleFeatures&IncompatCorrupt != 0:
		return diskerr.Corrupt(offIncompat, "qcow2 image is marked corrupt; refusing to write")
	case m.IncompatibleFeatures&IncompatDirty != 0:
		return diskerr.At(offIncompat, "qcow2 write", diskerr.ErrDirty)
	}
	if err := img.loadRefcountTable(); err != nil {
		return err
	}
	plan, err := img.planMeta()
	if err != nil {
		img.w, img.mm = nil, nil
		return err
	}
	img.plan = plan
	return nil
}

// planMeta maps the metadata and plans the drop of what the autoclear bits
// say we must not keep (the refcount table is loaded).
func (img *Image) planMeta() (*bitmapPlan, error) {
	m := img.meta
	var plan *bitmapPlan
	if m.Version >= 3 && m.HasBitmaps && m.AutoclearFeatures&AutoclearBitmaps != 0 {
		var err error
		if plan, err = img.planBitmapDrop(); err != nil {
			return nil, err
		}
	}
	var extra []metaExtent
	if plan != nil {
		extra = plan.meta
	}
	img.dropping = plan // checked against the active L2 entries too
	err := img.buildMetaMap(extra)
	img.dropping = nil
	if err != nil {
		return nil, err
	}
	if plan != nil {
		if err := img.checkBitmapPlan(plan); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// applyAutoclear drops the planned bitmaps, or clears the other autoclear
// bits: the first write to the image.
func (img *Image) applyAutoclear(plan *bitmapPlan) error {
	m := img.meta
	switch {
	case m.Version < 3 || m.AutoclearFeatures == 0:
		return nil
	case plan != nil:
		return img.dropBitmaps(plan)
	}
	var z [8]byte
	if err := img.writeHost(z[:], offAutoclear); err != nil {
		return err
	}
	m.AutoclearFeatures = 0
	return img.sync() // cleared before anything they describe changes
}

// writeCluster writes p at offset in of virtual cluster vc.
func (img *Image) writeCluster(vc, in int64, p []byte) error {
	// Check the mapping before anything is written for it (a shared L2
	// table is copied by writableL2), then look it up in the table we own.
	mp, err := img.lookup(vc)
	if err != nil {
		return err
	}
	if err := img.checkMapping(mp, vc); err != nil {
		return err
	}
	if err := img.writableL2(vc / img.meta.L2Entries); err != nil {
		return err
	}
	if mp, err = img.lookup(vc); err != nil {
		return err
	}
	host := mp.entry.HostOffset()
	owned := false
	if !mp.entry.Compressed() && host != 0 {
		rc, err := img.refcount(host)
		if err != nil {
			return err
		}
		if rc == 0 {
			return diskerr.Corrupt(host, "qcow2 data cluster of virtual cluster %d has refcount 0", vc)
		}
		owned = rc == 1
	}
	if owned && img.allocatedRange(mp, in, int64(len(p))) {
		if err := img.barrier(!img.fresh[host], mp.l2Off); err != nil {
			return err
		}
		if err := img.writeHost(p, host+in); err != nil {
			return err
		}
		if !mp.entry.Copied() {
			return img.setL2(mp, L2Entry(uint64(mp.entry)|FlagCopied), mp.bitmap)
		}
		return nil
	}
	return img.rewriteCluster(mp, vc, in, p, owned)
}

// checkMapping refuses a write through a mapping whose host cluster is
// metadata: writing there (in place) or dropping its reference (after a
// copy) would destroy the table. The clusters of a compressed cluster,
// whose references go away when it is rewritten, must also be counted.
func (img *Image) checkMapping(mp mapping, vc int64) error {
	e := mp.entry
	what := fmt.Sprintf("data cluster of virtual cluster %d", vc)
	if !e.Compressed() {
		if h := e.HostOffset(); h != 0 {
			return img.checkOverlap(h, img.meta.ClusterSize, what)
		}
		return nil
	}
	what = "compressed " + what
	for _, c := range img.compressedClusters(e) {
		if err := img.checkOverlap(c, img.meta.ClusterSize, what); err != nil {
			return err
		}
		rc, err := img.refcount(c)
		if err != nil {
			return err
		}
		if rc == 0 {
			return diskerr.Corrupt(c, "qcow2 %s: host cluster %#x has refcount 0", what, c)
		}
	}
	return nil
}

// compressedClusters lists the host clusters a compressed descriptor's
// sectors span (at most three: the span is bounded by the size field).
func (img *Image) compressedClusters(e L2Entry) []int64 {
	cb := img.meta.ClusterBits
	off, sectors := e.CompressedRange(cb)
	start := off &^ 511
	end := start + sectors*512
	var out []int64
	for c := start >> cb; c <= (end-1)>>cb; c++ {
		out = append(out, c<<cb)
	}
	return out
}

// allocatedRange reports whether [in, in+n) of the cluster holds data in
// the host cluster (not zero, not in the backing file).
func (img *Image) allocatedRange(mp mapping, in, n int64) bool {
	if !img.meta.ExtendedL2 {
		return !mp.entry.Zero()
	}
	scs := img.meta.ClusterSize / Subclusters
	for sc := in / scs; sc <= (in+n-1)/scs; sc++ {
		if !mp.bitmap.Allocated(int(sc)) {
			return false
		}
	}
	return true
}

// rewriteCluster materialises the whole cluster (old contents + p) into the
// host cluster we own, or into a new one, then repoints the L2 entry and
// drops the reference to what it replaced.
func (img *Image) rewriteCluster(mp mapping, vc, in int64, p []byte, owned bool) error {
	if img.scratch == nil {
		img.scratch = make([]byte, img.meta.ClusterSize)
	}
	buf := img.scratch
	if int64(len(p)) < img.meta.ClusterSize { // else p replaces it all
		if err := img.readCluster(vc, 0, buf); err != nil {
			return err
		}
	}
	copy(buf[in:], p)
	if img.compVC == vc {
		img.compVC = -1
	}
	full := SubclusterBitmap(0)
	if img.meta.ExtendedL2 {
		full = AllAllocated
	}
	if owned {
		// In place: the guest sees it at once only where subclusters
		// are already allocated (else the L2 entry decides, later).
		host := mp.entry.HostOffset()
		visible := img.meta.ExtendedL2 && uint32(mp.bitmap) != 0 && !img.fresh[host]
		if err := img.barrier(visible, mp.l2Off); err != nil {
			return err
		}
		if err := img.writeHost(buf, host); err != nil {
			return err
		}
		// Until the batch is written the guest sees none of it, unless
		// some of its subclusters were visible before.
		hidden := !(img.meta.ExtendedL2 && uint32(mp.bitmap) != 0)
		return img.setMapping(mp, L2Entry(uint64(host)|FlagCopied), full, host, hidden)
	}
	if err := img.barrier(false, mp.l2Off); err != nil {
		return err
	}
	nc, err := img.reserve(1)
	if err != nil {
		return err
	}
	if err := img.writeHost(buf, nc); err != nil {
		return err
	}
	if err := img.incRef(nc); err != nil {
		return err
	}
	if err := img.setMapping(mp, L2Entry(uint64(nc)|FlagCopied), full, nc, true); err != nil {
		return err
	}
	return img.release(mp.entry)
}

// setMapping changes what a guest cluster reads (its data now in host
// cluster host) as part of the pending batch (flush.go). hidden: the guest
// cannot see host's contents until the batch is written.
func (img *Image) setMapping(mp mapping, e L2Entry, bm SubclusterBitmap, host int64, hidden bool) error {
	if err := img.setL2(mp, e, bm); err != nil {
		return err
	}
	img.batchL2 = mp.l2Off
	if hidden {
		if img.fresh == nil {
			img.fresh = map[int64]bool{}
		}
		img.fresh[host] = true
	}
	return nil
}

// release queues the references an old L2 entry held; they are dropped
// once the entry that replaced it is on disk (Flush).
func (img *Image) release(e L2Entry) error {
	if e.Compressed() {
		img.pendingFree = append(img.pendingFree, img.compressedClusters(e)...)
		return nil
	}
	if h := e.HostOffset(); h != 0 {
		img.pendingFree = append(img.pendingFree, h)
	}
	return nil
}

// setL2 changes one L2 entry (and its subcluster bitmap) in the cached
// table, which stays pinned until Flush writes it.
func (img *Image) setL2(mp mapping, e L2Entry, bm SubclusterBitmap) error {
	t, err := img.loadTable(img.l2, mp.l2Off, "L2 table")
	if err != nil {
		return err
	}
	w := int64(8)
	if img.meta.ExtendedL2 {
		w = 16
		binary.BigEndian.PutUint64(t[mp.index*w+8:], uint64(bm))
	}
	binary.BigEndian.PutUint64(t[mp.index*w:], uint64(e))
	img.dirtyL2[mp.l2Off] = true
	return nil
}

// setL1 changes one active L1 entry in memory; Flush writes it.
func (img *Image) setL1(i int64, v uint64) error {
	if _, err := img.l1Entry(i); err != nil {
		return err
	}
	img.l1[i/l1Chunk][i%l1Chunk] = v
	img.dirtyL1[i] = true
	return nil
}

// writableL2 makes sure L1 entry i points at an L2 table we own: a missing
// table is created empty, a shared one (internal snapshot) is copied.
func (img *Image) writableL2(i int64) error {
	if i >= int64(img.meta.L1Size) {
		return diskerr.Corrupt(int64(img.meta.L1TableOffset), "qcow2 L1 index %d beyond the table", i)
	}
	v, err := img.l1Entry(i)
	if err != nil {
		return err
	}
	e := L1Entry(v)
	off := e.L2Offset()
	if off == 0 {
		return img.newL2(i, nil)
	}
	if err := img.checkOverlap(off, img.meta.ClusterSize, fmt.Sprintf("L2 table (L1 index %d)", i), kindActiveL2); err != nil {
		return err
	}
	rc, err := img.refcount(off)
	if err != nil {
		return err
	}
	switch {
	case rc == 0:
		return diskerr.Corrupt(off, "qcow2 L2 table (L1 index %d) has refcount 0", i)
	case rc == 1 && e.Copied():
		return nil
	case rc == 1:
		return img.setL1(i, uint64(off)|FlagCopied)
	}
	t, err := img.loadTable(img.l2, off, fmt.Sprintf("L2 table (L1 index %d)", i))
	if err != nil {
		return err
	}
	if err := img.newL2(i, append([]byte(nil), t...)); err != nil {
		return err
	}
	img.pendingFree = append(img.pendingFree, off)
	return nil
}

// newL2 writes a new L2 table (a copy of old, or empty), counts it, then
// links it into L1 entry i.
func (img *Image) newL2(i int64, old []byte) error {
	t := old
	if t == nil {
		t = make([]byte, img.meta.ClusterSize)
	}
	off, err := img.reserve(1)
	if err != nil {
		return err
	}
	if err := img.writeHost(t, off); err != nil {
		return err
	}
	if err := img.incRef(off); err != nil {
		return err
	}
	img.l2.put(off, t)
	img.addMeta(off, kindActiveL2)
	return img.setL1(i, uint64(off)|FlagCopied)
}

// CheckWrite reports whether a write of n bytes at virtual offset off
// would be refused, and writes nothing: the first write's checks
// (planWrite) and, for every virtual cluster of the range, the mapping
// checks a write makes (a data cluster on metadata, a compressed cluster
// whose clusters are not counted, a data cluster whose refcount is 0).
// A caller holding a batch of writes checks them all before making the
// first, so a refusal leaves the image unchanged whatever its size (the
// up-front L2 scan of metadata.go is bounded; this costs what the writes
// touch).
func (img *Image) CheckWrite(off, n int64) error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if off < 0 || n < 0 || off > img.Size() || n > img.Size()-off {
		return diskerr.At(off, fmt.Sprintf("qcow2 write of %d bytes", n), diskerr.ErrOutOfRange)
	}
	if n == 0 {
		return nil
	}
	if err := img.planWrite(); err != nil {
		return err
	}
	bits := img.meta.ClusterBits
	for vc := off >> bits; vc <= (off+n-1)>>bits; vc++ {
		mp, err := img.lookup(vc)
		if err != nil {
			return err
		}
		if err := img.checkMapping(mp, vc); err != nil {
			return err
		}
		if host := mp.entry.HostOffset(); !mp.entry.Compressed() && host != 0 {
			rc, err := img.refcount(host)
			if err != nil {
				return err
			}
			if rc == 0 {
				return diskerr.Corrupt(host, "qcow2 data cluster of virtual cluster %d has refcount 0", vc)
			}
		}
	}
	return nil
}
