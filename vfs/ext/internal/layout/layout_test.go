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
		{"MMP", MMP{}, MMPSize},
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

// TestInPlaceOffsets pins the offsets writers patch in place without
// encoding the whole structure: each names the field the struct puts
// there.
func TestInPlaceOffsets(t *testing.T) {
	sb := make([]byte, SuperblockSize)
	binary.LittleEndian.PutUint16(sb[0x38:], Magic)
	binary.LittleEndian.PutUint32(sb[SuperblockIncompatOffset:], 0x1234)
	s, err := DecodeSuperblock(sb)
	if err != nil || s.FeatureIncompat != 0x1234 {
		t.Errorf("SuperblockIncompatOffset: FeatureIncompat %#x, %v", s.FeatureIncompat, err)
	}
	jb := make([]byte, JournalSuperblockSize)
	binary.BigEndian.PutUint32(jb[JournalSequenceOffset:], 77)
	binary.BigEndian.PutUint32(jb[JournalStartOffset:], 5)
	binary.BigEndian.PutUint32(jb[JournalCsumOffset:], 0xABCD)
	j, err := DecodeJournalSuperblock(jb)
	if err != nil || j.Sequence != 77 || j.Start != 5 || j.Checksum != 0xABCD {
		t.Errorf("journal superblock offsets: %+v, %v", j, err)
	}
	mb := make([]byte, MMPSize)
	binary.LittleEndian.PutUint32(mb[4:], MMPSeqFsck)
	copy(mb[MMPNodeOff:], "node")
	copy(mb[MMPDevOff:], "dev")
	binary.LittleEndian.PutUint32(mb[MMPChecksumOff:], 0x5566)
	m, err := DecodeMMP(mb)
	if err != nil || m.Seq != MMPSeqFsck || string(m.NodeName[:4]) != "node" || string(m.BdevName[:3]) != "dev" || m.Checksum != 0x5566 {
		t.Errorf("MMP offsets: seq %#x node %q dev %q sum %#x, %v", m.Seq, m.NodeName[:4], m.BdevName[:3], m.Checksum, err)
	}
	if _, err := DecodeMMP(mb[:MMPSize-1]); err == nil {
		t.Error("a short MMP block decoded")
	}
}

// TestEmptyExtentLeaf: the stand-in for a hole is a valid leaf header
// with no entries and room for one, the bytes e2fsprogs would write.
func TestEmptyExtentLeaf(t *testing.T) {
	b := EmptyExtentLeaf()
	want := []byte{0x0A, 0xF3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if string(b) != string(want) {
		t.Fatalf("% x, want % x", b, want)
	}
	h, err := DecodeExtentHeader(b)
	if err != nil || h.Magic != ExtentMagic || h.Entries != 0 || h.Max != 1 || h.Depth != 0 {
		t.Errorf("header %+v, %v", h, err)
	}
	b[0] = 0
	if EmptyExtentLeaf()[0] != 0x0A {
		t.Error("EmptyExtentLeaf shares its bytes between calls")
	}
}
