package partition

// On-disk structures of the GUID partition table (UEFI specification,
// chapter 5.3). Layout only; see layout.go.

// gptSignature opens every GPT header.
var gptSignature = [8]byte{'E', 'F', 'I', ' ', 'P', 'A', 'R', 'T'}

// gptHeaderSize is the size of the header fields defined by the
// specification; the header's own HeaderSize may be larger (up to a sector),
// and its CRC covers HeaderSize bytes.
const gptHeaderSize = 92

// gptHeader is the GPT header found at LBA 1 (primary) and, normally, at
// the last LBA of the disk (backup).
type gptHeader struct {
	Signature    [8]byte  // 0x00 "EFI PART"
	Revision     uint32   // 0x08 0x00010000 for 1.0
	HeaderSize   uint32   // 0x0C bytes covered by HeaderCRC, >= 92
	HeaderCRC    uint32   // 0x10 CRC32 of the header with this field zeroed
	Reserved     uint32   // 0x14 must be zero
	MyLBA        uint64   // 0x18 LBA of this header
	AlternateLBA uint64   // 0x20 LBA of the other header
	FirstUsable  uint64   // 0x28 first LBA a partition may use
	LastUsable   uint64   // 0x30 last LBA a partition may use
	DiskGUID     [16]byte // 0x38 disk GUID (mixed-endian)
	EntriesLBA   uint64   // 0x48 first LBA of the partition entry array
	NumEntries   uint32   // 0x50 number of entries in the array
	EntrySize    uint32   // 0x54 size of one entry, 128 * 2^n
	EntriesCRC   uint32   // 0x58 CRC32 of NumEntries*EntrySize bytes
}

// gptEntry is one partition entry. Entries larger than 128 bytes carry
// extra bytes after Name that this package ignores.
type gptEntry struct {
	TypeGUID   [16]byte   // 0x00 partition type GUID; all zero = unused
	UniqueGUID [16]byte   // 0x10 unique partition GUID
	FirstLBA   uint64     // 0x20 first LBA
	LastLBA    uint64     // 0x28 last LBA, inclusive
	Attributes gptAttr    // 0x30 attribute flags
	Name       [36]uint16 // 0x38 UTF-16LE name, NUL padded
}

// gptEntryMinSize is the size of gptEntry, the smallest legal entry size.
const gptEntryMinSize = 128

// gptAttr holds the attribute flags of a GPT entry.
type gptAttr uint64

// GPT attribute bits this package reads.
const (
	gptAttrRequired       gptAttr = 1 << 0 // platform required
	gptAttrNoBlockIO      gptAttr = 1 << 1 // EFI ignores the partition
	gptAttrLegacyBootable gptAttr = 1 << 2 // legacy BIOS bootable
)

// bootable reports the legacy BIOS bootable flag.
func (a gptAttr) bootable() bool { return a&gptAttrLegacyBootable != 0 }

// guidString formats a GPT GUID, whose first three fields are little-endian,
// in the usual upper-case 8-4-4-4-12 form.
func guidString(g [16]byte) string {
	const hex = "0123456789ABCDEF"
	order := [16]int{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	out := make([]byte, 0, 36)
	for i, idx := range order {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[g[idx]>>4], hex[g[idx]&0xF])
	}
	return string(out)
}
