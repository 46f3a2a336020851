package vmdk

import (
	"bytes"
	"io"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

type memReader []byte

func (m memReader) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m).ReadAt(p, off)
}

// FuzzOpen: no input panics, loops or allocates beyond its bounds; an
// opened disk reads (or fails cleanly) everywhere.
func FuzzOpen(f *testing.F) {
	for _, b := range testtool.FuzzSeeds(f, 256<<10, "vmdk", []string{"subformat=monolithicSparse"}, []string{"subformat=streamOptimized"}) {
		f.Add(b)
	}
	f.Add([]byte("# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 4 ZERO\nRW 2 FLAT \"x-flat.vmdk\" 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(memReader(b), int64(len(b)), func(string) (io.ReaderAt, int64, error) {
			return memReader(b), int64(len(b)), nil
		})
		if err != nil {
			return
		}
		buf := make([]byte, 64<<10+3)
		for off := int64(0); off < d.Size() && off < 4<<20; off += int64(len(buf)) {
			if _, err := d.ReadAt(buf, off); err != nil && err != io.EOF {
				return
			}
		}
	})
}

// FuzzParseDescriptor: the text parser never panics and keeps its bounds.
func FuzzParseDescriptor(f *testing.F) {
	f.Add([]byte("# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentSparse\"\nRW 4192256 SPARSE \"d-s001.vmdk\"\nRW 8 FLAT \"a b.vmdk\" 17\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b, 0)
		if err != nil {
			return
		}
		if len(d.Extents) > MaxExtents {
			t.Fatalf("%d extents", len(d.Extents))
		}
		for _, e := range d.Extents {
			if e.Type != ExtentZero && CheckExtentName(e.File) != nil {
				t.Fatalf("accepted extent name %q", e.File)
			}
		}
	})
}
