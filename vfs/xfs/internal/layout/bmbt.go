package layout

import "encoding/binary"

// BmbtRecSize is the size of one packed extent record.
const BmbtRecSize = 16

// Extent is a decoded bmap extent record (struct xfs_bmbt_rec): 128 bits,
// big-endian, packed as
//
//	bit 127      unwritten flag
//	bits 126-73  logical file offset, in blocks (54 bits)
//	bits 72-21   start block, a filesystem block number (52 bits)
//	bits 20-0    length in blocks (21 bits)
type Extent struct {
	StartOff   uint64
	StartBlock uint64
	Count      uint32
	Unwritten  bool
}

// DecodeExtent unpacks the extent record at the start of b (16 bytes).
func DecodeExtent(b []byte) Extent {
	l0 := binary.BigEndian.Uint64(b)
	l1 := binary.BigEndian.Uint64(b[8:])
	return Extent{
		Unwritten:  l0>>63 != 0,
		StartOff:   (l0 &^ (1 << 63)) >> 9,
		StartBlock: (l0&0x1FF)<<43 | l1>>21,
		Count:      uint32(l1 & 0x1FFFFF),
	}
}

// EncodeExtent packs e into b (16 bytes); tests use it.
func EncodeExtent(b []byte, e Extent) {
	l0 := e.StartOff<<9 | e.StartBlock>>43
	if e.Unwritten {
		l0 |= 1 << 63
	}
	binary.BigEndian.PutUint64(b, l0)
	binary.BigEndian.PutUint64(b[8:], e.StartBlock<<21|uint64(e.Count&0x1FFFFF))
}

// Bmap btree magics.
const (
	BmapMagic    = 0x424D4150 // "BMAP" v4
	BmapCRCMagic = 0x424D4133 // "BMA3" v5
)

// Long-form btree block headers (bmbt blocks): v4 and v5 sizes, and the
// v5 CRC offset (the CRC covers the whole block).
const (
	LongBlockSize      = 0x18
	LongBlockCRCSize   = 0x48
	LongBlockCRCOffset = 0x40
)

// LongBlock is the header of a long-form btree block (struct
// xfs_btree_block with the long sibling pointers), as bmap btrees use.
type LongBlock struct {
	Magic    uint32   // 0x00
	Level    uint16   // 0x04 0 for leaves
	NumRecs  uint16   // 0x06 records or keys in this block
	LeftSib  uint64   // 0x08 fsblock, NullFSBlock if none
	RightSib uint64   // 0x10
	Blkno    uint64   // 0x18 v5: its own disk address in 512-byte units
	LSN      uint64   // 0x20 v5
	UUID     [16]byte // 0x28 v5
	Owner    uint64   // 0x38 v5: the inode it maps
	CRC      uint32   // 0x40 v5, little-endian on disk
	Pad      uint32   // 0x44 v5
}

// DecodeLongBlock decodes a long-form btree header; v5 headers need
// LongBlockCRCSize bytes, v4 ones LongBlockSize (the v5 fields then read
// as zero).
func DecodeLongBlock(b []byte) (*LongBlock, error) {
	h := new(LongBlock)
	if len(b) < LongBlockSize {
		return nil, decode(b, h, "long btree block")
	}
	if len(b) < LongBlockCRCSize {
		var full [LongBlockCRCSize]byte
		copy(full[:], b[:LongBlockSize])
		b = full[:]
	}
	if err := decode(b, h, "long btree block"); err != nil {
		return nil, err
	}
	h.CRC = StoredChecksum(b, LongBlockCRCOffset)
	return h, nil
}

// NullFSBlock is a null long sibling pointer.
const NullFSBlock = ^uint64(0)

// Short-form btree block headers (the per-AG btrees: free space, inodes,
// rmap, refcount).
const (
	ShortBlockSize      = 0x10
	ShortBlockCRCSize   = 0x38
	ShortBlockCRCOffset = 0x34
)

// ShortBlock is the header of a short-form btree block.
type ShortBlock struct {
	Magic    uint32   // 0x00
	Level    uint16   // 0x04
	NumRecs  uint16   // 0x06
	LeftSib  uint32   // 0x08 AG block, NullAGBlock if none
	RightSib uint32   // 0x0C
	Blkno    uint64   // 0x10 v5
	LSN      uint64   // 0x18 v5
	UUID     [16]byte // 0x20 v5
	Owner    uint32   // 0x30 v5: the AG number
	CRC      uint32   // 0x34 v5, little-endian on disk
}

// DecodeShortBlock decodes a short-form btree header (ShortBlockCRCSize
// bytes needed).
func DecodeShortBlock(b []byte) (*ShortBlock, error) {
	h := new(ShortBlock)
	if err := decode(b, h, "short btree block"); err != nil {
		return nil, err
	}
	h.CRC = StoredChecksum(b, ShortBlockCRCOffset)
	return h, nil
}

// BmdrHeaderSize is the header of the bmap btree root held in an inode
// fork (struct xfs_bmdr_block: level and record count).
const BmdrHeaderSize = 4

// BmdrBlock is the bmap btree root inside an inode fork.
type BmdrBlock struct {
	Level   uint16 // 0x00
	NumRecs uint16 // 0x02
}

// DecodeBmdrBlock decodes the in-inode btree root header.
func DecodeBmdrBlock(b []byte) (*BmdrBlock, error) {
	h := new(BmdrBlock)
	return h, decode(b, h, "bmap btree root")
}

// BmbtKeySize and BmbtPtrSize are the sizes of a bmap btree node key (a
// file offset) and pointer (a filesystem block).
const (
	BmbtKeySize = 8
	BmbtPtrSize = 8
)
