package xfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestHundredThousandEntries: a 100,000-entry directory (node form, its
// data fork a bmap btree) lists completely and every name is found through
// the hash lookup; cost follows the work: one lookup reads a bounded
// number of blocks.
func TestHundredThousandEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds a 100,000-entry directory (run without -short)")
	}
	src := filepath.Join(t.TempDir(), "src")
	big := filepath.Join(src, "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 100000
	for i := 0; i < n; i++ {
		fh, err := os.Create(filepath.Join(big, fmt.Sprintf("name-%06d", i)))
		if err != nil {
			t.Fatal(err)
		}
		fh.Close()
	}
	img := filepath.Join(t.TempDir(), "big.img")
	mkfsTree(t, img, src, 2<<30)
	f := openImage(t, img, nil)
	if got := dirShape(t, f, "/big"); got != "node/btree" {
		t.Errorf("/big is %s, want node/btree", got)
	}
	ents, err := f.ReadDir("/big")
	if err != nil || len(ents) != n {
		t.Fatalf("ReadDir: %d entries, %v", len(ents), err)
	}
	for i, e := range ents {
		if want := fmt.Sprintf("name-%06d", i); e.Name != want {
			t.Fatalf("entry %d is %q, want %q", i, e.Name, want)
		}
	}
	for i := 0; i < n; i += 7 {
		p := fmt.Sprintf("/big/name-%06d", i)
		if ok, err := f.HasFile(p); !ok || err != nil {
			t.Fatalf("HasFile(%s) = %v, %v", p, ok, err)
		}
	}
	if ok, err := f.HasFile("/big/name-100000"); ok || err != nil {
		t.Fatalf("HasFile of a missing name = %v, %v", ok, err)
	}
	// One cold lookup: a bounded number of reads, whatever the size.
	fh, _ := os.Open(img)
	defer fh.Close()
	st, _ := fh.Stat()
	cr := &countingReader{f: fh}
	cold, err := Open(cr, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := cr.reads.Load()
	if ok, err := cold.HasFile("/big/name-054321"); !ok || err != nil {
		t.Fatalf("cold HasFile = %v, %v", ok, err)
	}
	if reads := cr.reads.Load() - before; reads > 40 {
		t.Errorf("one lookup in a 100,000-entry directory took %d reads", reads)
	} else {
		t.Logf("one cold lookup: %d reads", reads)
	}
}
