package writetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext"
)

// The nova payload injected in process into sparse ext4 images (mkfs.ext4
// -d of the demo guest): one iteration opens the image file, opens the
// engine writable, applies the payload and closes the file. Between
// iterations (timer stopped) the byte ranges the engine wrote are copied
// back from a pristine copy, so every iteration starts from the same image.
func BenchmarkInjectNova1G(b *testing.B)  { benchInjectNova(b, 1<<30) }
func BenchmarkInjectNova20G(b *testing.B) { benchInjectNova(b, 20<<30) }
func BenchmarkInjectNova1T(b *testing.B)  { benchInjectNova(b, 1<<40) }

// benchImages holds one pristine image per size for the whole run (the
// 1 TiB mkfs takes seconds; the benchmark function is called several
// times while b.N is calibrated).
var benchImages struct {
	sync.Mutex
	dir   string
	paths map[int64]string
}

func pristineImage(b *testing.B, size int64) string {
	b.Helper()
	benchImages.Lock()
	defer benchImages.Unlock()
	if p, ok := benchImages.paths[size]; ok {
		return p
	}
	if benchImages.dir == "" {
		d, err := os.MkdirTemp("", "writetest-bench-")
		must(b, err)
		benchImages.dir, benchImages.paths = d, map[int64]string{}
		sharedBenchDir = d
	}
	p := filepath.Join(benchImages.dir, "pristine-"+sizeName(size)+".img")
	f, err := os.Create(p)
	must(b, err)
	must(b, f.Truncate(size))
	must(b, f.Close())
	testtool.Run(b, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-d", sharedGuest(b), p)
	benchImages.paths[size] = p
	return p
}

// sharedBenchDir is removed by TestMain.
var sharedBenchDir string

func sizeName(size int64) string {
	switch {
	case size >= 1<<40:
		return "1T"
	case size >= 20<<30:
		return "20G"
	}
	return "1G"
}

// rangeLog records the byte ranges written through it and counts reads.
type rangeLog struct {
	f             *os.File
	ranges        [][2]int64
	reads, rbytes int64
}

func (r *rangeLog) ReadAt(p []byte, off int64) (int, error) {
	r.reads++
	r.rbytes += int64(len(p))
	return r.f.ReadAt(p, off)
}
func (r *rangeLog) WriteAt(p []byte, off int64) (int, error) {
	r.ranges = append(r.ranges, [2]int64{off, int64(len(p))})
	return r.f.WriteAt(p, off)
}

func benchInjectNova(b *testing.B, size int64) {
	pristine := pristineImage(b, size)
	work := filepath.Join(b.TempDir(), "work.img")
	if out, err := exec.Command("cp", "--sparse=always", pristine, work).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v\n%s", err, out)
	}
	src, err := os.Open(pristine)
	must(b, err)
	defer src.Close()
	data := novaData(b, 4096)
	var written [][2]int64
	var reads, rbytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.OpenFile(work, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		rl := &rangeLog{f: f}
		fsys, err := ext.Open(rl, size, &ext.Options{Writable: true})
		if err != nil {
			b.Fatalf("open: %v", err)
		}
		if _, err := inject.Apply(fsys, data, nil); err != nil {
			b.Fatalf("inject: %v", err)
		}
		f.Close()
		b.StopTimer()
		written, reads, rbytes = rl.ranges, rl.reads, rl.rbytes
		restore(b, src, work, written)
		b.StartTimer()
	}
	b.StopTimer()
	if len(written) > 0 {
		b.ReportMetric(float64(len(written)), "writes/op")
		b.ReportMetric(float64(reads), "reads/op")
		b.ReportMetric(float64(rbytes), "bytes-read/op")
	}
}

// restore copies the written ranges back from the pristine image.
func restore(b *testing.B, src *os.File, work string, ranges [][2]int64) {
	f, err := os.OpenFile(work, os.O_RDWR, 0)
	must(b, err)
	defer f.Close()
	for _, r := range ranges {
		buf := make([]byte, r[1])
		if _, err := src.ReadAt(buf, r[0]); err != nil {
			b.Fatalf("restore: %v", err)
		}
		if _, err := f.WriteAt(buf, r[0]); err != nil {
			b.Fatalf("restore: %v", err)
		}
	}
}
