package qcow2

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// CreateOptions describes a new image.
type CreateOptions struct {
	Size          int64  // virtual size in bytes
	ClusterBits   uint32 // 0 means 16 (64 KiB)
	BackingFile   string // stored as given; "" for none
	BackingFormat string // "raw" or "qcow2", stored in a header extension
	// NoSync leaves the new file unsynced, for a caller that writes to it
	// next and syncs at the end (Options.Unordered).
	NoSync bool
}

// Create writes a fresh, empty qcow2 v3 image into f (which must be empty):
// cluster 0 holds the header, its extensions and the backing file name,
// cluster 1 the refcount table, cluster 2 the refcount block, then the L1
// table. 16-bit refcounts; nothing is lazy, dirty or compressed.
func Create(f File, o CreateOptions) error {
	if o.ClusterBits == 0 {
		o.ClusterBits = 16
	}
	if o.ClusterBits < MinClusterBits || o.ClusterBits > MaxClusterBits || o.Size < 0 {
		return diskerr.Unsupported("qcow2 create: cluster_bits %d or size %d", o.ClusterBits, o.Size)
	}
	if len(o.BackingFile) > MaxBackingNameLen {
		return diskerr.Unsupported("qcow2 create: backing file name of %d bytes (max %d)", len(o.BackingFile), MaxBackingNameLen)
	}
	cs := int64(1) << o.ClusterBits
	perL1 := cs * (cs / 8)
	l1Size := (o.Size + perL1 - 1) / perL1
	l1Clusters := max(1, (l1Size*8+cs-1)/cs)
	if l1Size*8 > MaxL1Bytes {
		return diskerr.At(-1, "qcow2 create: L1 table too large", diskerr.ErrNoSpace)
	}
	nClusters := 3 + l1Clusters
	if nClusters > cs*8/16 {
		return diskerr.At(-1, "qcow2 create: metadata exceeds one refcount block", diskerr.ErrNoSpace)
	}
	hdr, err := headerCluster(o, cs, uint32(l1Size))
	if err != nil {
		return err
	}
	img := make([]byte, nClusters*cs)
	copy(img, hdr)
	binary.BigEndian.PutUint64(img[cs:], uint64(2*cs)) // refcount table[0] -> block
	for c := int64(0); c < nClusters; c++ {
		binary.BigEndian.PutUint16(img[2*cs+c*2:], 1)
	}
	if _, err := f.WriteAt(img, 0); err != nil {
		return diskerr.At(0, "write new qcow2 image", err)
	}
	if o.NoSync {
		return nil
	}
	return f.Sync()
}

// headerCluster encodes the header, the backing format extension, the end
// marker and the backing file name.
func headerCluster(o CreateOptions, cs int64, l1Size uint32) ([]byte, error) {
	h := Header{
		Magic: Magic, Version: 3, ClusterBits: o.ClusterBits, Size: uint64(o.Size),
		L1Size: l1Size, L1TableOffset: uint64(3 * cs),
		RefcountTableOffset: uint64(cs), RefcountTableClusters: 1,
		RefcountOrder: 4, HeaderLength: headerFull,
	}
	var b bytes.Buffer
	if err := binary.Write(&b, binary.BigEndian, &h); err != nil {
		return nil, err
	}
	if o.BackingFile != "" && o.BackingFormat != "" {
		ext(&b, ExtBackingFormat, []byte(o.BackingFormat))
	}
	ext(&b, ExtEnd, nil)
	if o.BackingFile != "" {
		out := b.Bytes()
		binary.BigEndian.PutUint64(out[0x08:], uint64(len(out)))
		binary.BigEndian.PutUint32(out[0x10:], uint32(len(o.BackingFile)))
		b.WriteString(o.BackingFile)
	}
	if int64(b.Len()) > cs {
		return nil, fmt.Errorf("qcow2 create: header of %d bytes exceeds the cluster: %w", b.Len(), diskerr.ErrNoSpace)
	}
	return b.Bytes(), nil
}

func ext(b *bytes.Buffer, typ uint32, data []byte) {
	var h [8]byte
	binary.BigEndian.PutUint32(h[0:], typ)
	binary.BigEndian.PutUint32(h[4:], uint32(len(data)))
	b.Write(h[:])
	b.Write(data)
	for b.Len()%8 != 0 {
		b.WriteByte(0)
	}
}
