package qcow2

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/klauspost/compress/zstd"
)

// mapping is a validated L2 entry for one virtual cluster.
type mapping struct {
	entry  L2Entry
	bitmap SubclusterBitmap
	l2Off  int64 // table holding the entry, 0 if the L1 entry is empty
	index  int64 // entry index in that table
}

// loadTable reads one cluster of metadata at off through cache c.
func (img *Image) loadTable(c *tableCache, off int64, what string) ([]byte, error) {
	if t := c.get(off); t != nil {
		return t, nil
	}
	cs := img.meta.ClusterSize
	if off <= 0 || off%cs != 0 || off+cs > img.roundedFileSize() {
		return nil, diskerr.Corrupt(off, "qcow2 %s offset %#x unaligned or past the end of the file", what, off)
	}
	t := make([]byte, cs)
	if _, err := img.f.ReadAt(t, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, diskerr.At(off, "read qcow2 "+what, err)
	}
	c.put(off, t)
	return t, nil
}

// roundedFileSize is the file size rounded up to whole clusters: the last
// cluster of an image may be stored short.
func (img *Image) roundedFileSize() int64 {
	cs := img.meta.ClusterSize
	return (img.fileSize + cs - 1) &^ (cs - 1)
}

// lookup finds and validates the L2 entry of virtual cluster vc.
func (img *Image) lookup(vc int64) (mapping, error) {
	m := img.meta
	l1i := vc / m.L2Entries
	if l1i >= int64(m.L1Size) {
		return mapping{}, nil
	}
	v, err := img.l1Entry(l1i)
	if err != nil {
		return mapping{}, err
	}
	l1e := L1Entry(v)
	l2off := l1e.L2Offset()
	if l2off == 0 {
		return mapping{}, nil
	}
	t, err := img.loadTable(img.l2, l2off, fmt.Sprintf("L2 table (L1 index %d)", l1i))
	if err != nil {
		return mapping{}, err
	}
	mp := mapping{l2Off: l2off, index: vc % m.L2Entries}
	w := int64(8)
	if m.ExtendedL2 {
		w = 16
		mp.bitmap = SubclusterBitmap(binary.BigEndian.Uint64(t[mp.index*w+8:]))
	}
	mp.entry = L2Entry(binary.BigEndian.Uint64(t[mp.index*w:]))
	return mp, img.validate(mp, vc)
}

func (img *Image) validate(mp mapping, vc int64) error {
	m := img.meta
	where := mp.l2Off + mp.index*8
	if m.ExtendedL2 {
		where = mp.l2Off + mp.index*16
	}
	e := mp.entry
	if e.Compressed() {
		off, _ := e.CompressedRange(m.ClusterBits)
		if off >= img.fileSize || off < m.ClusterSize {
			return diskerr.Corrupt(where, "qcow2 L2 entry for virtual cluster %d: compressed data at %#x outside the file", vc, off)
		}
		return nil
	}
	host := e.HostOffset()
	if host%m.ClusterSize != 0 {
		return diskerr.Corrupt(where, "qcow2 L2 entry for virtual cluster %d: host offset %#x not cluster aligned", vc, host)
	}
	if host != 0 && (host < m.ClusterSize || host >= img.fileSize) {
		return diskerr.Corrupt(where, "qcow2 L2 entry for virtual cluster %d points at %#x, outside the file (%d bytes)", vc, host, img.fileSize)
	}
	if m.ExtendedL2 {
		alloc, zero := uint32(mp.bitmap), uint32(mp.bitmap>>32)
		if alloc&zero != 0 {
			return diskerr.Corrupt(where, "qcow2 L2 entry for virtual cluster %d: subclusters both allocated and zero (bitmap %#x)", vc, uint64(mp.bitmap))
		}
		if alloc != 0 && host == 0 {
			return diskerr.Corrupt(where, "qcow2 L2 entry for virtual cluster %d: allocated subclusters without a host cluster", vc)
		}
	}
	return nil
}

// readCluster fills p from offset in of virtual cluster vc.
func (img *Image) readCluster(vc, in int64, p []byte) error {
	mp, err := img.lookup(vc)
	if err != nil {
		return err
	}
	voff := vc<<img.meta.ClusterBits + in
	e := mp.entry
	switch {
	case e.Compressed():
		data, err := img.decompressed(vc, e)
		if err != nil {
			return err
		}
		copy(p, data[in:])
		return nil
	case img.meta.ExtendedL2:
		return img.readSubclusters(mp, voff, in, p)
	case e.Zero():
		clear(p)
		return nil
	case e.HostOffset() == 0:
		return img.readBacking(p, voff)
	}
	return img.readHost(p, e.HostOffset()+in)
}

// readSubclusters serves a read inside one cluster with extended L2 entries.
func (img *Image) readSubclusters(mp mapping, voff, in int64, p []byte) error {
	scs := img.meta.ClusterSize / Subclusters
	for len(p) > 0 {
		sc := int(in / scs)
		n := min(int64(len(p)), scs-in%scs)
		var err error
		switch {
		case mp.bitmap.Allocated(sc):
			err = img.readHost(p[:n], mp.entry.HostOffset()+in)
		case mp.bitmap.Zero(sc):
			clear(p[:n])
		default:
			err = img.readBacking(p[:n], voff)
		}
		if err != nil {
			return err
		}
		p, in, voff = p[n:], in+n, voff+n
	}
	return nil
}

// readHost reads host bytes; bytes past the end of the file read as zeros
// (the last cluster may be stored short).
func (img *Image) readHost(p []byte, off int64) error {
	n, err := img.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return diskerr.At(off, "read qcow2 data cluster", err)
	}
	clear(p[n:])
	return nil
}

// readBacking reads the backing disk, or zeros where there is none.
func (img *Image) readBacking(p []byte, voff int64) error {
	if img.backing == nil {
		clear(p)
		return nil
	}
	bs := img.backing.Size()
	if voff >= bs {
		clear(p)
		return nil
	}
	n := min(int64(len(p)), bs-voff)
	got, err := img.backing.ReadAt(p[:n], voff)
	if err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		return fmt.Errorf("qcow2: read backing file at %#x: %w", voff, err)
	}
	clear(p[n:])
	return nil
}

// decompressed returns the contents of compressed virtual cluster vc,
// keeping the last one decoded.
func (img *Image) decompressed(vc int64, e L2Entry) ([]byte, error) {
	if img.compVC == vc && img.compBuf != nil {
		return img.compBuf, nil
	}
	m := img.meta
	off, sectors := e.CompressedRange(m.ClusterBits)
	n := sectors*512 - off&511
	n = min(n, img.fileSize-off, 2*m.ClusterSize+512)
	src := make([]byte, n)
	if _, err := img.f.ReadAt(src, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, diskerr.At(off, "read qcow2 compressed cluster", err)
	}
	if img.compBuf == nil {
		img.compBuf = make([]byte, m.ClusterSize)
	}
	img.compVC = -1
	if err := img.inflate(src, img.compBuf); err != nil {
		return nil, diskerr.At(off, fmt.Sprintf("qcow2 compressed cluster for virtual cluster %d", vc), fmt.Errorf("%w: %v", diskerr.ErrCorrupt, err))
	}
	img.compVC = vc
	return img.compBuf, nil
}

// inflate decodes one compressed cluster, which must yield a full cluster.
func (img *Image) inflate(src, dst []byte) error {
	var r io.Reader
	if img.meta.CompressionType == CompressionZstd {
		if img.zdec == nil {
			d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(8<<20))
			if err != nil {
				return err
			}
			img.zdec = d
		}
		if err := img.zdec.Reset(bytes.NewReader(src)); err != nil {
			return err
		}
		r = img.zdec
	} else {
		fr := flate.NewReader(bytes.NewReader(src))
		defer fr.Close()
		r = fr
	}
	_, err := io.ReadFull(r, dst)
	return err
}
