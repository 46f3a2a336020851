package testtool

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// OddRaw writes a raw disk of size bytes into dir: mostly holes, with
// random data at odd, unaligned offsets (across grain, block and cluster
// boundaries, and in the last sector), so a converter's mapping errors
// show. It returns the path.
func OddRaw(t testing.TB, dir string, size int64, seed int64) string {
	t.Helper()
	p := filepath.Join(dir, "src.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	offs := []int64{0, 511, 12345, 65535, 1<<20 - 3, 2<<20 + 7, size/2 + 1001, size - 700}
	for _, off := range offs {
		if off < 0 || off >= size {
			continue
		}
		b := make([]byte, min(int64(70000+rng.Intn(9000)), size-off))
		rng.Read(b)
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// Convert runs qemu-img convert -O format [-o opts] src dst.
func Convert(t testing.TB, src, dst, format string, opts ...string) {
	t.Helper()
	args := []string{"convert", "-O", format}
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	Run(t, "qemu-img", append(args, src, dst)...)
}

// QemuRawSHA256 is the sha256 of `qemu-img convert -O raw` of path (read
// as format) and the raw size: the oracle a reader's bytes must equal.
func QemuRawSHA256(t testing.TB, path, format string) (string, int64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "oracle.raw")
	Run(t, "qemu-img", "convert", "-f", format, "-O", "raw", path, out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// ReaderSHA256 hashes the first size bytes of r, read in chunks of
// chunk bytes (an odd chunk exercises unaligned reads; 0 means 1 MiB).
func ReaderSHA256(t testing.TB, r io.ReaderAt, size int64, chunk int) string {
	t.Helper()
	if chunk <= 0 {
		chunk = 1 << 20
	}
	h := sha256.New()
	buf := make([]byte, chunk)
	for off := int64(0); off < size; off += int64(chunk) {
		b := buf[:min(int64(chunk), size-off)]
		if n, err := r.ReadAt(b, off); n != len(b) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", len(b), off, n, err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FuzzSeeds converts a small raw disk (size bytes, data at odd offsets)
// with qemu-img to format under each option set and returns the files'
// bytes, as fuzz seeds made by the reference tool.
func FuzzSeeds(f *testing.F, size int64, format string, optSets ...[]string) [][]byte {
	f.Helper()
	dir := f.TempDir()
	src := OddRaw(f, dir, size, 3)
	var out [][]byte
	for i, opts := range optSets {
		p := filepath.Join(dir, "seed"+string(rune('a'+i)))
		Convert(f, src, p, format, opts...)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
