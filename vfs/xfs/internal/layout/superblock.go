package layout

import "encoding/binary"

// Magic numbers of the superblock.
const (
	SuperblockMagic = 0x58465342 // "XFSB"
)

// SuperblockSize is the size of the superblock structure xfsprogs 6.1
// knows; the rest of its sector is zero.
const SuperblockSize = 0x108

// SuperblockCRCOffset is where the v5 superblock's CRC32c sits; it covers
// the whole first sector.
const SuperblockCRCOffset = 0xE0

// Superblock is the XFS superblock (struct xfs_dsb), at byte 0 of each
// allocation group; the one in AG 0 is primary.
type Superblock struct {
	Magic               uint32      // 0x00 "XFSB"
	BlockSize           uint32      // 0x04 filesystem block size in bytes
	DBlocks             uint64      // 0x08 blocks in the data section
	RBlocks             uint64      // 0x10 blocks in the realtime section
	RExtents            uint64      // 0x18 realtime extents
	UUID                [16]byte    // 0x20
	LogStart            uint64      // 0x30 first block of an internal log (fsblock), 0 if external
	RootIno             uint64      // 0x38 inode of the root directory
	RBMIno              uint64      // 0x40 realtime bitmap inode
	RSumIno             uint64      // 0x48 realtime summary inode
	RExtSize            uint32      // 0x50 realtime extent size in blocks
	AGBlocks            uint32      // 0x54 blocks in each allocation group (the last may be shorter)
	AGCount             uint32      // 0x58 allocation groups
	RBMBlocks           uint32      // 0x5C realtime bitmap blocks
	LogBlocks           uint32      // 0x60 blocks of the log
	VersionNum          uint16      // 0x64 version number (low 4 bits) and VersionBits
	SectSize            uint16      // 0x66 sector size in bytes
	InodeSize           uint16      // 0x68 inode size in bytes
	InoPBlock           uint16      // 0x6A inodes per block
	FName               [12]byte    // 0x6C label, NUL-padded
	BlockLog            uint8       // 0x78 log2(BlockSize)
	SectLog             uint8       // 0x79 log2(SectSize)
	InodeLog            uint8       // 0x7A log2(InodeSize)
	InoPBLog            uint8       // 0x7B log2(InoPBlock)
	AGBlkLog            uint8       // 0x7C log2(AGBlocks) rounded up
	RExtSLog            uint8       // 0x7D log2 of realtime extents
	InProgress          uint8       // 0x7E mkfs did not finish
	IMaxPct             uint8       // 0x7F max % of space for inodes
	ICount              uint64      // 0x80 allocated inodes
	IFree               uint64      // 0x88 free inodes
	FDBlocks            uint64      // 0x90 free data blocks
	FRExtents           uint64      // 0x98 free realtime extents
	UQuotIno            uint64      // 0xA0 user quota inode
	GQuotIno            uint64      // 0xA8 group quota inode
	QFlags              uint16      // 0xB0 quota flags
	Flags               uint8       // 0xB2 misc flags
	SharedVN            uint8       // 0xB3 shared version number
	InoAlignMT          uint32      // 0xB4 inode chunk alignment in blocks
	Unit                uint32      // 0xB8 stripe unit in blocks
	Width               uint32      // 0xBC stripe width in blocks
	DirBlkLog           uint8       // 0xC0 log2 of directory blocks per fs block
	LogSectLog          uint8       // 0xC1 log2 of the log's sector size
	LogSectSize         uint16      // 0xC2 log sector size in bytes (0 means 512)
	LogSUnit            uint32      // 0xC4 log stripe unit in bytes
	Features2           Features2   // 0xC8 more version bits
	BadFeatures2        Features2   // 0xCC copy of Features2 (an old alignment bug wrote it here)
	FeaturesCompat      Compat      // 0xD0 v5 compatible features
	FeaturesROCompat    ROCompat    // 0xD4 v5 read-only-compatible features
	FeaturesIncompat    Incompat    // 0xD8 v5 incompatible features
	FeaturesLogIncompat LogIncompat // 0xDC v5 log-incompatible features
	CRC                 uint32      // 0xE0 CRC32c of the sector (little-endian on disk)
	SpinoAlign          uint32      // 0xE4 sparse inode chunk alignment
	PQuotIno            uint64      // 0xE8 project quota inode
	LSN                 uint64      // 0xF0 last write sequence
	MetaUUID            [16]byte    // 0xF8 UUID stamped in metadata when MetaUUID is set
}

// DecodeSuperblock decodes the superblock at the start of b.
func DecodeSuperblock(b []byte) (*Superblock, error) {
	s := new(Superblock)
	if err := decode(b, s, "superblock"); err != nil {
		return nil, err
	}
	s.CRC = binary.LittleEndian.Uint32(b[SuperblockCRCOffset:])
	return s, nil
}

// Version is the superblock version number, 4 or 5 on anything current.
func (s *Superblock) Version() int { return int(s.VersionNum & 0xF) }

// Bits returns the feature bits of VersionNum.
func (s *Superblock) Bits() VersionBits { return VersionBits(s.VersionNum &^ 0xF) }

// HasCRC reports a v5 filesystem: metadata CRCs and self-describing headers.
func (s *Superblock) HasCRC() bool { return s.Version() == 5 }

// HasFtype reports whether directory entries record the file type.
func (s *Superblock) HasFtype() bool {
	if s.HasCRC() {
		return s.FeaturesIncompat&IncompatFtype != 0
	}
	return s.Bits()&VersionMoreBits != 0 && s.Features2&Features2Ftype != 0
}

// MetadataUUID is the UUID v5 metadata headers carry: MetaUUID when the
// meta_uuid feature is set (the user-visible UUID was changed), else UUID.
func (s *Superblock) MetadataUUID() [16]byte {
	if s.HasCRC() && s.FeaturesIncompat&IncompatMetaUUID != 0 {
		return s.MetaUUID
	}
	return s.UUID
}

// Label returns the filesystem label without its NUL padding.
func (s *Superblock) Label() string {
	n := 0
	for n < len(s.FName) && s.FName[n] != 0 {
		n++
	}
	return string(s.FName[:n])
}
