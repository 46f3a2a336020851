package formats

import (
	"os"
	"path/filepath"
	"testing"
)

// scattered returns n offsets spread over a disk of size bytes.
func scattered(size int64, n int, salt int64) []int64 {
	offs := make([]int64, n)
	for i := range offs {
		offs[i] = (size/int64(n)*int64(i) + salt*1_000_003*4096) % (size - 8192) &^ 511
	}
	return offs
}

func bigImage(b *testing.B, format string) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "big."+format)
	qemuImg(b, "create", "-q", "-f", format, p, "1T")
	return p
}

// BenchmarkOpen1TiB: open and close an empty 1 TiB qcow2 (header, L1 table
// of 2048 entries, locks).
func BenchmarkOpen1TiB(b *testing.B) {
	for _, format := range []string{"qcow2", "raw"} {
		b.Run(format, func(b *testing.B) {
			p := bigImage(b, format)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				d, err := Open(p, Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				d.Close()
			}
		})
	}
}

// BenchmarkScatteredIO1TiB: per op, 16 writes of 4 KiB at fresh scattered
// offsets (each allocates a cluster and usually an L2 table) and 16 reads
// of 4 KiB, without the final fsync.
func BenchmarkScatteredIO1TiB(b *testing.B) {
	for _, format := range []string{"qcow2", "raw"} {
		b.Run(format, func(b *testing.B) {
			p := bigImage(b, format)
			d, err := Open(p, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			buf := make([]byte, 4096)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for _, off := range scattered(d.Size(), 16, int64(i)) {
					if _, err := d.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
					if _, err := d.ReadAt(buf, off+4096); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			fi, _ := os.Stat(p)
			b.ReportMetric(float64(fi.Size())/float64(b.N), "filebytes/op")
		})
	}
}

// BenchmarkSession1TiB: per op, a whole session as an injection does it:
// open for writing, 16 scattered 4 KiB writes at fresh offsets and 16
// reads, then Close (pending metadata written with its syncs).
func BenchmarkSession1TiB(b *testing.B) {
	for _, format := range []string{"qcow2", "raw"} {
		b.Run(format, func(b *testing.B) {
			p := bigImage(b, format)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				d, err := Open(p, Options{})
				if err != nil {
					b.Fatal(err)
				}
				for _, off := range scattered(d.Size(), 16, int64(i)) {
					if _, err := d.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
					if _, err := d.ReadAt(buf, off+4096); err != nil {
						b.Fatal(err)
					}
				}
				if err := d.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNovaLike1TiB: per op, a session shaped like an injection into a
// fresh filesystem at the start of a 1 TiB disk: 12 writes of 4 KiB within
// its first 64 MiB (superblock, bitmaps, inodes, a few files), 24 reads,
// Close.
func BenchmarkNovaLike1TiB(b *testing.B) {
	for _, format := range []string{"qcow2", "raw"} {
		b.Run(format, func(b *testing.B) {
			p := bigImage(b, format)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				d, err := Open(p, Options{})
				if err != nil {
					b.Fatal(err)
				}
				for j := int64(0); j < 12; j++ {
					off := (j*5_300_007 + int64(i)*65536) % (64 << 20) &^ 4095
					if _, err := d.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
					if _, err := d.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
					if _, err := d.ReadAt(buf, off+(32<<20)); err != nil {
						b.Fatal(err)
					}
				}
				if err := d.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
