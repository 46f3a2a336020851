package partition

// This file and layout_gpt.go hold on-disk structures only: no I/O, no
// validation. Each struct mirrors the disk byte for byte (the hex comment on
// each field is its offset) and is decoded with encoding/binary; a size test
// pins each one. Validating what was decoded is the job of mbr.go and gpt.go.

import (
	"encoding/binary"
	"fmt"
)

// mbrSectorSize is the size of a master or extended boot record. It is 512
// bytes whatever the logical sector size of the disk.
const mbrSectorSize = 512

// mbrSignature is the boot signature at 0x1FE of an MBR or EBR.
var mbrSignature = [2]byte{0x55, 0xAA}

// mbrEntry is one of the four 16-byte partition entries of an MBR or EBR.
type mbrEntry struct {
	Status   uint8   // 0x00 0x80 active (bootable), 0x00 inactive
	CHSFirst [3]byte // 0x01 legacy CHS address of the first sector (ignored)
	Type     uint8   // 0x04 partition type byte
	CHSLast  [3]byte // 0x05 legacy CHS address of the last sector (ignored)
	LBAFirst uint32  // 0x08 first sector (MBR: absolute; EBR: relative)
	Sectors  uint32  // 0x0C number of sectors
}

// mbrSector is a master boot record, or an extended boot record (whose
// boot code area is normally unused and whose last two entries are zero).
type mbrSector struct {
	BootCode  [440]byte   // 0x000 boot code
	DiskSig   uint32      // 0x1B8 disk signature ("disk identifier")
	Reserved  uint16      // 0x1BC usually zero
	Entries   [4]mbrEntry // 0x1BE partition entries
	Signature [2]byte     // 0x1FE 0x55 0xAA
}

// MBR partition type bytes this package gives meaning to.
const (
	mbrTypeEmpty        = 0x00
	mbrTypeExtendedCHS  = 0x05
	mbrTypeExtendedLBA  = 0x0F
	mbrTypeExtendedLinx = 0x85
	mbrTypeGPTProtect   = 0xEE
)

// isExtended tells whether an MBR type byte marks an extended partition.
func isExtended(t uint8) bool {
	return t == mbrTypeExtendedCHS || t == mbrTypeExtendedLBA || t == mbrTypeExtendedLinx
}

// used tells whether an entry describes a partition; like Linux and
// libfdisk, an entry counts when its size is not zero.
func (e mbrEntry) used() bool { return e.Sectors != 0 }

// decode fills v (a pointer to a fixed-size struct) from the start of b in
// little-endian order. It fails only when b is too short.
func decode(b []byte, v any) error {
	n := binary.Size(v)
	if len(b) < n {
		return fmt.Errorf("need %d bytes, have %d", n, len(b))
	}
	_, err := binary.Decode(b[:n], binary.LittleEndian, v)
	return err
}
