package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Persistent dirty bitmaps track guest writes for incremental backups. We
// do not maintain them, so before our first write we drop them: the
// autoclear bit goes first (from then on qemu ignores them), then the
// header extension, then the clusters they used are freed. A crash in
// between only leaks clusters; the bitmaps are never trusted afterwards.

const (
	maxBitmapDir   = 1 << 20  // larger directories are not parsed (leaked)
	maxBitmapTable = 16 << 20 // per bitmap table, likewise
)

// dropBitmaps removes consistent persistent bitmaps before a write.
func (img *Image) dropBitmaps() error {
	m := img.meta
	clusters, perr := img.bitmapClusters()
	var z [8]byte
	if err := img.writeHost(z[:], offAutoclear); err != nil {
		return err
	}
	m.AutoclearFeatures = 0
	if err := img.sync(); err != nil {
		return err
	}
	if perr != nil {
		return nil // unreadable directory: the clusters stay leaked
	}
	if err := img.removeExtension(ExtBitmaps); err != nil {
		return err
	}
	m.HasBitmaps = false
	if err := img.sync(); err != nil {
		return err
	}
	for _, c := range clusters {
		if err := img.decRef(c); err != nil {
			return err
		}
	}
	return nil
}

// bitmapClusters lists every cluster the bitmaps use: the directory, each
// bitmap table and each data cluster, bounded by the file size.
func (img *Image) bitmapClusters() ([]int64, error) {
	m, cs := img.meta, img.meta.ClusterSize
	bx := m.Bitmaps
	if bx.DirectorySize > maxBitmapDir || int64(bx.DirectorySize) > img.fileSize {
		return nil, diskerr.Corrupt(-1, "qcow2 bitmap directory of %d bytes", bx.DirectorySize)
	}
	dir := make([]byte, bx.DirectorySize)
	if err := checkArea("bitmap directory", -1, bx.DirectoryOffset, int64(len(dir)), cs, img.fileSize); err != nil {
		return nil, err
	}
	if _, err := img.f.ReadAt(dir, int64(bx.DirectoryOffset)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	out := span(int64(bx.DirectoryOffset), int64(len(dir)), cs)
	for off := 0; off+24 <= len(dir); {
		var e BitmapDirEntry
		binary.Read(bytes.NewReader(dir[off:off+24]), binary.BigEndian, &e)
		tbl, err := img.bitmapTable(e)
		if err != nil {
			return nil, err
		}
		out = append(out, span(int64(e.TableOffset), int64(e.TableSize)*8, cs)...)
		out = append(out, tbl...)
		off += (24 + int(e.ExtraDataSize) + int(e.NameSize) + 7) &^ 7
	}
	return out, nil
}

// bitmapTable returns the data clusters one bitmap table points at.
func (img *Image) bitmapTable(e BitmapDirEntry) ([]int64, error) {
	n := int64(e.TableSize) * 8
	if n > maxBitmapTable {
		return nil, diskerr.Corrupt(int64(e.TableOffset), "qcow2 bitmap table of %d entries", e.TableSize)
	}
	if err := checkArea("bitmap table", -1, e.TableOffset, n, img.meta.ClusterSize, img.fileSize); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := img.f.ReadAt(b, int64(e.TableOffset)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var out []int64
	for i := int64(0); i < n; i += 8 {
		if off := int64(binary.BigEndian.Uint64(b[i:]) & l2OffsetMask); off != 0 {
			out = append(out, off)
		}
	}
	return out, nil
}

// span lists the clusters covering [off, off+n).
func span(off, n, cs int64) []int64 {
	var out []int64
	for c := off; c < off+n; c += cs {
		out = append(out, c)
	}
	return out
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
