package partition

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// memDisk is a writable in-memory disk.
type memDisk struct{ b []byte }

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("memDisk: write past end")
	}
	return copy(m.b[off:], p), nil
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func TestSectionWritesStayInside(t *testing.T) {
	disk := &memDisk{b: pattern(4096)}
	orig := bytes.Clone(disk.b)
	s := NewSection(disk, 1000, 1000)
	refused := []struct {
		off int64
		n   int
	}{
		{-1, 1}, {-1000, 10}, {999, 2}, {1000, 1}, {0, 1001}, {1 << 62, 1}, {-(1 << 62), 1}, {500, 501},
	}
	for _, r := range refused {
		n, err := s.WriteAt(make([]byte, r.n), r.off)
		if n != 0 || !errors.Is(err, ErrOutOfRange) {
			t.Errorf("WriteAt(%d bytes at %d) = %d, %v; want 0, ErrOutOfRange", r.n, r.off, n, err)
		}
	}
	if !bytes.Equal(disk.b, orig) {
		t.Fatal("a refused write changed the disk")
	}
	for _, ok := range []struct {
		off int64
		n   int
	}{{0, 1000}, {999, 1}, {1000, 0}, {10, 20}} {
		if n, err := s.WriteAt(bytes.Repeat([]byte{0xAA}, ok.n), ok.off); n != ok.n || err != nil {
			t.Errorf("WriteAt(%d bytes at %d) = %d, %v", ok.n, ok.off, n, err)
		}
	}
	if !bytes.Equal(disk.b[:1000], orig[:1000]) || !bytes.Equal(disk.b[2000:], orig[2000:]) {
		t.Error("writes inside the section changed bytes outside it")
	}
	if !bytes.Equal(disk.b[1000:2000], bytes.Repeat([]byte{0xAA}, 1000)) {
		t.Error("writes inside the section did not land")
	}
}

func TestSectionReads(t *testing.T) {
	disk := &memDisk{b: pattern(4096)}
	s := NewSection(disk, 100, 200)
	if s.Size() != 200 || s.Start() != 100 {
		t.Fatalf("size %d start %d", s.Size(), s.Start())
	}
	b := make([]byte, 50)
	if n, err := s.ReadAt(b, 180); n != 20 || err != io.EOF || !bytes.Equal(b[:20], disk.b[280:300]) {
		t.Errorf("read across the end = %d, %v", n, err)
	}
	if n, err := s.ReadAt(b, 200); n != 0 || err != io.EOF {
		t.Errorf("read at the end = %d, %v", n, err)
	}
	if _, err := s.ReadAt(b, -1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("read before the start: %v", err)
	}
	if n, err := s.ReadAt(b, 0); n != 50 || err != nil || !bytes.Equal(b, disk.b[100:150]) {
		t.Errorf("read = %d, %v", n, err)
	}
	got, err := io.ReadAll(io.NewSectionReader(s, 0, 1<<20))
	if err != nil || !bytes.Equal(got, disk.b[100:300]) {
		t.Errorf("ReadAll through the section: %d bytes, %v", len(got), err)
	}
}

func TestSectionReadOnlyAndDegenerate(t *testing.T) {
	ro := NewSection(bytes.NewReader(pattern(100)), 0, 100)
	if _, err := ro.WriteAt([]byte{1}, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write to a read-only section: %v", err)
	}
	disk := &memDisk{b: pattern(100)}
	for _, s := range []*Section{NewSection(disk, -5, 10), NewSection(disk, 5, -10), NewSection(disk, 1<<62, 1<<62)} {
		if s.Size() != 0 {
			t.Errorf("degenerate section has size %d", s.Size())
		}
		if _, err := s.WriteAt([]byte{1}, 0); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("write to an empty section: %v", err)
		}
	}
}
