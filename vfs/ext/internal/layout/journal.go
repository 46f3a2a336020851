package layout

// jbd2 constants. The journal is big-endian, unlike the filesystem.
const (
	JournalMagic           = 0xC03B3998
	JournalSuperblockSize  = 1024
	JournalBlockDescriptor = 1
	JournalBlockCommit     = 2
	JournalSuperblockV1    = 3
	JournalSuperblockV2    = 4
	JournalBlockRevoke     = 5
	JournalCsumOffset      = 0xFC
	// JournalSequenceOffset and JournalStartOffset: s_sequence and
	// s_start, the fields a replay or a commit rewrites in place.
	JournalSequenceOffset = 0x18
	JournalStartOffset    = 0x1C
	JournalCsumTypeCRC32C = 4
)

// JournalHeader is journal_header_t, at the start of every journal
// metadata block.
type JournalHeader struct {
	Magic     uint32 // 0x0
	BlockType uint32 // 0x4
	Sequence  uint32 // 0x8
}

// JournalSuperblock is journal_superblock_t.
type JournalSuperblock struct {
	Header          JournalHeader   // 0x00
	BlockSize       uint32          // 0x0C
	MaxLen          uint32          // 0x10
	First           uint32          // 0x14
	Sequence        uint32          // 0x18
	Start           uint32          // 0x1C
	Errno           int32           // 0x20
	FeatureCompat   JournalCompat   // 0x24
	FeatureIncompat JournalIncompat // 0x28
	FeatureROCompat uint32          // 0x2C
	UUID            [16]byte        // 0x30
	NrUsers         uint32          // 0x40
	Dynsuper        uint32          // 0x44
	MaxTransaction  uint32          // 0x48
	MaxTransData    uint32          // 0x4C
	ChecksumType    uint8           // 0x50
	Padding2        [3]uint8        // 0x51
	NumFcBlks       uint32          // 0x54
	Head            uint32          // 0x58
	Padding         [40]uint32      // 0x5C
	Checksum        uint32          // 0xFC
	Users           [16 * 48]byte   // 0x100
}

// DecodeJournalSuperblock decodes a jbd2 superblock from the start of b.
func DecodeJournalSuperblock(b []byte) (*JournalSuperblock, error) {
	var s JournalSuperblock
	if len(b) < s.size() {
		return nil, short("journal superblock", s.size(), len(b))
	}
	s.get(b) // big-endian, as codec.go's generator knows
	return &s, nil
}

// JournalCompat and JournalIncompat are the journal's feature words.
type (
	JournalCompat   uint32
	JournalIncompat uint32
)

// Journal features.
const (
	JournalCompatChecksum      JournalCompat   = 0x1
	JournalIncompatRevoke      JournalIncompat = 0x01
	JournalIncompat64Bit       JournalIncompat = 0x02
	JournalIncompatAsyncCommit JournalIncompat = 0x04
	JournalIncompatCsumV2      JournalIncompat = 0x08
	JournalIncompatCsumV3      JournalIncompat = 0x10
	JournalIncompatFastCommit  JournalIncompat = 0x20
	JournalIncompatKnown       JournalIncompat = 0x3F
)

// Has reports whether every bit of g is set in f.
func (f JournalCompat) Has(g JournalCompat) bool { return f&g == g }

// Has reports whether every bit of g is set in f.
func (f JournalIncompat) Has(g JournalIncompat) bool { return f&g == g }

// Names lists the names of the set bits.
func (f JournalIncompat) Names() []string {
	return featureNames(uint32(f), map[uint32]string{
		0x01: "journal_incompat_revoke", 0x02: "journal_64bit",
		0x04: "journal_async_commit", 0x08: "journal_checksum_v2",
		0x10: "journal_checksum_v3", 0x20: "journal_fast_commit",
	}, "JI")
}
