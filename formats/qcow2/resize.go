package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// offSize is the header's virtual size field; crypt_method, l1_size and
// l1_table_offset follow it, so one 24-byte write switches all three.
const offSize = 0x18

// Grow makes the virtual disk size bytes (a multiple of 512, not smaller
// than today's), as qemu-img resize does. When the active L1 table no
// longer covers the new size, a larger one is written at the end of the
// file (old entries copied, the tail zero) and counted, the file synced,
// and only then does one header write switch size, l1_size and
// l1_table_offset; the old table's clusters are freed after another sync.
// A crash at any point leaves the old or the new image, with at most the
// new table's clusters leaked. Images with internal snapshots or
// persistent bitmaps are refused (their tables would have to follow), as is
// anything the writer refuses. The image must have no pending writes.
func (img *Image) Grow(size int64) error {
	img.mu.Lock()
	defer img.mu.Unlock()
	m := img.meta
	switch {
	case size%512 != 0:
		return diskerr.At(offSize, fmt.Sprintf("qcow2 resize to %d bytes (not a multiple of 512)", size), diskerr.ErrOutOfRange)
	case size < int64(m.Size):
		return &diskerr.Error{What: fmt.Sprintf("qcow2 resize to %d bytes, below the virtual size %d (shrinking is refused)", size, m.Size), Offset: offSize, Err: diskerr.ErrTooSmall}
	case size > 1<<62:
		return diskerr.At(offSize, fmt.Sprintf("qcow2 resize to %d bytes", size), diskerr.ErrOutOfRange)
	case m.NbSnapshots != 0:
		return diskerr.Unsupported("qcow2 resize of an image with %d internal snapshots is refused", m.NbSnapshots)
	case m.HasBitmaps && m.AutoclearFeatures&AutoclearBitmaps != 0:
		return diskerr.Unsupported("qcow2 resize of an image with persistent bitmaps is refused")
	case len(img.dirtyL1) != 0 || len(img.dirtyL2) != 0 || len(img.pendingFree) != 0:
		return diskerr.At(-1, "qcow2 resize with writes pending", diskerr.ErrUnsupported)
	}
	if size == int64(m.Size) {
		return nil
	}
	perL1 := m.ClusterSize * m.L2Entries
	need := (size + perL1 - 1) / perL1
	if need*8 > MaxL1Bytes {
		return diskerr.At(offSize, fmt.Sprintf("qcow2 resize to %d bytes needs an L1 table of %d entries, over the 32 MiB limit", size, need), diskerr.ErrNoSpace)
	}
	if err := img.prepareWrite(); err != nil {
		return err
	}
	if need <= int64(m.L1Size) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(size))
		if err := img.writeHost(b[:], offSize); err != nil {
			return err
		}
		m.Size = uint64(size)
		return img.syncNow()
	}
	return img.growL1(size, need)
}

// growL1 moves the active L1 table to a new one of need entries (see Grow).
func (img *Image) growL1(size, need int64) error {
	m, cs := img.meta, img.meta.ClusterSize
	oldOff, oldN := int64(m.L1TableOffset), int64(m.L1Size)
	oldClusters := (oldN*8 + cs - 1) / cs
	n := (need*8 + cs - 1) / cs
	tbuf := make([]byte, n*cs)
	if _, err := img.f.ReadAt(tbuf[:oldN*8], oldOff); err != nil && !errors.Is(err, io.EOF) {
		return diskerr.At(oldOff, "read qcow2 L1 table", err)
	}
	off, err := img.reserve(n)
	if err != nil {
		return err
	}
	if err := img.writeHost(tbuf, off); err != nil {
		return err
	}
	for c := int64(0); c < n; c++ {
		if err := img.incRef(off + c*cs); err != nil {
			return err
		}
		img.addMeta(off+c*cs, kindActiveL1)
	}
	if err := img.syncNow(); err != nil {
		return err
	}
	var h [24]byte
	binary.BigEndian.PutUint64(h[0:], uint64(size))
	binary.BigEndian.PutUint32(h[8:], m.CryptMethod)
	binary.BigEndian.PutUint32(h[12:], uint32(need))
	binary.BigEndian.PutUint64(h[16:], uint64(off))
	if err := img.writeHost(h[:], offSize); err != nil {
		return err
	}
	m.Size, m.L1Size, m.L1TableOffset = uint64(size), uint32(need), uint64(off)
	if err := img.loadL1(); err != nil {
		return err
	}
	if err := img.syncNow(); err != nil {
		return err
	}
	for c := int64(0); c < oldClusters; c++ {
		if err := img.decRef(oldOff + c*cs); err != nil {
			return err
		}
	}
	return img.syncNow()
}
