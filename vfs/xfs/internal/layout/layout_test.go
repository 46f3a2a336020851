package layout

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func TestStructSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want int
	}{
		{"Superblock", Superblock{}, SuperblockSize},
		{"AGF", AGF{}, AGFSize},
		{"AGI", AGI{}, AGISize},
		{"InodeCore", InodeCore{}, InodeCoreV3Size},
		{"LongBlock", LongBlock{}, LongBlockCRCSize},
		{"ShortBlock", ShortBlock{}, ShortBlockCRCSize},
		{"BmdrBlock", BmdrBlock{}, BmdrHeaderSize},
		{"DABlkinfo", DABlkinfo{}, DABlkinfoSize},
		{"DA3Blkinfo", DA3Blkinfo{}, DA3BlkinfoSize},
		{"DANodeHdr+v4", struct {
			DABlkinfo
			DANodeHdr
		}{}, DANodeHdrSize},
		{"DA3NodeHdr", struct {
			DA3Blkinfo
			DANodeHdr
			Pad uint32
		}{}, DA3NodeHdrSize},
		{"DANodeEntry", DANodeEntry{}, DANodeEntrySize},
		{"DirDataHdr", DirDataHdr{}, DirDataHdrSize},
		{"Dir3DataHdr", Dir3DataHdr{}, Dir3DataHdrSize},
		{"DirBlockTail", DirBlockTail{}, DirBlockTailSize},
		{"DirLeafEntry", DirLeafEntry{}, DirLeafEntrySize},
		{"DirLeafHdr", struct {
			DABlkinfo
			DirLeafCounts
		}{}, DirLeafHdrSize},
		{"Dir3LeafHdr", struct {
			DA3Blkinfo
			DirLeafCounts
			Pad uint32
		}{}, Dir3LeafHdrSize},
		{"DirSFHdr", DirSFHdr{}, 2},
		{"AttrSFHdr", AttrSFHdr{}, AttrSFHdrSize},
		{"AttrLeafHdr", struct {
			DABlkinfo
			AttrLeafCounts
		}{}, AttrLeafHdrSize},
		{"Attr3LeafHdr", struct {
			DA3Blkinfo
			AttrLeafCounts
			Pad uint32
		}{}, Attr3LeafHdrSize},
		{"AttrLeafEntry", AttrLeafEntry{}, AttrLeafEntrySize},
		{"AttrLeafNameLocal", AttrLeafNameLocal{}, AttrLeafNameLocalSize},
		{"AttrLeafNameRemote", AttrLeafNameRemote{}, AttrLeafNameRemoteSize},
		{"RemoteHdr", RemoteHdr{}, RemoteHdrSize},
		{"LogRecordHeader", LogRecordHeader{}, LogRecordHeaderSize},
		{"LogOpHeader", LogOpHeader{}, LogOpHeaderSize},
	} {
		if got := binary.Size(c.v); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
}

// TestFieldOffsets pins far fields by writing markers at their documented
// offsets and decoding them back.
func TestFieldOffsets(t *testing.T) {
	b := make([]byte, 512)
	binary.BigEndian.PutUint32(b[0x00:], SuperblockMagic)
	binary.BigEndian.PutUint32(b[0x58:], 7)         // agcount
	binary.BigEndian.PutUint16(b[0x68:], 512)       // inodesize
	b[0xC0] = 2                                     // dirblklog
	binary.BigEndian.PutUint32(b[0xD8:], 0x23)      // incompat
	binary.LittleEndian.PutUint32(b[0xE0:], 0xABCD) // crc
	binary.BigEndian.PutUint64(b[0xE8:], 99)        // pquotino
	b[0xF8] = 0x5A                                  // meta_uuid
	s, err := DecodeSuperblock(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Magic != SuperblockMagic || s.AGCount != 7 || s.InodeSize != 512 || s.DirBlkLog != 2 ||
		s.FeaturesIncompat != 0x23 || s.CRC != 0xABCD || s.PQuotIno != 99 || s.MetaUUID[0] != 0x5A {
		t.Fatalf("superblock offsets wrong: %+v", s)
	}
	ib := make([]byte, 256)
	binary.BigEndian.PutUint64(ib[0x38:], 12345) // size
	ib[0x52] = 15                                // forkoff
	binary.BigEndian.PutUint64(ib[0x78:], uint64(Flag2Bigtime|Flag2Nrext64))
	binary.BigEndian.PutUint64(ib[0x18:], 1<<40) // big nextents
	binary.BigEndian.PutUint64(ib[0x98:], 4242)  // ino
	ib[4] = 3
	c, err := DecodeInodeCore(ib)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 12345 || c.ForkOff != 15 || !c.Bigtime() || c.DataExtents() != 1<<40 || c.Ino != 4242 {
		t.Fatalf("inode offsets wrong: %+v", c)
	}
	ab := make([]byte, 512)
	binary.BigEndian.PutUint32(ab[0x148:], 77)
	binary.LittleEndian.PutUint32(ab[AGICRCOffset:], 5)
	agi, err := DecodeAGI(ab)
	if err != nil || agi.FreeRoot != 77 || agi.CRC != 5 {
		t.Fatalf("AGI offsets wrong: %+v %v", agi, err)
	}
}

func TestExtentRoundTrip(t *testing.T) {
	for _, e := range []Extent{
		{StartOff: 0, StartBlock: 0, Count: 1},
		{StartOff: 1<<54 - 1, StartBlock: 1<<52 - 1, Count: 1<<21 - 1, Unwritten: true},
		{StartOff: 0x123456789, StartBlock: 0xABCDEF01234, Count: 77},
	} {
		var b [16]byte
		EncodeExtent(b[:], e)
		if got := DecodeExtent(b[:]); got != e {
			t.Errorf("extent %+v decoded as %+v", e, got)
		}
	}
	// A hand-packed record: unwritten, offset 3, block 5, 2 blocks.
	b := []byte{0x80, 0, 0, 0, 0, 0, 0x06, 0x00, 0, 0, 0, 0, 0, 0xA0, 0, 2}
	if got := DecodeExtent(b); got != (Extent{StartOff: 3, StartBlock: 5, Count: 2, Unwritten: true}) {
		t.Errorf("hand-packed extent decoded as %+v", got)
	}
}

func TestFeatureNames(t *testing.T) {
	if got := (IncompatBigtime | IncompatNrext64 | Incompat(0x400)).String(); got != "bigtime,nrext64,unknown_0x400" {
		t.Errorf("incompat names: %q", got)
	}
	if got := (ROCompatFinobt | ROCompatReflink).String(); got != "finobt,reflink" {
		t.Errorf("rocompat names: %q", got)
	}
	if !strings.Contains(VersionBits(0xB4A0).String(), "morebits") {
		t.Errorf("version names: %q", VersionBits(0xB4A0))
	}
}

func TestChecksum(t *testing.T) {
	b := []byte("0123456789abcdef")
	z := append([]byte(nil), b...)
	copy(z[4:8], []byte{0, 0, 0, 0})
	if got, want := Checksum(b, 4), crc32.Checksum(z, crc32.MakeTable(crc32.Castagnoli)); got != want {
		t.Errorf("Checksum = %#x, want %#x", got, want)
	}
}

func TestTimestamp(t *testing.T) {
	classic := Timestamp(uint64(uint32(1700000000))<<32 | 5)
	if got := classic.Time(false); !got.Equal(time.Unix(1700000000, 5)) {
		t.Errorf("classic = %v", got)
	}
	big := Timestamp(uint64(1700000000+BigtimeEpochOffset)*1e9 + 7)
	if got := big.Time(true); !got.Equal(time.Unix(1700000000, 7)) {
		t.Errorf("bigtime = %v", got)
	}
	neg := Timestamp(uint64(0xFFFFFFFF) << 32) // -1 s
	if got := neg.Time(false); got.Unix() != -1 {
		t.Errorf("negative classic = %v", got)
	}
}
