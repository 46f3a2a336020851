package layout

import (
	"bytes"
	"testing"
)

func TestEncodeRecLenRoundTrip(t *testing.T) {
	for _, c := range []struct{ n, bs int }{
		{12, 1024}, {1012, 1024}, {4084, 4096}, {65524, 65536}, {65536, 65536}, {12, 65536},
	} {
		d := Dirent{RecLen: EncodeRecLen(c.n)}
		if got := d.RecLength(c.bs); got != c.n {
			t.Errorf("rec_len %d in a %d-byte block: encoded %#x decodes as %d", c.n, c.bs, d.RecLen, got)
		}
	}
}

func TestPutDirentRoundTrip(t *testing.T) {
	for _, ft := range []bool{true, false} {
		b := make([]byte, 32)
		PutDirent(b, 77, 24, []byte("hello"), FTRegular, ft)
		d, _ := DecodeDirent(b)
		if d.Inode != 77 || d.RecLength(4096) != 24 || d.NameLength(ft) != 5 {
			t.Errorf("filetype=%v: decoded %+v", ft, d)
		}
		if ft && d.FileType != FTRegular || !ft && d.FileType != 0 {
			t.Errorf("filetype=%v: file type byte %d", ft, d.FileType)
		}
		if !bytes.Equal(b[DirentHeaderSize:DirentHeaderSize+5], []byte("hello")) {
			t.Errorf("name %q", b[DirentHeaderSize:DirentHeaderSize+5])
		}
	}
}

func TestPutDirentTail(t *testing.T) {
	b := bytes.Repeat([]byte{0xFF}, 1024)
	PutDirentTail(b, 0xDEADBEEF)
	tl, _ := DecodeDirentTail(b)
	if !tl.IsTail() || tl.Checksum != 0xDEADBEEF {
		t.Errorf("tail %+v", tl)
	}
}

func TestPutDxRoundTrip(t *testing.T) {
	b := make([]byte, 1024)
	PutDxRootInfo(b, DxRootInfo{HashVersion: HashTea, InfoLength: DxRootInfoSize, IndirectLevels: 1})
	PutDxCountLimit(b, DxRootEntries, DxCountLimit{Limit: 123, Count: 2})
	PutDxEntry(b, DxRootEntries, 0, DxEntry{Hash: 0xFFFF, Block: 1})
	PutDxEntry(b, DxRootEntries, 1, DxEntry{Hash: 0x1000, Block: 9})
	PutDxTail(b, 1016, DxTail{Checksum: 42})
	r, _ := DecodeDxRootInfo(b)
	cl, _ := DecodeDxCountLimit(b, DxRootEntries)
	e0, _ := DecodeDxEntry(b, DxRootEntries, 0)
	e1, _ := DecodeDxEntry(b, DxRootEntries, 1)
	tl, _ := DecodeDxTail(b, 1016)
	switch {
	case r.HashVersion != HashTea || r.InfoLength != 8 || r.IndirectLevels != 1:
		t.Errorf("root info %+v", r)
	case cl.Limit != 123 || cl.Count != 2:
		t.Errorf("count/limit %+v (entry 0 must not overwrite it)", cl)
	case e0.Block != 1 || e1.Hash != 0x1000 || e1.Block != 9:
		t.Errorf("entries %+v %+v", e0, e1)
	case tl.Checksum != 42:
		t.Errorf("tail %+v", tl)
	}
}
