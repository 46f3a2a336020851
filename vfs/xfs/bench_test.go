package xfs

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

var benchPasswd = []byte("root:x:0:0:root:/root:/bin/bash\nbench:x:1000:1000::/home/bench:/bin/sh\n")

// countingReader counts the reads and bytes the engine asks for.
type countingReader struct {
	f            *os.File
	reads, bytes atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	c.bytes.Add(int64(len(p)))
	return c.f.ReadAt(p, off)
}

// benchOpenRead opens a sparse XFS image of the given size (holding a
// tiny tree) and reads /etc/passwd, per iteration; it reports the reads
// and bytes the engine asked of the image.
func benchOpenRead(b *testing.B, size int64) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "passwd"), benchPasswd, 0o644); err != nil {
		b.Fatal(err)
	}
	img := filepath.Join(dir, "bench.img")
	mkfsTree(b, img, src, size, "-K")
	fh, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	cr := &countingReader{f: fh}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := Open(cr, size, nil)
		if err != nil {
			b.Fatal(err)
		}
		got, err := f.ReadFile("/etc/passwd")
		if err != nil || !bytes.Equal(got, benchPasswd) {
			b.Fatalf("ReadFile: %q, %v", got, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cr.reads.Load())/float64(b.N), "reads/op")
	b.ReportMetric(float64(cr.bytes.Load())/float64(b.N), "bytes-read/op")
}

func BenchmarkOpenReadPasswd1GiB(b *testing.B) { benchOpenRead(b, 1<<30) }
func BenchmarkOpenReadPasswd1TiB(b *testing.B) { benchOpenRead(b, 1<<40) }
