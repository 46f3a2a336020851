package layout

import (
	"encoding/binary"
	"math/bits"
	"time"
)

// Inode btree magics: the inode btree (inobt) and the free inode btree
// (finobt), v4 and v5.
const (
	InobtMagic     = 0x49414254 // "IABT"
	InobtCRCMagic  = 0x49414233 // "IAB3"
	FinobtMagic    = 0x46494254 // "FIBT"
	FinobtCRCMagic = 0x46494233 // "FIB3"
)

// Inode btree sizes: a 16-byte record, a 4-byte key (the chunk's first
// AG inode number), 64 inodes per chunk, and in sparse chunks one hole
// mask bit per 4 inodes.
const (
	InobtRecSize     = 16
	InobtKeySize     = 4
	InodesPerChunk   = 64
	InodesPerHoleBit = 4
)

// InobtRec is an inode btree record (struct xfs_inobt_rec). Without the
// sparse inode feature FreeCount is 32 bits at 0x04 and the chunk is
// full; with it 0x04 holds HoleMask (bit i: inodes 4i..4i+3 absent),
// Count (inodes present) and an 8-bit FreeCount.
type InobtRec struct {
	StartIno  uint32 // 0x00 AG inode number of the chunk's first inode
	HoleMask  uint16 // 0x04 sparse only
	Count     uint8  // 0x06 sparse only; InodesPerChunk otherwise
	FreeCount uint32 // 0x04 (32 bits) or 0x07 (8 bits, sparse)
	Free      uint64 // 0x08 bit i: inode StartIno+i is free
}

// DecodeInobtRec decodes a record (16 bytes).
func DecodeInobtRec(b []byte, sparse bool) InobtRec {
	r := InobtRec{StartIno: binary.BigEndian.Uint32(b), Free: binary.BigEndian.Uint64(b[8:]), Count: InodesPerChunk}
	if sparse {
		r.HoleMask, r.Count, r.FreeCount = binary.BigEndian.Uint16(b[4:]), b[6], uint32(b[7])
	} else {
		r.FreeCount = binary.BigEndian.Uint32(b[4:])
	}
	return r
}

// EncodeInobtRec packs r into b (16 bytes).
func EncodeInobtRec(b []byte, r InobtRec, sparse bool) {
	binary.BigEndian.PutUint32(b, r.StartIno)
	if sparse {
		binary.BigEndian.PutUint16(b[4:], r.HoleMask)
		b[6], b[7] = r.Count, uint8(r.FreeCount)
	} else {
		binary.BigEndian.PutUint32(b[4:], r.FreeCount)
	}
	binary.BigEndian.PutUint64(b[8:], r.Free)
}

// Holes returns the inodes absent from a sparse chunk, one bit each.
func (r InobtRec) Holes() uint64 {
	var m uint64
	for i := 0; i < 16; i++ {
		if r.HoleMask&(1<<i) != 0 {
			m |= 0xF << (4 * i)
		}
	}
	return m
}

// FreeInodes returns the free inodes present in the chunk.
func (r InobtRec) FreeInodes() uint64 { return r.Free &^ r.Holes() }

// Consistent reports whether the counts agree with the masks.
func (r InobtRec) Consistent() bool {
	holes := r.Holes()
	return r.Free&holes == holes && int(r.Count) == InodesPerChunk-bits.OnesCount64(holes) &&
		int(r.FreeCount) == bits.OnesCount64(r.FreeInodes())
}

// AGI field offsets the inode allocator edits.
const (
	AGICountOffset     = 0x10
	AGIRootOffset      = 0x14
	AGILevelOffset     = 0x18
	AGIFreeCountOffset = 0x1C
	AGINewInoOffset    = 0x20
	AGIFreeRootOffset  = 0x148
	AGIFreeLevelOffset = 0x14C
	AGIIBlocksOffset   = 0x150
	AGIFBlocksOffset   = 0x154
)

// MakeTimestamp encodes t as an inode timestamp: a nanosecond counter
// from BigtimeEpochOffset seconds before 1970 with bigtime, else 32-bit
// seconds and nanoseconds (t must then fit 1901..2038).
func MakeTimestamp(t time.Time, bigtime bool) Timestamp {
	if bigtime {
		return Timestamp(uint64(t.Unix()+BigtimeEpochOffset)*1e9 + uint64(t.Nanosecond()))
	}
	return Timestamp(uint64(uint32(int32(t.Unix())))<<32 | uint64(uint32(t.Nanosecond())))
}
