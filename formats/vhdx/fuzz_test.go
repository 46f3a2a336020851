package vhdx

import (
	"io"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// FuzzOpen: no input panics, loops or allocates beyond its bounds, and
// every read stays inside the file.
func FuzzOpen(f *testing.F) {
	for _, b := range testtool.FuzzSeeds(f, 256<<10, "vhdx", []string{"subformat=dynamic", "block_size=1048576"}) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(memReader(b), int64(len(b)))
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
