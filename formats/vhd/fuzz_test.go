package vhd

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

// FuzzOpen: no input panics, loops or allocates beyond its bounds, and
// every read stays inside the file.
func FuzzOpen(f *testing.F) {
	for _, b := range testtool.FuzzSeeds(f, 256<<10, "vpc", []string{"subformat=fixed"}, []string{"subformat=dynamic"}) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(memReader(b), int64(len(b)))
		if err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for off := int64(0); off < d.Size() && off < 4<<20; off += int64(len(buf)) {
			if _, err := d.ReadAt(buf, off); err != nil && err != io.EOF {
				return
			}
		}
	})
}
