package layout

// Magic numbers of the allocation group headers.
const (
	AGFMagic = 0x58414746 // "XAGF"
	AGIMagic = 0x58414749 // "XAGI"
)

// Sector numbers of the AG headers inside each allocation group.
const (
	AGFSector = 1
	AGISector = 2
)

// AGF, AGI sizes and CRC offsets (each CRC covers the header's sector).
const (
	AGFSize      = 0xE0
	AGFCRCOffset = 0xD8
	AGISize      = 0x158
	AGICRCOffset = 0x138
)

// AGF is the free-space header of an allocation group (struct xfs_agf).
type AGF struct {
	Magic          uint32     // 0x00 "XAGF"
	VersionNum     uint32     // 0x04 always 1
	SeqNo          uint32     // 0x08 AG number
	Length         uint32     // 0x0C blocks in this AG
	Roots          [3]uint32  // 0x10 roots of the by-block, by-count and rmap btrees
	Levels         [3]uint32  // 0x1C their heights
	FLFirst        uint32     // 0x28 first free-list slot in use
	FLLast         uint32     // 0x2C last free-list slot in use
	FLCount        uint32     // 0x30 blocks on the free list
	FreeBlks       uint32     // 0x34 free blocks
	Longest        uint32     // 0x38 longest free extent
	BtreeBlks      uint32     // 0x3C blocks held by the free-space btrees
	UUID           [16]byte   // 0x40 v5: metadata UUID
	RmapBlocks     uint32     // 0x50
	RefcountBlocks uint32     // 0x54
	RefcountRoot   uint32     // 0x58
	RefcountLevel  uint32     // 0x5C
	Spare64        [14]uint64 // 0x60
	LSN            uint64     // 0xD0
	CRC            uint32     // 0xD8 little-endian on disk
	Spare2         uint32     // 0xDC
}

// DecodeAGF decodes the AGF at the start of b.
func DecodeAGF(b []byte) (*AGF, error) {
	a := new(AGF)
	if err := decode(b, a, "AGF"); err != nil {
		return nil, err
	}
	a.CRC = StoredChecksum(b, AGFCRCOffset)
	return a, nil
}

// AGIUnlinkedBuckets is the number of unlinked-inode hash buckets in an AGI.
const AGIUnlinkedBuckets = 64

// AGI is the inode header of an allocation group (struct xfs_agi).
type AGI struct {
	Magic      uint32                     // 0x00 "XAGI"
	VersionNum uint32                     // 0x04 always 1
	SeqNo      uint32                     // 0x08 AG number
	Length     uint32                     // 0x0C blocks in this AG
	Count      uint32                     // 0x10 allocated inodes
	Root       uint32                     // 0x14 inode btree root block
	Level      uint32                     // 0x18 inode btree height
	FreeCount  uint32                     // 0x1C free inodes
	NewIno     uint32                     // 0x20 last allocated chunk
	DirIno     uint32                     // 0x24 unused
	Unlinked   [AGIUnlinkedBuckets]uint32 // 0x28 unlinked-but-open inode lists
	UUID       [16]byte                   // 0x128 v5: metadata UUID
	CRC        uint32                     // 0x138 little-endian on disk
	Pad32      uint32                     // 0x13C
	LSN        uint64                     // 0x140
	FreeRoot   uint32                     // 0x148 free inode btree root
	FreeLevel  uint32                     // 0x14C its height
	IBlocks    uint32                     // 0x150 inode btree blocks
	FBlocks    uint32                     // 0x154 free inode btree blocks
}

// DecodeAGI decodes the AGI at the start of b.
func DecodeAGI(b []byte) (*AGI, error) {
	a := new(AGI)
	if err := decode(b, a, "AGI"); err != nil {
		return nil, err
	}
	a.CRC = StoredChecksum(b, AGICRCOffset)
	return a, nil
}

// NullAGIno ends an AGI unlinked list.
const NullAGIno = 0xFFFFFFFF

// The AGFL, the free list of an allocation group (struct xfs_agfl), fills
// sector AGFLSector. On v5 it starts with a header (magic, AG number,
// UUID, LSN, CRC over the sector); on v4 the sector is all slots. Each
// slot is a big-endian AG block number, NullAGBlock when empty; AGF
// FLFirst..FLLast (wrapping) are the slots in use.
const (
	AGFLMagic      = 0x5841464C // "XAFL"
	AGFLSector     = 3
	AGFLHeaderSize = 0x24
	AGFLLSNOffset  = 0x18
	AGFLCRCOffset  = 0x20
)

// AGFLHeader is the v5 AGFL header.
type AGFLHeader struct {
	Magic uint32   // 0x00 "XAFL"
	SeqNo uint32   // 0x04 AG number
	UUID  [16]byte // 0x08 metadata UUID
	LSN   uint64   // 0x18
	CRC   uint32   // 0x20 little-endian on disk
}

// AGFLSlots returns the slots of an AGFL sector of sectSize bytes, and
// the byte offset of slot 0.
func AGFLSlots(sectSize int, crc bool) (n, first int) {
	if crc {
		return (sectSize - AGFLHeaderSize) / 4, AGFLHeaderSize
	}
	return sectSize / 4, 0
}

// NullAGBlock is a null short pointer: no sibling, an empty AGFL slot.
const NullAGBlock = 0xFFFFFFFF
