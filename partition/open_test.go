package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// mbrDisk builds an in-memory disk whose MBR has the given (start, size)
// entries of type 0x83.
func mbrDisk(size int64, entries ...[2]uint32) []byte {
	d := make([]byte, size)
	for i, e := range entries {
		off := 0x1BE + 16*i
		d[off+4] = 0x83
		binary.LittleEndian.PutUint32(d[off+8:], e[0])
		binary.LittleEndian.PutUint32(d[off+12:], e[1])
	}
	d[510], d[511] = 0x55, 0xAA
	return d
}

func TestOpenRefusesOverlaps(t *testing.T) {
	d := mbrDisk(1<<20, [2]uint32{0, 100}, [2]uint32{200, 100}, [2]uint32{250, 100}, [2]uint32{1000, 100})
	tab, err := Read(bytes.NewReader(d), int64(len(d)))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3} {
		if _, err := tab.Open(&memDisk{b: d}, n); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open(%d) = %v, want ErrCorrupt (overlaps the MBR or another partition)", n, err)
		}
	}
	if _, err := tab.Open(&memDisk{b: d}, 4); err != nil {
		t.Errorf("Open(4): %v", err)
	}
	if len(tab.Warnings) != 1 {
		t.Errorf("warnings %q, want one about partitions 2 and 3", tab.Warnings)
	}
}

// TestOpenRefusesLogicalOverEBR: a logical partition grown over the next
// EBR would let a filesystem write destroy the chain.
func TestOpenRefusesLogicalOverEBR(t *testing.T) {
	img, _, _, ebrs := logicalImage(t)
	f := openFile(t, img)
	e := make([]byte, 16)
	if _, err := f.ReadAt(e, ebrs[0]*512+0x1BE); err != nil {
		t.Fatal(err)
	}
	rel := binary.LittleEndian.Uint32(e[8:])
	binary.LittleEndian.PutUint32(e[12:], uint32(ebrs[1]-ebrs[0])-rel+1)
	if _, err := f.WriteAt(e, ebrs[0]*512+0x1BE); err != nil {
		t.Fatal(err)
	}
	tab := mustRead(t, img, Options{})
	var pe *Error
	if _, err := tab.Open(f, 5); !errors.Is(err, ErrCorrupt) || !errors.As(err, &pe) {
		t.Fatalf("Open(5) = %v, want ErrCorrupt", err)
	}
	if _, err := tab.Open(f, 6); err != nil {
		t.Errorf("Open(6): %v", err)
	}
}

// TestOpenRefusesGPTMetadata: a GPT entry over the primary entry array.
func TestOpenRefusesGPTMetadata(t *testing.T) {
	img := newImage(t, 4<<20)
	parts := []testPart{
		{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "11111111-2222-4333-8444-555555555555", 2, 100, "", 0},
		{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "21111111-2222-4333-8444-555555555555", 2048, 4095, "", 0},
		{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "31111111-2222-4333-8444-555555555555", 8000, 8191, "", 0},
	}
	buildGPT(t, img, 512, 4<<20, parts)
	tab := mustRead(t, img, Options{})
	f := openFile(t, img)
	for _, n := range []int{1, 3} {
		if _, err := tab.Open(f, n); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open(%d) = %v, want ErrCorrupt", n, err)
		}
	}
	if _, err := tab.Open(f, 2); err != nil {
		t.Errorf("Open(2): %v", err)
	}
	if len(tab.Warnings) != 2 {
		t.Errorf("warnings %q, want two entries outside the usable LBAs", tab.Warnings)
	}
}
