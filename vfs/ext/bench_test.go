package ext

import (
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// byteCounter counts the calls and bytes read through it.
type byteCounter struct {
	r     io.ReaderAt
	calls atomic.Int64
	bytes atomic.Int64
}

func (c *byteCounter) ReadAt(p []byte, off int64) (int, error) {
	c.calls.Add(1)
	c.bytes.Add(int64(len(p)))
	return c.r.ReadAt(p, off)
}

// sizedImage builds a sparse image of the given size holding /etc/passwd.
func sizedImage(t testing.TB, size string) (string, []byte) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n")
	os.WriteFile(filepath.Join(src, "etc", "passwd"), passwd, 0o644)
	img := filepath.Join(t.TempDir(), "fs.img")
	runMkfs(t, "-q", "-F", "-t", "ext4", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-d", src, img, size)
	return img, passwd
}

func runMkfs(t testing.TB, args ...string) {
	t.Helper()
	mkfsTool(t, args...)
}

// openReadCost opens img and reads /etc/passwd, returning the reads made.
func openReadCost(t testing.TB, img string, want []byte) (calls, bytes int64) {
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	c := &byteCounter{r: fh}
	f, err := Open(c, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.ReadFile("/etc/passwd")
	if err != nil || string(got) != string(want) {
		t.Fatalf("read: %q %v", got, err)
	}
	return c.calls.Load(), c.bytes.Load()
}

// TestCostIndependentOfSize: opening a 1 TiB filesystem and reading a file
// costs what it does on a 1 GiB one (promise 4).
func TestCostIndependentOfSize(t *testing.T) {
	small, pw := sizedImage(t, "1G")
	big, _ := sizedImage(t, "1T")
	sc, sb := openReadCost(t, small, pw)
	bc, bb := openReadCost(t, big, pw)
	t.Logf("1 GiB: %d reads, %d bytes; 1 TiB: %d reads, %d bytes", sc, sb, bc, bb)
	if bc > sc+2 || bb > 64<<10 || float64(bb) > 1.5*float64(sb) {
		t.Fatalf("1 TiB costs %d reads/%d bytes against %d/%d for 1 GiB", bc, bb, sc, sb)
	}
}

func BenchmarkOpenReadPasswd(b *testing.B) {
	for _, size := range []string{"1G", "1T"} {
		b.Run(size, func(b *testing.B) {
			img, pw := sizedImage(b, size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				openReadCost(b, img, pw)
			}
		})
	}
}
