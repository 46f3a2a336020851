package qcow2

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Metadata overlap checks. A corrupt L2 entry may map a guest cluster onto
// one of the image's own tables, and a corrupt bitmap table may name one as
// its data; writing guest data there, or dropping the reference, would
// destroy the table. Like qemu (qcow2_check_metadata_overlap), we keep a
// map of where the metadata lies and refuse, before writing, any write to a
// host cluster (through an existing mapping or into a new allocation) and
// any reference drop that lands on it.
//
// The map is built once, on the first write of an open image, from what the
// header and the tables we must read anyway name: the header cluster, the
// active L1 table (read whole: at most 32 MiB, inside the file), the active
// L2 tables it points at, the refcount table and its blocks, the snapshot
// table and each snapshot's L1 table, and the bitmap directory and bitmap
// tables. As in qemu's default ("cached") mode, inactive L2 tables are not
// collected: finding them means reading every snapshot's L1 table, which
// costs in proportion to the snapshots, not to the write. They are shared
// with the active table or have refcount 1 only in a corrupt image, and a
// cluster with refcount > 1 is never written in place (it is copied).
// Tables this process allocates are added as they are created.

// metaKind names one kind of qcow2 metadata.
type metaKind uint8

const (
	kindHeader metaKind = iota + 1
	kindActiveL1
	kindActiveL2
	kindRefcountTable
	kindRefcountBlock
	kindSnapshotTable
	kindInactiveL1
	kindBitmapDirectory
	kindBitmapTable
)

func (k metaKind) String() string {
	switch k {
	case kindHeader:
		return "qcow2 header"
	case kindActiveL1:
		return "active L1 table"
	case kindActiveL2:
		return "active L2 table"
	case kindRefcountTable:
		return "refcount table"
	case kindRefcountBlock:
		return "refcount block"
	case kindSnapshotTable:
		return "snapshot table"
	case kindInactiveL1:
		return "inactive L1 table"
	case kindBitmapDirectory:
		return "bitmap directory"
	case kindBitmapTable:
		return "bitmap table"
	}
	return "metadata"
}

// metaExtent is a host byte range [start, end) holding metadata of kind.
type metaExtent struct {
	start, end int64
	kind       metaKind
}

// metaMap answers "does this host range hold metadata?". ext is sorted by
// start; maxEnd[i] is the largest end among ext[:i+1], so a query walks
// back only over extents that can still reach the range.
type metaMap struct {
	ext    []metaExtent
	maxEnd []int64
	added  map[int64]metaKind // clusters allocated as metadata since open
}

func (mm *metaMap) seal() {
	sort.Slice(mm.ext, func(i, j int) bool { return mm.ext[i].start < mm.ext[j].start })
	// Merge adjacent and overlapping extents of one kind (L2 tables named
	// twice, consecutive refcount blocks), keeping the map small.
	out := mm.ext[:0]
	for _, e := range mm.ext {
		if n := len(out); n > 0 && out[n-1].kind == e.kind && e.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, e.end)
			continue
		}
		out = append(out, e)
	}
	mm.ext = out
	mm.maxEnd = make([]int64, len(out))
	m := int64(0)
	for i, e := range out {
		m = max(m, e.end)
		mm.maxEnd[i] = m
	}
}

// overlap returns the first metadata extent meeting [off, off+n) whose kind
// is not in allow, or ok=false.
func (mm *metaMap) overlap(off, n, cs int64, allow ...metaKind) (metaExtent, bool) {
	allowed := func(k metaKind) bool {
		for _, a := range allow {
			if a == k {
				return true
			}
		}
		return false
	}
	end := off + n
	if len(mm.added) > 0 {
		for c := off &^ (cs - 1); c < end; c += cs {
			if k, ok := mm.added[c]; ok && !allowed(k) {
				return metaExtent{c, c + cs, k}, true
			}
		}
	}
	i := sort.Search(len(mm.ext), func(i int) bool { return mm.ext[i].start >= end }) - 1
	for ; i >= 0 && mm.maxEnd[i] > off; i-- {
		if e := mm.ext[i]; e.end > off && !allowed(e.kind) {
			return e, true
		}
	}
	return metaExtent{}, false
}

// addMeta records a cluster this process made into metadata.
func (img *Image) addMeta(off int64, k metaKind) {
	if img.mm == nil {
		return
	}
	if img.mm.added == nil {
		img.mm.added = map[int64]metaKind{}
	}
	img.mm.added[off] = k
}

// checkOverlap refuses a write (or a reference drop) of n host bytes at off
// that would land on metadata; what says what the write is for.
func (img *Image) checkOverlap(off, n int64, what string, allow ...metaKind) error {
	if img.mm == nil {
		return nil
	}
	if e, ok := img.mm.overlap(off, n, img.meta.ClusterSize, allow...); ok {
		return diskerr.Corrupt(off, "qcow2 %s at host offset %#x overlaps with the %s at [%#x, %#x); refusing to write", what, off, e.kind, e.start, e.end)
	}
	return nil
}

// buildMetaMap collects where the metadata lies (see the top of this file).
// It runs once, before the first write; its work is bounded by the header's
// checked table sizes, all of which lie inside the file.
func (img *Image) buildMetaMap(extra []metaExtent) error {
	m, cs := img.meta, img.meta.ClusterSize
	mm := &metaMap{ext: append([]metaExtent(nil), extra...)}
	add := func(off, n int64, k metaKind) {
		if n > 0 {
			mm.ext = append(mm.ext, metaExtent{off &^ (cs - 1), (off + n + cs - 1) &^ (cs - 1), k})
		}
	}
	add(0, cs, kindHeader)
	add(int64(m.L1TableOffset), int64(m.L1Size)*8, kindActiveL1)
	add(int64(m.RefcountTableOffset), int64(m.RefcountTableClusters)*cs, kindRefcountTable)
	for _, v := range img.w.rt {
		if b := int64(v & rtOffsetMask); b != 0 {
			add(b, cs, kindRefcountBlock)
		}
	}
	l2s, err := img.activeL2Tables()
	if err != nil {
		return err
	}
	for _, t := range l2s {
		add(t.off, cs, kindActiveL2)
	}
	snaps, err := img.readSnapshots()
	if err != nil {
		return err
	}
	if m.NbSnapshots > 0 {
		add(int64(m.SnapshotsOffset), snaps.tableBytes, kindSnapshotTable)
	}
	for _, s := range snaps.l1 {
		add(s.off, s.n, kindInactiveL1)
	}
	mm.seal()
	if err := mm.selfOverlap(); err != nil {
		return err
	}
	img.mm = mm
	return img.checkActiveL2(l2s)
}

// selfOverlap refuses metadata lying on metadata of another kind (an L1
// entry naming the L1 table as an L2 table, a refcount table on the
// header...): writing one would destroy the other. Bitmap clusters are
// left to checkBitmapPlan, which names the bitmap.
func (mm *metaMap) selfOverlap() error {
	var reach metaExtent // the extent reaching furthest so far
	for _, e := range mm.ext {
		if e.kind == kindBitmapDirectory || e.kind == kindBitmapTable {
			continue
		}
		if e.start < reach.end && e.kind != reach.kind {
			return diskerr.Corrupt(e.start, "qcow2 %s at [%#x, %#x) overlaps with the %s at [%#x, %#x); refusing to write", e.kind, e.start, e.end, reach.kind, reach.start, reach.end)
		}
		if e.end > reach.end {
			reach = e
		}
	}
	return nil
}

// l2Ref is an active L2 table and the first L1 index naming it.
type l2Ref struct{ off, l1i int64 }

// maxUpfrontL2 bounds the bytes of active L2 tables checkActiveL2 reads
// before the first write: 64 tables of 64 KiB clusters, 32 GiB of guest
// data's mappings; a few milliseconds. (A variable for the tests.)
var maxUpfrontL2 int64 = 4 << 20

// checkActiveL2 refuses the write when an active L2 table lies on other
// metadata, or (when the tables total at most maxUpfrontL2 bytes) one of
// their entries maps a guest cluster onto metadata. Each write through a
// mapping is checked anyway (checkMapping), but only when the filesystem
// reaches that cluster, after its earlier writes (an inode table, say)
// have landed; checking every entry up front refuses the whole session
// before its first byte. Reading every table costs what the image's
// allocated metadata costs, not what the write does (a 1 TiB image that
// mkfs touched all over holds 520 tables, 33 MiB, tripling an injection's
// time), so beyond the bound the entries are checked per write only, as
// qemu does: a refusal then comes after the session's earlier writes, in
// the state a crash there would leave (leaks at most). Unless bitmaps are
// being dropped: the clusters they free must be no guest data's.
func (img *Image) checkActiveL2(l2s []l2Ref) error {
	m, cs := img.meta, img.meta.ClusterSize
	w := int64(8)
	if m.ExtendedL2 {
		w = 16
	}
	// Dropping bitmaps frees clusters: none may hold guest data, whatever
	// the scan costs (images with bitmaps are rare).
	scan := int64(len(l2s))*cs <= maxUpfrontL2 || img.dropping != nil
	var buf []byte
	for _, t := range l2s {
		if err := img.checkOverlap(t.off, cs, fmt.Sprintf("L2 table (L1 index %d)", t.l1i), kindActiveL2); err != nil {
			return err
		}
		if !scan || t.off+cs > img.roundedFileSize() {
			continue // past the end: refused as corrupt when a lookup reaches it
		}
		tbl := img.l2.get(t.off)
		if tbl == nil {
			if buf == nil {
				buf = make([]byte, cs)
			}
			if _, err := img.f.ReadAt(buf, t.off); err != nil && !errors.Is(err, io.EOF) {
				return diskerr.At(t.off, fmt.Sprintf("read qcow2 L2 table (L1 index %d)", t.l1i), err)
			}
			tbl = buf
		}
		// Most of a table is usually empty: skip zero runs fast.
		for c := int64(0); c < cs; c += scanChunk {
			if bytes.Equal(tbl[c:c+scanChunk], zeroChunk[:]) {
				continue
			}
			for i := c / w; i < (c+scanChunk)/w; i++ {
				e := L2Entry(binary.BigEndian.Uint64(tbl[i*w:]))
				if e.HostOffset() == 0 && !e.Compressed() {
					continue
				}
				vc := t.l1i*m.L2Entries + i
				if err := img.checkEntryOverlap(e, vc, t.off+i*w); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// scanChunk is the run of L2 table bytes checkActiveL2 tests for zeros at
// once (the smallest cluster: every table is a multiple of it).
const scanChunk = 512

var zeroChunk [scanChunk]byte

// checkEntryOverlap refuses an L2 entry (at file offset at) whose host
// cluster, or compressed data, lies on metadata.
func (img *Image) checkEntryOverlap(e L2Entry, vc, at int64) error {
	cs := img.meta.ClusterSize
	hosts := []int64{e.HostOffset()}
	if e.Compressed() {
		hosts = img.compressedClusters(e)
	}
	for _, h := range hosts {
		if x, ok := img.mm.overlap(h, cs, cs); ok {
			return diskerr.Corrupt(at, "qcow2 L2 entry for virtual cluster %d maps it onto host cluster %#x, which overlaps with the %s at [%#x, %#x); refusing to write", vc, h, x.kind, x.start, x.end)
		}
		if p := img.dropping; p != nil {
			if r, ok := p.find(h &^ (cs - 1)); ok {
				return diskerr.Corrupt(r.at, "qcow2 %s names cluster %#x, which the L2 entry for virtual cluster %d (at %#x) maps guest data onto; refusing to drop the bitmaps", p.describe(r), r.cluster, vc, at)
			}
		}
	}
	return nil
}

// activeL2Tables reads the whole active L1 table and returns the distinct
// L2 tables it names, sorted by offset.
func (img *Image) activeL2Tables() ([]l2Ref, error) {
	n := int64(img.meta.L1Size)
	var out []l2Ref
	for i := int64(0); i < n; i++ {
		v, err := img.l1Entry(i)
		if err != nil {
			return nil, err
		}
		if o := L1Entry(v).L2Offset(); o != 0 {
			out = append(out, l2Ref{o, i})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].off < out[j].off })
	k := 0
	for i, r := range out {
		if i == 0 || r.off != out[k-1].off {
			out[k] = r
			k++
		}
	}
	return out[:k], nil
}

// Snapshot table limits, qemu's: the table holds at most 64 MiB, an entry's
// extra data at most 1 KiB.
const (
	maxSnapshotTable = 64 << 20
	maxSnapshotExtra = 1024
)

type snapshotL1 struct{ off, n int64 }

type snapshots struct {
	tableBytes int64
	l1         []snapshotL1
}

// readSnapshots walks the snapshot table (NbSnapshots entries, bounded by
// the header check) and returns each snapshot's L1 table range, checked to
// lie inside the file.
func (img *Image) readSnapshots() (snapshots, error) {
	m, cs := img.meta, img.meta.ClusterSize
	var out snapshots
	if m.NbSnapshots == 0 {
		return out, nil
	}
	base := int64(m.SnapshotsOffset)
	limit := min(img.fileSize-base, maxSnapshotTable)
	r := bufio.NewReader(io.NewSectionReader(img.f, base, limit))
	pos := int64(0)
	for i := uint32(0); i < m.NbSnapshots; i++ {
		where := base + pos
		var h SnapshotHeader
		if err := binary.Read(r, binary.BigEndian, &h); err != nil {
			return out, snapshotErr(where, i, "header", err)
		}
		if h.ExtraDataSize > maxSnapshotExtra {
			return out, diskerr.Corrupt(where, "qcow2 snapshot %d: %d bytes of extra data (limit %d)", i, h.ExtraDataSize, maxSnapshotExtra)
		}
		// The entry is padded to 8 bytes, but the file may end before
		// the last entry's padding.
		size := 40 + int64(h.ExtraDataSize) + int64(h.IDSize) + int64(h.NameSize)
		if i+1 < m.NbSnapshots {
			size = (size + 7) &^ 7
		}
		if _, err := r.Discard(int(size - 40)); err != nil {
			return out, snapshotErr(where, i, "entry", err)
		}
		pos += size
		l1n := int64(h.L1Size) * 8
		if l1n > MaxL1Bytes {
			return out, diskerr.Corrupt(where, "qcow2 snapshot %d: L1 table of %d entries exceeds the 32 MiB limit", i, h.L1Size)
		}
		if err := checkArea(fmt.Sprintf("snapshot %d L1 table", i), where, h.L1TableOffset, l1n, cs, img.fileSize); err != nil {
			return out, err
		}
		out.l1 = append(out.l1, snapshotL1{int64(h.L1TableOffset), l1n})
	}
	out.tableBytes = pos
	return out, nil
}

func snapshotErr(where int64, i uint32, what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return diskerr.Corrupt(where, "qcow2 snapshot %d %s runs past the end of the file or the 64 MiB table limit", i, what)
	}
	return diskerr.At(where, fmt.Sprintf("read qcow2 snapshot %d %s", i, what), err)
}
