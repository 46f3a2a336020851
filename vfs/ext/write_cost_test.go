package ext

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// countingFile counts the bytes read and written through it.
type countingFile struct {
	*os.File
	read, written, reads, writes atomic.Int64
}

func (c *countingFile) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	c.read.Add(int64(len(p)))
	return c.File.ReadAt(p, off)
}

func (c *countingFile) WriteAt(p []byte, off int64) (int, error) {
	c.writes.Add(1)
	c.written.Add(int64(len(p)))
	return c.File.WriteAt(p, off)
}

// TestWriteCostFollowsWork: the same small injection costs the same I/O
// on a 1 GiB and a 1 TiB filesystem (sparse images).
func TestWriteCostFollowsWork(t *testing.T) {
	cost := func(size string) (int64, int64) {
		img := filepath.Join(t.TempDir(), "big.img")
		testtool.Run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-E", "root_owner=0:0", img, size)
		fh, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		st, _ := fh.Stat()
		c := &countingFile{File: fh}
		f, err := Open(c, st.Size(), &Options{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		w := wfs{f}
		if err := w.MakePath("/root/.ssh"); err != nil {
			t.Fatal(err)
		}
		if err := w.AppendFile("/root/.ssh/authorized_keys", []byte("ssh-ed25519 AAAA key\n")); err != nil {
			t.Fatal(err)
		}
		if err := w.ReplaceFile("/etc-meta.js", make([]byte, 10000)); err != nil {
			t.Fatal(err)
		}
		fsck(t, img)
		t.Logf("%s: %d reads (%d bytes), %d writes (%d bytes)", size, c.reads.Load(), c.read.Load(), c.writes.Load(), c.written.Load())
		return c.read.Load(), c.written.Load()
	}
	r1, w1 := cost("1G")
	r2, w2 := cost("1T")
	if r2 > r1*3/2+4096 || w2 > w1*3/2+4096 {
		t.Errorf("1 TiB costs %d bytes read, %d written; 1 GiB %d, %d", r2, w2, r1, w1)
	}
}
