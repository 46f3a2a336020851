package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Persistent dirty bitmaps track guest writes for incremental backups. We
// do not maintain them, so before our first write we drop them: the
// autoclear bit goes first (from then on qemu ignores them), then the
// header extension, then the clusters they used are freed. A crash in
// between only leaks clusters; the bitmaps are never trusted afterwards.
//
// Freeing is validated in full before anything is written: the directory
// and every table are read (their total size bounded by the file's), and
// every cluster whose reference goes away must be named once, lie inside
// the file, have a refcount, and be none of the image's other metadata
// (header, L1, L2, refcount table and blocks, snapshot table and L1s;
// see metadata.go). Anything else refuses the write with the image
// unchanged. A directory whose own location is invalid is not read at all:
// its clusters stay leaked, as before.

const (
	maxBitmapDir   = 1 << 20  // larger directories are not parsed (leaked)
	maxBitmapTable = 16 << 20 // bytes per bitmap table
	bitmapEntryMin = 24       // fixed part of a directory entry

	bmeReserved = 0xff000000000001fe // bitmap table entry: bits 1-8, 56-63
	bmeAllOnes  = 1                  // bit 0: all ones (only without an offset)
)

// bitmapRef is one reference the bitmaps hold to a host cluster.
type bitmapRef struct {
	cluster int64
	at      int64 // file offset of what names the cluster
	bitmap  int32 // directory entry index, -1 for the directory itself
	entry   int64 // table entry index, -1 for a cluster of the table itself
}

// bitmapPlan is what dropping the bitmaps will free, parsed and bounded.
type bitmapPlan struct {
	dirOff int64
	meta   []metaExtent // the directory and the tables
	refs   []bitmapRef  // every reference dropped
	names  []string     // bitmap names, by directory entry
}

func (p *bitmapPlan) describe(r bitmapRef) string {
	switch {
	case r.bitmap < 0:
		return fmt.Sprintf("bitmap directory (at %#x)", p.dirOff)
	case r.entry < 0:
		return fmt.Sprintf("table of bitmap %d %q (directory entry at %#x)", r.bitmap, p.names[r.bitmap], r.at)
	}
	return fmt.Sprintf("bitmap %d %q table entry %d (at %#x)", r.bitmap, p.names[r.bitmap], r.entry, r.at)
}

// dropBitmaps removes the persistent bitmaps before a write, freeing what
// plan lists (nil: the directory was unreadable, its clusters stay leaked).
// plan has been checked by checkBitmapPlan.
func (img *Image) dropBitmaps(plan *bitmapPlan) error {
	m := img.meta
	var z [8]byte
	if err := img.writeHost(z[:], offAutoclear); err != nil {
		return err
	}
	m.AutoclearFeatures = 0
	if err := img.sync(); err != nil {
		return err
	}
	if plan == nil {
		return nil
	}
	if err := img.removeExtension(ExtBitmaps); err != nil {
		return err
	}
	m.HasBitmaps = false
	if err := img.sync(); err != nil {
		return err
	}
	for _, r := range plan.refs {
		if err := img.decRef(r.cluster); err != nil {
			return err
		}
	}
	return nil
}

// planBitmapDrop reads the bitmap directory and tables. It returns nil, nil
// when the directory's location is invalid (nothing to trust or free), and
// an error refusing the write when what it names is out of bounds.
func (img *Image) planBitmapDrop() (*bitmapPlan, error) {
	m, cs := img.meta, img.meta.ClusterSize
	bx := m.Bitmaps
	if bx.DirectorySize > maxBitmapDir || int64(bx.DirectorySize) > img.fileSize ||
		checkArea("bitmap directory", -1, bx.DirectoryOffset, int64(bx.DirectorySize), cs, img.fileSize) != nil {
		return nil, nil
	}
	dirOff := int64(bx.DirectoryOffset)
	dir := make([]byte, bx.DirectorySize)
	if _, err := img.f.ReadAt(dir, dirOff); err != nil && !errors.Is(err, io.EOF) {
		return nil, diskerr.At(dirOff, "read qcow2 bitmap directory", err)
	}
	p := &bitmapPlan{dirOff: dirOff}
	p.meta = append(p.meta, metaExtent{dirOff, dirOff + int64(len(dir)), kindBitmapDirectory})
	fileClusters := img.roundedFileSize() / cs
	for c := dirOff; c < dirOff+int64(len(dir)); c += cs {
		p.refs = append(p.refs, bitmapRef{cluster: c, at: dirOff, bitmap: -1, entry: -1})
	}
	entries, err := parseBitmapDir(dir, dirOff, bx.NbBitmaps)
	if err != nil {
		return nil, err
	}
	// The tables lie in the file, each in clusters of its own: together
	// they cannot be larger than the file.
	total := int64(0)
	for _, e := range entries {
		total += int64(e.TableSize) * 8
	}
	if total > img.fileSize {
		return nil, diskerr.Corrupt(dirOff, "qcow2 bitmap directory (%d entries) names bitmap tables of %d bytes in total, more than the %d-byte file; refusing to drop them", len(entries), total, img.fileSize)
	}
	for i, e := range entries {
		p.names = append(p.names, e.name)
		if err := img.planBitmapTable(p, int32(i), e, fileClusters); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(p.refs, func(i, j int) bool { return p.refs[i].cluster < p.refs[j].cluster })
	return p, nil
}

// find returns the reference to cluster c, if the bitmaps hold one.
func (p *bitmapPlan) find(c int64) (bitmapRef, bool) {
	i := sort.Search(len(p.refs), func(i int) bool { return p.refs[i].cluster >= c })
	if i < len(p.refs) && p.refs[i].cluster == c {
		return p.refs[i], true
	}
	return bitmapRef{}, false
}

type bitmapDirEntry struct {
	BitmapDirEntry
	name string
	at   int64
}

// parseBitmapDir decodes the directory: nb entries, each inside it.
func parseBitmapDir(dir []byte, dirOff int64, nb uint32) ([]bitmapDirEntry, error) {
	var out []bitmapDirEntry
	off := 0
	for off+bitmapEntryMin <= len(dir) && uint32(len(out)) < nb {
		d := dir[off:]
		e := BitmapDirEntry{
			TableOffset:     binary.BigEndian.Uint64(d[0:]),
			TableSize:       binary.BigEndian.Uint32(d[8:]),
			Flags:           binary.BigEndian.Uint32(d[12:]),
			Type:            d[16],
			GranularityBits: d[17],
			NameSize:        binary.BigEndian.Uint16(d[18:]),
			ExtraDataSize:   binary.BigEndian.Uint32(d[20:]),
		}
		size := (int64(bitmapEntryMin) + int64(e.ExtraDataSize) + int64(e.NameSize) + 7) &^ 7
		if size > int64(len(dir)-off) {
			return nil, diskerr.Corrupt(dirOff+int64(off), "qcow2 bitmap directory entry %d of %d bytes overruns the directory", len(out), size)
		}
		ns := bitmapEntryMin + int(e.ExtraDataSize)
		name := string(d[ns : ns+int(e.NameSize)])
		out = append(out, bitmapDirEntry{e, name, dirOff + int64(off)})
		off += int(size)
	}
	if uint32(len(out)) != nb {
		return nil, diskerr.Corrupt(dirOff, "qcow2 bitmap directory holds %d entries, the header extension says %d", len(out), nb)
	}
	return out, nil
}

// planBitmapTable reads one bitmap table and adds its clusters and the
// data clusters it names to the plan.
func (img *Image) planBitmapTable(p *bitmapPlan, bi int32, e bitmapDirEntry, fileClusters int64) error {
	cs := img.meta.ClusterSize
	n := int64(e.TableSize) * 8
	if n > maxBitmapTable {
		return diskerr.Corrupt(e.at, "qcow2 bitmap %d %q: table of %d entries exceeds %d bytes", bi, e.name, e.TableSize, maxBitmapTable)
	}
	if n == 0 {
		return nil
	}
	if err := checkArea(fmt.Sprintf("bitmap %d %q table", bi, e.name), e.at, e.TableOffset, n, cs, img.fileSize); err != nil {
		return err
	}
	toff := int64(e.TableOffset)
	p.meta = append(p.meta, metaExtent{toff, (toff + n + cs - 1) &^ (cs - 1), kindBitmapTable})
	for c := toff; c < toff+n; c += cs {
		p.refs = append(p.refs, bitmapRef{cluster: c, at: e.at, bitmap: bi, entry: -1})
	}
	b := make([]byte, n)
	if _, err := img.f.ReadAt(b, toff); err != nil && !errors.Is(err, io.EOF) {
		return diskerr.At(toff, fmt.Sprintf("read qcow2 bitmap %d table", bi), err)
	}
	for i := int64(0); i < n; i += 8 {
		v := binary.BigEndian.Uint64(b[i:])
		off := int64(v & l2OffsetMask)
		at := toff + i
		switch {
		case v&bmeReserved != 0:
			return diskerr.Corrupt(at, "qcow2 bitmap %d %q table entry %d: reserved bits set (%#x)", bi, e.name, i/8, v)
		case off == 0:
			continue
		case v&bmeAllOnes != 0:
			return diskerr.Corrupt(at, "qcow2 bitmap %d %q table entry %d: all-ones flag with a data cluster", bi, e.name, i/8)
		case off%cs != 0 || off+cs > img.roundedFileSize():
			return diskerr.Corrupt(at, "qcow2 bitmap %d %q table entry %d: data cluster %#x unaligned or outside the file", bi, e.name, i/8, off)
		}
		p.refs = append(p.refs, bitmapRef{cluster: off, at: at, bitmap: bi, entry: i / 8})
		if int64(len(p.refs)) > fileClusters {
			return diskerr.Corrupt(p.dirOff, "qcow2 bitmap directory: the bitmaps name more than the %d clusters the file holds; refusing to drop them", fileClusters)
		}
	}
	return nil
}

// checkBitmapPlan validates every reference the drop will release against
// the metadata map and the refcounts, before anything is written. (That no
// active L2 entry maps a guest cluster onto one of them was checked while
// the map was built: checkEntryOverlap.)
func (img *Image) checkBitmapPlan(p *bitmapPlan) error {
	cs := img.meta.ClusterSize
	for i, r := range p.refs {
		if i > 0 && p.refs[i-1].cluster == r.cluster {
			return diskerr.Corrupt(r.at, "qcow2 %s names cluster %#x, already named by the %s; refusing to drop the bitmaps", p.describe(r), r.cluster, p.describe(p.refs[i-1]))
		}
		own := kindBitmapDirectory
		switch {
		case r.bitmap >= 0 && r.entry < 0:
			own = kindBitmapTable
		case r.bitmap >= 0:
			own = 0 // a data cluster is no metadata at all
		}
		if e, ok := img.mm.overlap(r.cluster, cs, cs, own); ok {
			return diskerr.Corrupt(r.at, "qcow2 %s names cluster %#x, which overlaps with the %s at [%#x, %#x); refusing to drop the bitmaps", p.describe(r), r.cluster, e.kind, e.start, e.end)
		}
		rc, err := img.refcount(r.cluster)
		if err != nil {
			return err
		}
		if rc == 0 {
			return diskerr.Corrupt(r.at, "qcow2 %s names cluster %#x, which has refcount 0; refusing to drop the bitmaps", p.describe(r), r.cluster)
		}
	}
	return nil
}

// removeExtension rewrites the header extension area without extensions of
// type typ, zero-filling what it frees.
func (img *Image) removeExtension(typ uint32) error {
	m := img.meta
	start, end := int64(m.HeaderLength), m.ExtensionsEnd
	area := make([]byte, end-start)
	if _, err := img.f.ReadAt(area, start); err != nil {
		return diskerr.At(start, "read qcow2 header extensions", err)
	}
	out := make([]byte, 0, len(area))
	for off := 0; off+8 <= len(area); {
		t := binary.BigEndian.Uint32(area[off:])
		n := int(binary.BigEndian.Uint32(area[off+4:]))
		if t == ExtEnd {
			break
		}
		next := min(off+8+(n+7)&^7, len(area))
		if t != typ {
			out = append(out, area[off:next]...)
		}
		off = next
	}
	out = append(out, make([]byte, len(area)-len(out))...)
	return img.writeHost(out, start)
}
