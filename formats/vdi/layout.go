// Package vdi reads VirtualBox VDI images (dynamic and fixed; differencing
// and undo images are refused) as a read-only virtual disk.
//
// layout.go holds the on-disk header (little-endian) only; disk.go maps
// virtual offsets through the block map.
package vdi

import "encoding/binary"

// Where the fixed parts sit.
const (
	SignatureOffset = 0x40
	Signature       = 0xbeda107f
	HeaderOffset    = 0x48
	HeaderSize      = 0x190 // Header as encoded (version 1.1: cbHeader)
)

// ImageType is the header's image type.
type ImageType uint32

const (
	TypeDynamic ImageType = 1
	TypeFixed   ImageType = 2
	TypeUndo    ImageType = 3
	TypeDiff    ImageType = 4
)

func (t ImageType) String() string {
	switch t {
	case TypeDynamic:
		return "dynamic"
	case TypeFixed:
		return "fixed"
	case TypeUndo:
		return "undo"
	case TypeDiff:
		return "differencing"
	}
	return "unknown"
}

// Header is the version 1.1 header at HeaderOffset.
type Header struct {
	HeaderBytes      uint32    // 0x48 cbHeader
	Type             ImageType // 0x4c
	Flags            uint32    // 0x50
	Comment          [256]byte // 0x54
	BlocksOffset     uint32    // 0x154 the block map
	DataOffset       uint32    // 0x158 the first block
	Cylinders        uint32    // 0x15c
	Heads            uint32    // 0x160
	Sectors          uint32    // 0x164
	SectorBytes      uint32    // 0x168
	Dummy            uint32    // 0x16c
	DiskBytes        uint64    // 0x170 virtual size
	BlockBytes       uint32    // 0x178
	BlockExtra       uint32    // 0x17c bytes before each block's data
	Blocks           uint32    // 0x180 entries in the block map
	BlocksAllocated  uint32    // 0x184
	UUIDCreate       [16]byte  // 0x188
	UUIDModify       [16]byte  // 0x198
	UUIDLinkage      [16]byte  // 0x1a8 the parent, for a differencing image
	UUIDParentModify [16]byte  // 0x1b8
	LCHS             [16]byte  // 0x1c8
}

// Block map entries that map no data.
const (
	BlockFree = 0xffffffff // unallocated: reads as zeros (no parent)
	BlockZero = 0xfffffffe // explicitly zero
)

// DecodeHeader decodes b (at least HeaderSize bytes from HeaderOffset).
func DecodeHeader(b []byte) Header {
	var h Header
	if _, err := binary.Decode(b[:HeaderSize], binary.LittleEndian, &h); err != nil {
		panic(err) // a fixed-size struct over a buffer of its size
	}
	return h
}
