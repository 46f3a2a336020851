package layout

import (
	"encoding/binary"
	"testing"
)

func TestStructSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want int
	}{
		{"Superblock", Superblock{}, SuperblockSize},
		{"GroupDesc", GroupDesc{}, GroupDesc64Size},
		{"Inode", Inode{}, InodeExtSize},
		{"ExtentHeader", ExtentHeader{}, ExtentHeaderSize},
		{"Extent", Extent{}, ExtentEntrySize},
		{"ExtentIndex", ExtentIndex{}, ExtentEntrySize},
		{"Dirent", Dirent{}, DirentHeaderSize},
		{"DirentTail", DirentTail{}, DirentTailSize},
		{"DxRootInfo", DxRootInfo{}, DxRootInfoSize},
		{"DxCountLimit", DxCountLimit{}, 4},
		{"DxEntry", DxEntry{}, DxEntrySize},
		{"DxTail", DxTail{}, DxTailSize},
		{"XattrHeader", XattrHeader{}, XattrHeaderSize},
		{"XattrEntry", XattrEntry{}, XattrEntrySize},
		{"JournalHeader", JournalHeader{}, 12},
		{"JournalSuperblock", JournalSuperblock{}, JournalSuperblockSize},
		{"QuotaHeader", QuotaHeader{}, QuotaHeaderSize},
		{"QuotaInfo", QuotaInfo{}, QuotaInfoSize},
		{"QuotaDataHeader", QuotaDataHeader{}, QuotaDataHdrSize},
		{"QuotaEntryV1", QuotaEntryV1{}, QuotaEntryV1Size},
	} {
		if got := binary.Size(c.v); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
}

// TestFieldOffsets pins a few far fields by writing a marker at their
// documented offset and decoding it back.
func TestFieldOffsets(t *testing.T) {
	b := make([]byte, SuperblockSize)
	binary.LittleEndian.PutUint16(b[0x38:], Magic)
	binary.LittleEndian.PutUint32(b[0x270:], 0xAABBCCDD)
	binary.LittleEndian.PutUint16(b[0x27C:], 1)
	binary.LittleEndian.PutUint32(b[SuperblockChecksumOffset:], 0x11223344)
	s, err := DecodeSuperblock(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Magic != Magic || s.ChecksumSeed != 0xAABBCCDD || s.Encoding != 1 || s.Checksum != 0x11223344 {
		t.Fatalf("superblock offsets wrong: %+v", s)
	}
	ib := make([]byte, 256)
	binary.LittleEndian.PutUint16(ib[InodeChecksumLoOff:], 0x1234)
	binary.LittleEndian.PutUint16(ib[InodeChecksumHiOff:], 0x5678)
	binary.LittleEndian.PutUint32(ib[0x9C:], 77)
	in, err := DecodeInode(ib)
	if err != nil {
		t.Fatal(err)
	}
	if in.ChecksumLo != 0x1234 || in.ChecksumHi != 0x5678 || in.Projid != 77 {
		t.Fatalf("inode offsets wrong: %+v", in)
	}
	gb := make([]byte, 64)
	binary.LittleEndian.PutUint16(gb[GroupDescCsumOffset:], 0xBEEF)
	binary.LittleEndian.PutUint32(gb[0x28:], 3)
	g, _ := DecodeGroupDesc(gb, 64)
	if g.Checksum != 0xBEEF || g.InodeTable() != 3<<32 {
		t.Fatalf("group desc offsets wrong: %+v", g)
	}
	g32, _ := DecodeGroupDesc(gb, 32)
	if g32.InodeTableHi != 0 {
		t.Fatal("32-byte descriptor read high half")
	}
}

func TestFeatureNames(t *testing.T) {
	f := IncompatFiletype | IncompatExtents | IncompatFeature(1<<30)
	got := f.String()
	if got != "filetype extent FEATURE_I30" {
		t.Fatalf("names: %q", got)
	}
	if f.Unknown() != 1<<30 {
		t.Fatalf("unknown: %#x", f.Unknown())
	}
	for bit := uint32(1); bit != 0; bit <<= 1 {
		_, named := incompatNames[bit]
		if named != (IncompatKnown&IncompatFeature(bit) != 0) {
			t.Errorf("incompat bit %#x: named %v, known mask disagrees", bit, named)
		}
		_, named = roCompatNames[bit]
		if named != (ROCompatKnown&ROCompatFeature(bit) != 0) {
			t.Errorf("ro_compat bit %#x: named %v, known mask disagrees", bit, named)
		}
		_, named = compatNames[bit]
		if named != (CompatKnown&CompatFeature(bit) != 0) {
			t.Errorf("compat bit %#x: named %v, known mask disagrees", bit, named)
		}
	}
}

func TestRecLength(t *testing.T) {
	d := Dirent{RecLen: MaxRecLen}
	if d.RecLength(65536) != 65536 || d.RecLength(4096) != MaxRecLen {
		t.Fatal("rec_len 65535")
	}
	d.RecLen = 0
	if d.RecLength(65536) != 65536 || d.RecLength(4096) != 0 {
		t.Fatal("rec_len 0")
	}
}

func TestDecodeTime(t *testing.T) {
	s, ns := DecodeTime(0xFFFFFFFF, 1|(500<<2))
	if s != -1+1<<32 || ns != 500 {
		t.Fatalf("got %d %d", s, ns)
	}
}
