// Package vhd reads Microsoft Virtual PC / Hyper-V VHD images (fixed and
// dynamic; differencing disks are refused) as a read-only virtual disk.
//
// layout.go holds the on-disk structures (big-endian) and nothing else;
// disk.go maps virtual offsets through the block allocation table.
package vhd

import (
	"encoding/binary"
)

// Sizes of the on-disk structures.
const (
	FooterSize        = 512
	DynamicHeaderSize = 1024
	SectorSize        = 512
)

// Cookies.
const (
	FooterCookie  = "conectix"
	DynamicCookie = "cxsparse"
)

// DiskType is the footer's disk type field.
type DiskType uint32

const (
	DiskFixed        DiskType = 2
	DiskDynamic      DiskType = 3
	DiskDifferencing DiskType = 4
)

func (t DiskType) String() string {
	switch t {
	case DiskFixed:
		return "fixed"
	case DiskDynamic:
		return "dynamic"
	case DiskDifferencing:
		return "differencing"
	}
	return "unknown"
}

// Footer is the 512-byte hard disk footer (at the end of every VHD, and
// copied at offset 0 of a dynamic one).
type Footer struct {
	Cookie       [8]byte  // 0x00
	Features     uint32   // 0x08
	Version      uint32   // 0x0c
	DataOffset   uint64   // 0x10 dynamic header offset; all ones when fixed
	Timestamp    uint32   // 0x18
	CreatorApp   [4]byte  // 0x1c
	CreatorVer   uint32   // 0x20
	CreatorOS    uint32   // 0x24
	OriginalSize uint64   // 0x28
	CurrentSize  uint64   // 0x30
	Cylinders    uint16   // 0x38
	Heads        uint8    // 0x3a
	SectorsTrack uint8    // 0x3b
	DiskType     DiskType // 0x3c
	Checksum     uint32   // 0x40
	UniqueID     [16]byte // 0x44
	SavedState   uint8    // 0x54
	Reserved     [427]byte
}

// DynamicHeader is the 1024-byte dynamic disk header.
type DynamicHeader struct {
	Cookie          [8]byte  // 0x00
	DataOffset      uint64   // 0x08 unused, all ones
	TableOffset     uint64   // 0x10 BAT offset
	HeaderVersion   uint32   // 0x18
	MaxTableEntries uint32   // 0x1c
	BlockSize       uint32   // 0x20
	Checksum        uint32   // 0x24
	ParentUniqueID  [16]byte // 0x28
	ParentTimestamp uint32   // 0x38
	Reserved1       uint32   // 0x3c
	ParentName      [512]byte
	ParentLocators  [8][24]byte
	Reserved2       [256]byte
}

// BATUnused marks a block that is not allocated (reads as zeros).
const BATUnused = 0xffffffff

// Checksum is the ones' complement of the byte sum of b, with the 4
// checksum bytes at off counted as zero.
func Checksum(b []byte, off int) uint32 {
	var s uint32
	for i, c := range b {
		if i >= off && i < off+4 {
			continue
		}
		s += uint32(c)
	}
	return ^s
}

// DecodeFooter decodes b (FooterSize bytes).
func DecodeFooter(b []byte) Footer {
	var f Footer
	decode(b[:FooterSize], &f)
	return f
}

// DecodeDynamicHeader decodes b (DynamicHeaderSize bytes).
func DecodeDynamicHeader(b []byte) DynamicHeader {
	var h DynamicHeader
	decode(b[:DynamicHeaderSize], &h)
	return h
}

func decode(b []byte, v any) {
	// The structs are fixed-size; binary.Decode cannot fail on a buffer
	// of their exact size.
	if _, err := binary.Decode(b, binary.BigEndian, v); err != nil {
		panic(err)
	}
}

// ChecksumOffset is where the footer's checksum sits (0x40); the dynamic
// header's is at DynChecksumOffset (0x24).
const (
	ChecksumOffset    = 0x40
	DynChecksumOffset = 0x24
)

// maxGeometry is the largest CHS geometry (65535×16×255 sectors): a disk
// at that size states its real size only in CurrentSize.
const maxGeometry = 65535 * 16 * 255

// VirtualSize is the size a reader sees. Virtual PC sizes a disk by its
// CHS geometry; the writers named below (Hyper-V, newer qemu, Citrix,
// Disk2vhd, tap) by CurrentSize — qemu's rule, so qemu-img agrees.
func (f *Footer) VirtualSize() int64 {
	chs := int64(f.Cylinders) * int64(f.Heads) * int64(f.SectorsTrack)
	switch string(f.CreatorApp[:]) {
	case "win ", "qem2", "d2v ", "CTXS":
		return int64(f.CurrentSize)
	}
	if string(f.CreatorApp[:3]) == "tap" || chs == maxGeometry {
		return int64(f.CurrentSize)
	}
	return chs * SectorSize
}
