package qcow2

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// memFile is an in-memory host file.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		if end > 64<<20 {
			return 0, errors.New("memFile: too large")
		}
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Sync() error { return nil }

// seeds are the small qcow2 images in testdata (made by qemu-img, see
// testdata/README).
func seeds(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.qcow2")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseHeader(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseHeader(b, int64(len(b)))
		if err != nil {
			return
		}
		if m.ClusterSize < 512 || m.ClusterSize > 2<<20 || int64(m.L1Size)*8 > int64(len(b)) {
			t.Fatalf("accepted header with cluster %d L1 %d in a %d-byte file", m.ClusterSize, m.L1Size, len(b))
		}
	})
}

// FuzzImage opens, reads and writes a fuzzed image: L1, L2, refcount
// tables and compressed clusters all come from the input.
func FuzzImage(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		mf := &memFile{b: append([]byte(nil), b...)}
		img, err := Open(mf, int64(len(b)), Options{})
		if err != nil {
			return
		}
		defer img.Close()
		buf := make([]byte, 4096)
		size := img.Size()
		for _, off := range []int64{0, 65536, size / 2, size - 4096} {
			if off >= 0 && off < size {
				img.ReadAt(buf, off)
			}
		}
		for _, off := range []int64{0, 70000, size - 100} {
			if off >= 0 && off+100 <= size {
				img.WriteAt(buf[:100], off)
			}
		}
	})
}

// TestSeedsOpen: every seed is a valid image that reads in full, so the
// fuzzers start from images that reach deep into the tables.
func TestSeedsOpen(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.qcow2")
	if len(paths) < 7 {
		t.Fatalf("only %d seeds", len(paths))
	}
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		img, err := Open(&memFile{b: b}, int64(len(b)), Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		buf := make([]byte, img.Size())
		if _, err := img.ReadAt(buf, 0); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}
