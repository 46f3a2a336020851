package layout

import "encoding/binary"

// jbd2 log blocks: the descriptor, revoke and commit blocks that follow
// the journal superblock (journal.go). Every field is big-endian. Nothing
// here does I/O; the replay in package ext walks these.

// JournalHeaderSize is the size of journal_header_t at the start of every
// descriptor, revoke and commit block.
const JournalHeaderSize = 12

// DecodeJournalHeader decodes the header at the start of b (at least
// JournalHeaderSize bytes).
func DecodeJournalHeader(b []byte) JournalHeader {
	return JournalHeader{
		Magic:     binary.BigEndian.Uint32(b[0x0:]),
		BlockType: binary.BigEndian.Uint32(b[0x4:]),
		Sequence:  binary.BigEndian.Uint32(b[0x8:]),
	}
}

// JournalBlockTail is jbd2_journal_block_tail: the checksum in the last 4
// bytes of descriptor and revoke blocks under csum v2/v3.
type JournalBlockTail struct {
	Checksum uint32 // 0x0 (from the end of the block - 4)
}

// JournalBlockTailSize is the size of JournalBlockTail.
const JournalBlockTailSize = 4

// JournalTagFlag is the flags word of a descriptor tag.
type JournalTagFlag uint32

// Descriptor tag flags.
const (
	TagEscape   JournalTagFlag = 0x1 // the block began with the jbd2 magic, zeroed in the log
	TagSameUUID JournalTagFlag = 0x2 // no 16-byte UUID follows this tag
	TagDeleted  JournalTagFlag = 0x4 // unused by jbd2
	TagLastTag  JournalTagFlag = 0x8 // last tag of the descriptor
)

// Has reports whether every bit of g is set in f.
func (f JournalTagFlag) Has(g JournalTagFlag) bool { return f&g == g }

// JournalBlockTag3 is journal_block_tag3_t, the descriptor tag of csum v3
// journals (16 bytes, whatever the 64bit feature).
type JournalBlockTag3 struct {
	BlocknrLo uint32         // 0x0
	Flags     JournalTagFlag // 0x4
	BlocknrHi uint32         // 0x8 (meaningful with journal_64bit)
	Checksum  uint32         // 0xC crc32c of the sequence and the logged block
}

// JournalBlockTag is journal_block_tag_t, the descriptor tag of other
// journals. Its on-disk length varies (JournalTagSize): 8 bytes plain
// 32-bit, 12 with journal_64bit, plus 2 with csum v2.
type JournalBlockTag struct {
	BlocknrLo uint32 // 0x0
	Checksum  uint16 // 0x4 low 16 bits of the block's crc32c (csum v2)
	Flags     uint16 // 0x6
	BlocknrHi uint32 // 0x8 (present only with journal_64bit)
}

// JournalTagUUIDSize is the size of the UUID that follows a tag without
// TagSameUUID.
const JournalTagUUIDSize = 16

// JournalTagSize returns the on-disk size of one descriptor tag (without
// the optional UUID) for a journal with these incompat features.
func JournalTagSize(inc JournalIncompat) int {
	if inc.Has(JournalIncompatCsumV3) {
		return 16
	}
	n := 12
	if inc.Has(JournalIncompatCsumV2) {
		n += 2
	}
	if !inc.Has(JournalIncompat64Bit) {
		n -= 4
	}
	return n
}

// JournalTag is a decoded descriptor tag, whatever its on-disk form.
type JournalTag struct {
	Block    uint64 // filesystem block the logged block belongs to
	Flags    JournalTagFlag
	Checksum uint32 // 32 bits (v3) or 16 bits (v2); 0 without checksums
}

// DecodeJournalTag decodes the tag at the start of b, which must hold at
// least JournalTagSize(inc) bytes.
func DecodeJournalTag(b []byte, inc JournalIncompat) JournalTag {
	be := binary.BigEndian
	if inc.Has(JournalIncompatCsumV3) {
		t := JournalTag{Block: uint64(be.Uint32(b[0x0:])), Flags: JournalTagFlag(be.Uint32(b[0x4:])), Checksum: be.Uint32(b[0xC:])}
		if inc.Has(JournalIncompat64Bit) {
			t.Block |= uint64(be.Uint32(b[0x8:])) << 32
		}
		return t
	}
	t := JournalTag{Block: uint64(be.Uint32(b[0x0:])), Flags: JournalTagFlag(be.Uint16(b[0x6:]))}
	if inc.Has(JournalIncompatCsumV2) {
		t.Checksum = uint32(be.Uint16(b[0x4:]))
	}
	if inc.Has(JournalIncompat64Bit) {
		t.Block |= uint64(be.Uint32(b[0x8:])) << 32
	}
	return t
}

// EncodeJournalTag writes t at the start of b in the form inc selects
// (the inverse of DecodeJournalTag, for tests and writers).
func EncodeJournalTag(b []byte, t JournalTag, inc JournalIncompat) {
	be := binary.BigEndian
	be.PutUint32(b[0x0:], uint32(t.Block))
	if inc.Has(JournalIncompatCsumV3) {
		be.PutUint32(b[0x4:], uint32(t.Flags))
		be.PutUint32(b[0x8:], uint32(t.Block>>32))
		be.PutUint32(b[0xC:], t.Checksum)
		return
	}
	be.PutUint16(b[0x4:], uint16(t.Checksum))
	be.PutUint16(b[0x6:], uint16(t.Flags))
	if inc.Has(JournalIncompat64Bit) {
		be.PutUint32(b[0x8:], uint32(t.Block>>32))
	}
}

// JournalRevokeHeader is jbd2_journal_revoke_header_t: the header of a
// revoke block. Count is the number of bytes used in the block, header
// included; revoked block numbers (4 bytes, 8 with journal_64bit) follow.
type JournalRevokeHeader struct {
	Header JournalHeader // 0x0
	Count  uint32        // 0xC
}

// JournalRevokeHeaderSize is the size of JournalRevokeHeader.
const JournalRevokeHeaderSize = 16

// JournalRevokeRecordSize is the size of one revoked block number.
func JournalRevokeRecordSize(inc JournalIncompat) int {
	if inc.Has(JournalIncompat64Bit) {
		return 8
	}
	return 4
}

// JournalCommitHeader is struct commit_header: the start of a commit
// block.
type JournalCommitHeader struct {
	Header       JournalHeader // 0x00
	ChecksumType uint8         // 0x0C JournalCRC32Chksum etc. (compat checksum)
	ChecksumSize uint8         // 0x0D
	Padding      [2]uint8      // 0x0E
	Checksum     [8]uint32     // 0x10 [0]: the checksum; csum v2/v3 use it for the block's crc32c
	CommitSec    uint64        // 0x30
	CommitNsec   uint32        // 0x38
}

// JournalCommitHeaderSize is the size of JournalCommitHeader.
const JournalCommitHeaderSize = 0x3C

// Commit block checksum fields.
const (
	JournalCommitChecksumOffset = 0x10 // Checksum[0]
	JournalCRC32Chksum          = 1    // ChecksumType of the compat (crc32_be) checksum
	JournalCRC32ChksumSize      = 4
)

// DecodeJournalCommitHeader decodes a commit header from the start of b
// (at least JournalCommitHeaderSize bytes).
func DecodeJournalCommitHeader(b []byte) JournalCommitHeader {
	var c JournalCommitHeader
	_, _ = binary.Decode(b[:JournalCommitHeaderSize], binary.BigEndian, &c)
	return c
}
