package qcow2

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// syncCounter is a memFile that counts syncs.
type syncCounter struct {
	memFile
	syncs int
}

func (s *syncCounter) Sync() error { s.syncs++; return nil }

// TestUnorderedSyncsOnceAndReadsBack: an Unordered image skips the ordering
// syncs of a write session (the ordered one makes several) but syncs at the
// end of Flush, and what it wrote reads back the same from a fresh open.
func TestUnorderedSyncsOnceAndReadsBack(t *testing.T) {
	seed, err := os.ReadFile("testdata/empty512.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	syncs := map[bool]int{}
	var images [2][]byte
	for i, unordered := range []bool{false, true} {
		f := &syncCounter{memFile: memFile{b: append([]byte(nil), seed...)}}
		img, err := Open(f, int64(len(f.b)), Options{Unordered: unordered})
		if err != nil {
			t.Fatal(err)
		}
		for j := int64(0); j < 8; j++ {
			data := bytes.Repeat([]byte(fmt.Sprint(j)), 700)
			off := j * img.Size() / 9
			if _, err := img.WriteAt(data, off); err != nil {
				t.Fatalf("unordered=%v write %d: %v", unordered, j, err)
			}
		}
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
		syncs[unordered] = f.syncs
		re, err := Open(&memFile{b: f.b}, int64(len(f.b)), Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		images[i] = make([]byte, re.Size())
		if _, err := re.ReadAt(images[i], 0); err != nil {
			t.Fatal(err)
		}
	}
	if syncs[true] != 1 || syncs[false] <= 1 {
		t.Errorf("syncs: ordered %d (want > 1), unordered %d (want 1)", syncs[false], syncs[true])
	}
	if off := 3 * int64(len(images[1])) / 9; !bytes.Equal(images[1][off:off+700], bytes.Repeat([]byte("3"), 700)) {
		t.Error("the unordered image lost a write")
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Error("the unordered image reads back differently from the ordered one")
	}
}
