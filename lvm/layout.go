package lvm

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk structures of an LVM2 physical volume (layout only).
//
// A PV carries a 512-byte label in one of its first four sectors:
//
//	0x00 "LABELONE"
//	0x08 sector number of this label (le64)
//	0x10 CRC of bytes 0x14..0x200 (le32, LVM's CRC: see lvmCRC)
//	0x14 offset of the PV header from the label's start (le32)
//	0x18 "LVM2 001"
//
// The PV header follows: a 32-character UUID, the device size (le64),
// then two lists of (offset le64, size le64) areas, each ended by a zero
// pair: the data areas (the extents) and the metadata areas. A metadata
// area starts with a 512-byte header:
//
//	0x00 CRC of bytes 0x04..0x200 (le32)
//	0x04 magic " LVM2 x[5A%r0N*>"
//	0x14 version (le32, 1)
//	0x18 start: the area's offset on the PV (le64)
//	0x20 size of the area (le64)
//	0x28 raw locations (offset le64 relative to the area, size le64,
//	     CRC le32 of the text, flags le32), ended by a zero entry
//
// The first raw location holds the current metadata text, in a circular
// buffer that follows the header: text running past the area's end
// continues right after the header.
const (
	sectorSize     = 512
	labelScan      = 4 // sectors searched for the label
	labelID        = "LABELONE"
	labelType      = "LVM2 001"
	labelCRCFrom   = 0x14
	pvUUIDLen      = 32
	mdaHeaderSize  = 512
	mdaMagic       = " LVM2 x[5A%r0N*>"
	mdaVersion     = 1
	mdaCRCFrom     = 4
	rawLocnSize    = 24
	rawLocnIgnored = 1 // flags: this location is to be ignored
	initialCRC     = 0xf597a6cf
)

// lvmCRC is LVM's checksum: the reflected CRC-32 (IEEE polynomial)
// started at initialCRC, without the final inversion.
func lvmCRC(p []byte) uint32 {
	return ^crc32.Update(^uint32(initialCRC), crc32.IEEETable, p)
}

var le = binary.LittleEndian

// diskArea is one (offset, size) pair of the PV header, in bytes.
type diskArea struct{ Offset, Size uint64 }

// rawLocn is one metadata location of a metadata area header.
type rawLocn struct {
	Offset, Size uint64
	CRC, Flags   uint32
}
