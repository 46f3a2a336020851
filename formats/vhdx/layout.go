// Package vhdx reads Hyper-V VHDX disks (fixed and dynamic; differencing
// disks are refused) as a read-only virtual disk. A file whose log is not
// empty (log GUID set in the current header) is refused: its metadata may
// lag the log, and replaying it is left to Hyper-V or 'qemu-img check -r
// all'.
//
// layout.go holds the on-disk structures (little-endian) and GUIDs only;
// disk.go validates them and maps virtual offsets through the BAT.
package vhdx

import (
	"encoding/binary"
	"hash/crc32"
)

// Offsets and sizes of the fixed structures.
const (
	FileIdentifier   = "vhdxfile"
	HeaderOffset1    = 64 << 10
	HeaderOffset2    = 128 << 10
	HeaderSize       = 4 << 10
	RegionOffset1    = 192 << 10
	RegionOffset2    = 256 << 10
	RegionTableSize  = 64 << 10
	MaxRegionEntries = 2047
	MetadataTableMax = 64 << 10
	MaxMetaEntries   = 2047
	MiB              = 1 << 20
)

// GUID is an on-disk GUID (first three fields little-endian).
type GUID [16]byte

// IsZero reports the all-zero GUID.
func (g GUID) IsZero() bool { return g == GUID{} }

// mustGUID parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into on-disk order.
func mustGUID(s string) GUID {
	var raw [16]byte
	j := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		raw[j/2] = raw[j/2]<<4 | hexVal(s[i])
		j++
	}
	var g GUID
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	panic("bad GUID literal")
}

// Region and metadata item GUIDs.
var (
	RegionBAT            = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	RegionMetadata       = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	MetaFileParameters   = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	MetaVirtualDiskSize  = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	MetaPage83           = mustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	MetaLogicalSector    = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	MetaPhysicalSector   = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	MetaParentLocator    = mustGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
	knownMetadataEntries = []GUID{MetaFileParameters, MetaVirtualDiskSize, MetaPage83, MetaLogicalSector, MetaPhysicalSector}
)

// Header is the start of a 4 KiB header (the rest is reserved).
type Header struct {
	Signature      [4]byte // 0x00 "head"
	Checksum       uint32  // 0x04 crc32c of the 4 KiB with this field zero
	SequenceNumber uint64  // 0x08
	FileWriteGUID  GUID    // 0x10
	DataWriteGUID  GUID    // 0x20
	LogGUID        GUID    // 0x30
	LogVersion     uint16  // 0x40
	Version        uint16  // 0x42
	LogLength      uint32  // 0x44
	LogOffset      uint64  // 0x48
}

// RegionTableHeader starts a 64 KiB region table.
type RegionTableHeader struct {
	Signature  [4]byte // 0x00 "regi"
	Checksum   uint32  // 0x04 crc32c of the 64 KiB with this field zero
	EntryCount uint32  // 0x08
	Reserved   uint32  // 0x0c
}

// RegionEntry is one 32-byte region table entry.
type RegionEntry struct {
	GUID       GUID   // 0x00
	FileOffset uint64 // 0x10
	Length     uint32 // 0x18
	Required   uint32 // 0x1c bit 0
}

// MetadataTableHeader starts the metadata region.
type MetadataTableHeader struct {
	Signature  [8]byte // 0x00 "metadata"
	Reserved   uint16  // 0x08
	EntryCount uint16  // 0x0a
	Reserved2  [20]byte
}

// MetadataEntry is one 32-byte metadata table entry.
type MetadataEntry struct {
	ItemID   GUID   // 0x00
	Offset   uint32 // 0x10 from the start of the metadata region
	Length   uint32 // 0x14
	Flags    uint32 // 0x18 bit 0 user, bit 1 virtual disk, bit 2 required
	Reserved uint32 // 0x1c
}

// MetaRequired is the metadata entry's IsRequired flag.
const MetaRequired = 1 << 2

// FileParameters is the File Parameters metadata item.
type FileParameters struct {
	BlockSize uint32 // 0x00
	Flags     uint32 // 0x04 bit 0 leave blocks allocated, bit 1 has parent
}

// FileHasParent is FileParameters' HasParent flag.
const FileHasParent = 1 << 1

// BATEntry is a block allocation table entry: state in bits 0-2, file
// offset in MiB in bits 20-63.
type BATEntry uint64

// Payload block states.
const (
	BlockNotPresent       = 0
	BlockUndefined        = 1
	BlockZero             = 2
	BlockUnmapped         = 3
	BlockFullyPresent     = 6
	BlockPartiallyPresent = 7
)

// State is the entry's block state.
func (e BATEntry) State() int { return int(e & 7) }

// Offset is the block's byte offset in the file.
func (e BATEntry) Offset() int64 { return int64(uint64(e)>>20) * MiB }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the crc32c of b with the 4 checksum bytes at 4 as zero.
func Checksum(b []byte) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:4])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, b[8:])
}

func decode(b []byte, v any) {
	if _, err := binary.Decode(b, binary.LittleEndian, v); err != nil {
		panic(err) // fixed-size structs over buffers of at least their size
	}
}
