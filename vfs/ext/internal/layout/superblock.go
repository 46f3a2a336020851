package layout

// SuperblockOffset is where the primary superblock sits, in bytes from the
// start of the filesystem, whatever the block size; SuperblockSize is its
// length.
const (
	SuperblockOffset = 1024
	SuperblockSize   = 1024
	Magic            = 0xEF53
)

// Superblock is struct ext4_super_block.
type Superblock struct {
	InodesCount       uint32          // 0x00
	BlocksCountLo     uint32          // 0x04
	RBlocksCountLo    uint32          // 0x08
	FreeBlocksCountLo uint32          // 0x0C
	FreeInodesCount   uint32          // 0x10
	FirstDataBlock    uint32          // 0x14
	LogBlockSize      uint32          // 0x18
	LogClusterSize    uint32          // 0x1C
	BlocksPerGroup    uint32          // 0x20
	ClustersPerGroup  uint32          // 0x24
	InodesPerGroup    uint32          // 0x28
	Mtime             uint32          // 0x2C
	Wtime             uint32          // 0x30
	MntCount          uint16          // 0x34
	MaxMntCount       int16           // 0x36
	Magic             uint16          // 0x38
	State             uint16          // 0x3A
	Errors            uint16          // 0x3C
	MinorRevLevel     uint16          // 0x3E
	Lastcheck         uint32          // 0x40
	Checkinterval     uint32          // 0x44
	CreatorOS         uint32          // 0x48
	RevLevel          uint32          // 0x4C
	DefResuid         uint16          // 0x50
	DefResgid         uint16          // 0x52
	FirstIno          uint32          // 0x54
	InodeSize         uint16          // 0x58
	BlockGroupNr      uint16          // 0x5A
	FeatureCompat     CompatFeature   // 0x5C
	FeatureIncompat   IncompatFeature // 0x60
	FeatureROCompat   ROCompatFeature // 0x64
	UUID              [16]byte        // 0x68
	VolumeName        [16]byte        // 0x78
	LastMounted       [64]byte        // 0x88
	AlgorithmUsage    uint32          // 0xC8
	PreallocBlocks    uint8           // 0xCC
	PreallocDirBlocks uint8           // 0xCD
	ReservedGDTBlocks uint16          // 0xCE
	JournalUUID       [16]byte        // 0xD0
	JournalInum       uint32          // 0xE0
	JournalDev        uint32          // 0xE4
	LastOrphan        uint32          // 0xE8
	HashSeed          [4]uint32       // 0xEC
	DefHashVersion    uint8           // 0xFC
	JnlBackupType     uint8           // 0xFD
	DescSize          uint16          // 0xFE
	DefaultMountOpts  uint32          // 0x100
	FirstMetaBg       uint32          // 0x104
	MkfsTime          uint32          // 0x108
	JnlBlocks         [17]uint32      // 0x10C
	BlocksCountHi     uint32          // 0x150
	RBlocksCountHi    uint32          // 0x154
	FreeBlocksCountHi uint32          // 0x158
	MinExtraIsize     uint16          // 0x15C
	WantExtraIsize    uint16          // 0x15E
	Flags             SuperFlag       // 0x160
	RaidStride        uint16          // 0x164
	MMPInterval       uint16          // 0x166
	MMPBlock          uint64          // 0x168
	RaidStripeWidth   uint32          // 0x170
	LogGroupsPerFlex  uint8           // 0x174
	ChecksumType      uint8           // 0x175
	EncryptionLevel   uint8           // 0x176
	ReservedPad       uint8           // 0x177
	KbytesWritten     uint64          // 0x178
	SnapshotInum      uint32          // 0x180
	SnapshotID        uint32          // 0x184
	SnapshotRBlocks   uint64          // 0x188
	SnapshotList      uint32          // 0x190
	ErrorCount        uint32          // 0x194
	FirstErrorTime    uint32          // 0x198
	FirstErrorIno     uint32          // 0x19C
	FirstErrorBlock   uint64          // 0x1A0
	FirstErrorFunc    [32]byte        // 0x1A8
	FirstErrorLine    uint32          // 0x1C8
	LastErrorTime     uint32          // 0x1CC
	LastErrorIno      uint32          // 0x1D0
	LastErrorLine     uint32          // 0x1D4
	LastErrorBlock    uint64          // 0x1D8
	LastErrorFunc     [32]byte        // 0x1E0
	MountOpts         [64]byte        // 0x200
	UsrQuotaInum      uint32          // 0x240
	GrpQuotaInum      uint32          // 0x244
	OverheadClusters  uint32          // 0x248
	BackupBgs         [2]uint32       // 0x24C
	EncryptAlgos      [4]uint8        // 0x254
	EncryptPwSalt     [16]byte        // 0x258
	LpfIno            uint32          // 0x268
	PrjQuotaInum      uint32          // 0x26C
	ChecksumSeed      uint32          // 0x270
	WtimeHi           uint8           // 0x274
	MtimeHi           uint8           // 0x275
	MkfsTimeHi        uint8           // 0x276
	LastcheckHi       uint8           // 0x277
	FirstErrorTimeHi  uint8           // 0x278
	LastErrorTimeHi   uint8           // 0x279
	FirstErrorErrcode uint8           // 0x27A
	LastErrorErrcode  uint8           // 0x27B
	Encoding          uint16          // 0x27C
	EncodingFlags     uint16          // 0x27E
	OrphanFileInum    uint32          // 0x280
	Reserved          [94]uint32      // 0x284
	Checksum          uint32          // 0x3FC
}

// SuperblockChecksumOffset is the offset of Checksum: the superblock
// checksum covers the bytes before it.
const SuperblockChecksumOffset = 0x3FC

// SuperblockIncompatOffset is the offset of FeatureIncompat, which a
// commit sets needs_recovery in without re-encoding the superblock.
const SuperblockIncompatOffset = 0x60

// DecodeSuperblock decodes a superblock from the start of b.
func DecodeSuperblock(b []byte) (*Superblock, error) {
	var s Superblock
	if err := decode(b, &s, "superblock"); err != nil {
		return nil, err
	}
	return &s, nil
}

// Encode writes s into b (at least SuperblockSize bytes).
func (s *Superblock) Encode(b []byte) error { return encode(b, s) }

// BlocksCount joins BlocksCountLo and BlocksCountHi (the high half counts
// only with the 64bit feature).
func (s *Superblock) BlocksCount() uint64 {
	if s.FeatureIncompat.Has(Incompat64Bit) {
		return uint64(s.BlocksCountHi)<<32 | uint64(s.BlocksCountLo)
	}
	return uint64(s.BlocksCountLo)
}

// FreeBlocksCount joins FreeBlocksCountLo and FreeBlocksCountHi.
func (s *Superblock) FreeBlocksCount() uint64 {
	if s.FeatureIncompat.Has(Incompat64Bit) {
		return uint64(s.FreeBlocksCountHi)<<32 | uint64(s.FreeBlocksCountLo)
	}
	return uint64(s.FreeBlocksCountLo)
}

// RBlocksCount joins RBlocksCountLo and RBlocksCountHi.
func (s *Superblock) RBlocksCount() uint64 {
	if s.FeatureIncompat.Has(Incompat64Bit) {
		return uint64(s.RBlocksCountHi)<<32 | uint64(s.RBlocksCountLo)
	}
	return uint64(s.RBlocksCountLo)
}

// Filesystem states (State).
const (
	StateValid  = 0x0001 // cleanly unmounted
	StateErrors = 0x0002 // errors detected
	StateOrphan = 0x0004 // orphans being recovered
)

// Revision levels (RevLevel).
const (
	RevGoodOld = 0 // fixed 128-byte inodes, first inode 11
	RevDynamic = 1
)

// SuperFlag is the Flags word.
type SuperFlag uint32

// Superblock flags.
const (
	FlagSignedHash   SuperFlag = 0x1
	FlagUnsignedHash SuperFlag = 0x2
	FlagTestFilesys  SuperFlag = 0x4
)

// Checksum types (ChecksumType) and filename encodings (Encoding).
const (
	ChecksumTypeCRC32C = 1
	EncodingUTF8_12_1  = 1
	EncodingStrictMode = 0x1
)

// Constants of the good old revision.
const (
	GoodOldFirstIno  = 11
	GoodOldInodeSize = 128
	RootIno          = 2
)
