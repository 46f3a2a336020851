package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// writer holds the state needed to allocate clusters: the refcount table,
// a cache of refcount blocks and the allocation pointer (end of file).
type writer struct {
	rt    []uint64
	rtOff int64
	rb    *tableCache
	end   int64
	rpb   int64 // refcount entries per block
}

const rtOffsetMask = ^uint64(0x1ff)

func (img *Image) loadRefcountTable() error {
	m := img.meta
	n := int64(m.RefcountTableClusters) * m.ClusterSize
	buf := make([]byte, n)
	off := int64(m.RefcountTableOffset)
	if _, err := img.f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return diskerr.At(off, "read qcow2 refcount table", err)
	}
	w := &writer{rtOff: off, rb: newTableCache(m.ClusterSize), end: img.roundedFileSize()}
	w.rpb = m.ClusterSize * 8 / int64(m.RefcountBits)
	w.rt = make([]uint64, n/8)
	for i := range w.rt {
		w.rt[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	img.w = w
	return nil
}

// refEntry reads entry i of a refcount block.
func refEntry(b []byte, i int64, order uint32) uint64 {
	switch order {
	case 0, 1, 2:
		bits := int64(1) << order
		bit := i * bits
		return uint64(b[bit/8]>>(bit%8)) & (1<<bits - 1)
	case 3:
		return uint64(b[i])
	case 4:
		return uint64(binary.BigEndian.Uint16(b[i*2:]))
	case 5:
		return uint64(binary.BigEndian.Uint32(b[i*4:]))
	}
	return binary.BigEndian.Uint64(b[i*8:])
}

// setRefEntry sets entry i of a refcount block and returns the byte range
// [start, end) of the block that changed.
func setRefEntry(b []byte, i int64, order uint32, v uint64) (int64, int64) {
	switch order {
	case 0, 1, 2:
		bits := int64(1) << order
		bit := i * bits
		mask := byte(1<<bits-1) << (bit % 8)
		b[bit/8] = b[bit/8]&^mask | byte(v<<(bit%8))&mask
		return bit / 8, bit/8 + 1
	case 3:
		b[i] = byte(v)
		return i, i + 1
	case 4:
		binary.BigEndian.PutUint16(b[i*2:], uint16(v))
		return i * 2, i*2 + 2
	case 5:
		binary.BigEndian.PutUint32(b[i*4:], uint32(v))
		return i * 4, i*4 + 4
	}
	binary.BigEndian.PutUint64(b[i*8:], v)
	return i * 8, i*8 + 8
}

func (img *Image) maxRefcount() uint64 {
	if img.meta.RefcountBits == 64 {
		return ^uint64(0)
	}
	return 1<<img.meta.RefcountBits - 1
}

// refcount returns the refcount of the host cluster holding off.
func (img *Image) refcount(off int64) (uint64, error) {
	w := img.w
	ci := off >> img.meta.ClusterBits
	ti := ci / w.rpb
	if ti >= int64(len(w.rt)) || w.rt[ti]&rtOffsetMask == 0 {
		return 0, nil
	}
	b, err := img.loadTable(w.rb, int64(w.rt[ti]&rtOffsetMask), fmt.Sprintf("refcount block (table index %d)", ti))
	if err != nil {
		return 0, err
	}
	return refEntry(b, ci%w.rpb, img.meta.RefcountOrder), nil
}

// setRefcount sets the refcount of the host cluster holding off, creating
// the refcount block (and growing the table) when needed.
func (img *Image) setRefcount(off int64, v uint64) error {
	if v > img.maxRefcount() {
		return diskerr.At(off, "qcow2 refcount overflow", diskerr.ErrNoSpace)
	}
	w := img.w
	ci := off >> img.meta.ClusterBits
	ti := ci / w.rpb
	if ti >= int64(len(w.rt)) {
		if err := img.growRefcountTable(ti); err != nil {
			return err
		}
	}
	if w.rt[ti]&rtOffsetMask == 0 {
		if err := img.newRefcountBlock(ti); err != nil {
			return err
		}
	}
	return img.setInBlock(int64(w.rt[ti]&rtOffsetMask), ci%w.rpb, v, ti)
}

// setInBlock updates one entry of an existing refcount block on disk.
func (img *Image) setInBlock(boff, idx int64, v uint64, ti int64) error {
	b, err := img.loadTable(img.w.rb, boff, fmt.Sprintf("refcount block (table index %d)", ti))
	if err != nil {
		return err
	}
	s, e := setRefEntry(b, idx, img.meta.RefcountOrder, v)
	return img.writeHost(b[s:e], boff+s)
}

// incRef takes a freshly allocated cluster from refcount 0 to 1.
func (img *Image) incRef(off int64) error {
	rc, err := img.refcount(off)
	if err != nil {
		return err
	}
	if rc != 0 {
		return diskerr.Corrupt(off, "qcow2 cluster past the end of the file already has refcount %d", rc)
	}
	return img.setRefcount(off, 1)
}

// decRef drops one reference to the host cluster holding off.
func (img *Image) decRef(off int64) error {
	rc, err := img.refcount(off)
	if err != nil {
		return err
	}
	if rc == 0 {
		return diskerr.Corrupt(off, "qcow2 referenced cluster has refcount 0")
	}
	return img.setRefcount(off, rc-1)
}

// maxSkip bounds how many already-counted clusters past the end of the
// file (leaks, e.g. from e2image) the allocator steps over.
const maxSkip = 1 << 20

// reserve hands out n contiguous free clusters at the end of the file,
// stepping over clusters that are counted but lie past the end (leaked).
// Their refcounts are set by the caller once their contents are written.
func (img *Image) reserve(n int64) (int64, error) {
	off, err := img.freeRun(n)
	if err != nil {
		return 0, err
	}
	if err := img.checkOverlap(off, n*img.meta.ClusterSize, fmt.Sprintf("allocation of %d clusters", n)); err != nil {
		return 0, err
	}
	img.w.end = off + n*img.meta.ClusterSize
	return off, nil
}

// freeRun finds n clusters with refcount 0 at or after the allocation
// pointer, moving the pointer past counted ones.
func (img *Image) freeRun(n int64) (int64, error) {
	w, cs := img.w, img.meta.ClusterSize
	start, skipped := w.end, int64(0)
	for {
		used := int64(-1)
		for i := int64(0); i < n && used < 0; i++ {
			rc, err := img.refcount(w.end + i*cs)
			if err != nil {
				return 0, err
			}
			if rc != 0 {
				used = i
			}
		}
		if used < 0 {
			return w.end, nil
		}
		w.end += (used + 1) * cs
		if skipped += used + 1; skipped > maxSkip {
			return 0, diskerr.Corrupt(start, "qcow2 has more than %d counted clusters past the end of the file", maxSkip)
		}
	}
}

// writeHost writes host bytes and tracks the file size.
func (img *Image) writeHost(p []byte, off int64) error {
	img.unsynced = true
	if _, err := img.f.WriteAt(p, off); err != nil {
		return diskerr.At(off, "write qcow2 image", err)
	}
	if end := off + int64(len(p)); end > img.fileSize {
		img.fileSize = end
	}
	return nil
}

// newRefcountBlock allocates the refcount block for table index ti. A block
// that covers itself counts itself; otherwise its own refcount is set first,
// and only then is it linked into the table.
func (img *Image) newRefcountBlock(ti int64) error {
	w, cs := img.w, img.meta.ClusterSize
	b, err := img.reserve(1)
	if err != nil {
		return err
	}
	buf := make([]byte, cs)
	self := (b>>img.meta.ClusterBits)/w.rpb == ti
	if self {
		setRefEntry(buf, (b>>img.meta.ClusterBits)%w.rpb, img.meta.RefcountOrder, 1)
	}
	if err := img.writeHost(buf, b); err != nil {
		return err
	}
	w.rb.put(b, buf)
	img.addMeta(b, kindRefcountBlock)
	if !self {
		if err := img.setRefcount(b, 1); err != nil {
			return err
		}
	}
	if err := img.sync(); err != nil {
		return err
	}
	return img.setTableEntry(ti, uint64(b))
}

func (img *Image) setTableEntry(ti int64, v uint64) error {
	w := img.w
	w.rt[ti] = v
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], v)
	return img.writeHost(e[:], w.rtOff+ti*8)
}

// growRefcountTable moves the refcount table to the end of the file with
// room for index minIdx. The new table and any refcount blocks needed to
// count it are placed together and counted before the header switches to
// them; the old table is freed last, so a crash can only leak clusters.
func (img *Image) growRefcountTable(minIdx int64) error {
	w, cs := img.w, img.meta.ClusterSize
	perCluster := cs / 8
	entries := max(minIdx+1, int64(len(w.rt))*2)
	entries = (entries + perCluster - 1) / perCluster * perCluster
	var tOff, tcl int64
	var missing []int64
	for {
		if entries*8 > MaxRefcountTable {
			return diskerr.At(-1, "qcow2 refcount table would exceed 8 MiB", diskerr.ErrNoSpace)
		}
		var err error
		if tOff, err = img.freeRun(1); err != nil {
			return err
		}
		tcl = entries / perCluster
		missing = img.missingBlocks(tOff>>img.meta.ClusterBits, tcl)
		last := (tOff>>img.meta.ClusterBits + tcl + int64(len(missing)) - 1) / w.rpb
		if last >= entries {
			entries *= 2
			continue
		}
		run, err := img.freeRun(tcl + int64(len(missing)))
		if err != nil {
			return err
		}
		if run == tOff {
			break
		}
	}
	return img.switchRefcountTable(tOff, tcl, entries, missing)
}

// missingBlocks lists the table indices without a refcount block among
// those covering clusters [first, first+n+len(missing)), iterating until
// the new blocks (placed after the n clusters) are covered too.
func (img *Image) missingBlocks(first, n int64) []int64 {
	w := img.w
	var missing []int64
	for {
		last := first + n + int64(len(missing)) - 1
		var m []int64
		for ti := first / w.rpb; ti <= last/w.rpb; ti++ {
			if ti >= int64(len(w.rt)) || w.rt[ti]&rtOffsetMask == 0 {
				m = append(m, ti)
			}
		}
		if len(m) == len(missing) {
			return m
		}
		missing = m
	}
}

func (img *Image) switchRefcountTable(tOff, tcl, entries int64, missing []int64) error {
	w, cs, cb := img.w, img.meta.ClusterSize, img.meta.ClusterBits
	if got, err := img.reserve(tcl + int64(len(missing))); err != nil || got != tOff {
		return diskerr.At(tOff, "qcow2 refcount table placement moved", errors.Join(err, diskerr.ErrCorrupt))
	}
	newRT := make([]uint64, entries)
	copy(newRT, w.rt)
	blocks := map[int64][]byte{}
	for k, ti := range missing {
		newRT[ti] = uint64(tOff + (tcl+int64(k))*cs)
		blocks[ti] = make([]byte, cs)
	}
	first, last := tOff>>cb, tOff>>cb+tcl+int64(len(missing))-1
	for c := first; c <= last; c++ {
		ti := c / w.rpb
		if b, ok := blocks[ti]; ok {
			setRefEntry(b, c%w.rpb, img.meta.RefcountOrder, 1)
		} else if err := img.setInBlock(int64(w.rt[ti]&rtOffsetMask), c%w.rpb, 1, ti); err != nil {
			return err
		}
	}
	for _, ti := range missing {
		if err := img.writeHost(blocks[ti], int64(newRT[ti])); err != nil {
			return err
		}
		w.rb.put(int64(newRT[ti]), blocks[ti])
		img.addMeta(int64(newRT[ti]), kindRefcountBlock)
	}
	tbuf := make([]byte, entries*8)
	for i, v := range newRT {
		binary.BigEndian.PutUint64(tbuf[i*8:], v)
	}
	if err := img.writeHost(tbuf, tOff); err != nil {
		return err
	}
	return img.installRefcountTable(tOff, tcl, newRT)
}

// installRefcountTable points the header at the new table, then frees the
// old one.
func (img *Image) installRefcountTable(tOff, tcl int64, newRT []uint64) error {
	if err := img.sync(); err != nil {
		return err
	}
	var h [12]byte
	binary.BigEndian.PutUint64(h[0:], uint64(tOff))
	binary.BigEndian.PutUint32(h[8:], uint32(tcl))
	if err := img.writeHost(h[:], offRefcountTable); err != nil {
		return err
	}
	w, m := img.w, img.meta
	oldOff, oldN := w.rtOff, int64(m.RefcountTableClusters)
	w.rt, w.rtOff = newRT, tOff
	for c := int64(0); c < tcl; c++ {
		img.addMeta(tOff+c*m.ClusterSize, kindRefcountTable)
	}
	m.RefcountTableOffset, m.RefcountTableClusters = uint64(tOff), uint32(tcl)
	if err := img.sync(); err != nil {
		return err
	}
	for i := int64(0); i < oldN; i++ {
		if err := img.decRef(oldOff + i*m.ClusterSize); err != nil {
			return err
		}
	}
	return nil
}
