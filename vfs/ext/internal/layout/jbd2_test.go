package layout

import (
	"encoding/binary"
	"testing"
)

func TestJbd2StructSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want int
	}{
		{"JournalBlockTail", JournalBlockTail{}, JournalBlockTailSize},
		{"JournalBlockTag3", JournalBlockTag3{}, 16},
		{"JournalBlockTag", JournalBlockTag{}, 12},
		{"JournalRevokeHeader", JournalRevokeHeader{}, JournalRevokeHeaderSize},
		{"JournalCommitHeader", JournalCommitHeader{}, JournalCommitHeaderSize},
	} {
		if got := binary.Size(c.v); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
}

func TestJournalTagSize(t *testing.T) {
	for _, c := range []struct {
		inc  JournalIncompat
		want int
	}{
		{0, 8},
		{JournalIncompat64Bit, 12},
		{JournalIncompatCsumV2, 10},
		{JournalIncompatCsumV2 | JournalIncompat64Bit, 14},
		{JournalIncompatCsumV3, 16},
		{JournalIncompatCsumV3 | JournalIncompat64Bit, 16},
	} {
		if got := JournalTagSize(c.inc); got != c.want {
			t.Errorf("JournalTagSize(%#x) = %d, want %d", c.inc, got, c.want)
		}
	}
}

// TestJournalTagRoundTrip pins the tag field offsets of every form.
func TestJournalTagRoundTrip(t *testing.T) {
	for _, inc := range []JournalIncompat{0, JournalIncompat64Bit, JournalIncompatCsumV2,
		JournalIncompatCsumV2 | JournalIncompat64Bit, JournalIncompatCsumV3, JournalIncompatCsumV3 | JournalIncompat64Bit} {
		tag := JournalTag{Block: 0x12345678, Flags: TagEscape | TagLastTag}
		if inc.Has(JournalIncompat64Bit) {
			tag.Block |= 0x9A << 32
		}
		switch {
		case inc.Has(JournalIncompatCsumV3):
			tag.Checksum = 0xDEADBEEF
		case inc.Has(JournalIncompatCsumV2):
			tag.Checksum = 0xBEEF
		}
		b := make([]byte, 16)
		EncodeJournalTag(b, tag, inc)
		if got := DecodeJournalTag(b, inc); got != tag {
			t.Errorf("inc %#x: decoded %+v, want %+v", inc, got, tag)
		}
		if binary.BigEndian.Uint32(b) != 0x12345678 {
			t.Errorf("inc %#x: block number not at offset 0", inc)
		}
	}
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b[6:], uint16(TagSameUUID))
	if got := DecodeJournalTag(b, 0); got.Flags != TagSameUUID {
		t.Errorf("v2 tag flags at 0x6: got %+v", got)
	}
}

func TestJournalCommitHeaderOffsets(t *testing.T) {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], JournalMagic)
	binary.BigEndian.PutUint32(b[4:], JournalBlockCommit)
	binary.BigEndian.PutUint32(b[8:], 77)
	b[0xC], b[0xD] = JournalCRC32Chksum, JournalCRC32ChksumSize
	binary.BigEndian.PutUint32(b[JournalCommitChecksumOffset:], 0xCAFEF00D)
	binary.BigEndian.PutUint64(b[0x30:], 1234)
	binary.BigEndian.PutUint32(b[0x38:], 5678)
	c := DecodeJournalCommitHeader(b)
	h := DecodeJournalHeader(b)
	if h != c.Header || h.Sequence != 77 || c.ChecksumType != JournalCRC32Chksum || c.ChecksumSize != 4 ||
		c.Checksum[0] != 0xCAFEF00D || c.CommitSec != 1234 || c.CommitNsec != 5678 {
		t.Fatalf("commit header decoded as %+v", c)
	}
}
