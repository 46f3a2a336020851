package ext

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// countingReader counts ReadAt calls.
type countingReader struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.n.Add(1)
	return c.r.ReadAt(p, off)
}

func openCounting(t *testing.T, img string) (*FS, *countingReader) {
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	cr := &countingReader{r: fh}
	f, err := Open(cr, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return f, cr
}

// TestHtreeLookup indexes a big directory with e2fsck -fD and checks that
// every name is found through the index, reading only a few blocks.
func TestHtreeLookup(t *testing.T) {
	const n = 2000
	src := srcTree(t, n)
	var multiLevel atomic.Int64 // cases whose index has a level of nodes below the root
	t.Cleanup(func() {
		if multiLevel.Load() == 0 {
			t.Error("no case built an index with interior nodes")
		}
	})
	for _, c := range []struct {
		name string
		args []string
		ssv  []string // debugfs set_super_value commands before indexing
	}{
		{"csum-1k", []string{"-t", "ext4", "-b", "1024"}, nil},
		{"nocsum-4k-unsigned-seed", []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum"},
			[]string{"hash_seed 01020304-0506-0708-090a-0b0c0d0e0f10", "flags 2"}},
		{"ext3-tea", []string{"-t", "ext3", "-b", "1024"}, []string{"def_hash_version tea"}},
		{"legacy-unsigned", []string{"-t", "ext4", "-b", "1024"}, []string{"def_hash_version legacy", "flags 2"}},
		{"halfmd4-signed", []string{"-t", "ext4", "-b", "2048"}, []string{"flags 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, src, 24, c.args...)
			for _, s := range c.ssv {
				testtool.Run(t, "debugfs", "-w", "-R", "ssv "+s, img)
			}
			if out, code := testtool.Output(t, "e2fsck", "-fyD", img); code > 1 {
				t.Fatalf("e2fsck -fD: %d\n%s", code, out)
			}
			f, cr := openCounting(t, img)
			r, dir, err := f.resolve("t", "/many", false)
			if err != nil || !dir.flag(layout.FlagIndex) {
				t.Fatalf("/many not indexed: %v %v", r, err)
			}
			if !f.useHtree(dir) {
				t.Fatal("htree lookups are not wired (dirhash missing)")
			}
			root := readImg(t, img, firstBlock(t, img, "/many")*int64(f.geo.blockSize), 64)
			if root[0x1E] > 0 {
				multiLevel.Add(1)
			}
			for i := 0; i < n; i += 7 {
				name := "/many/" + manyName(i)
				before := cr.n.Load()
				f.cache.drop()
				b, err := f.ReadFile(name)
				if err != nil || string(b) != fmt.Sprint(i) {
					t.Fatalf("%s: %q %v", name, b, err)
				}
				if reads := cr.n.Load() - before; reads > 16 {
					t.Fatalf("%s: %d reads for one lookup", name, reads)
				}
			}
			if ok, err := f.HasFile("/many/entry-99999"); ok || err != nil {
				t.Fatalf("missing name: %v %v", ok, err)
			}
			ents, err := f.ReadDir("/many")
			if err != nil || len(ents) != n {
				t.Fatalf("readdir: %d entries, %v", len(ents), err)
			}
		})
	}
}
