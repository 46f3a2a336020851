package vdi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/internal/testtool"
)

type memReader []byte

func (m memReader) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m).ReadAt(p, off)
}

// TestReadMatchesQemu: dynamic and fixed (static) VDIs read byte for
// byte as qemu-img convert -O raw reads them.
func TestReadMatchesQemu(t *testing.T) {
	for _, opt := range []string{"static=off", "static=on"} {
		t.Run(opt, func(t *testing.T) {
			dir := t.TempDir()
			src := testtool.OddRaw(t, dir, 5<<20+512, 17)
			p := filepath.Join(dir, "d.vdi")
			testtool.Convert(t, src, p, "vdi", opt)
			want, size := testtool.QemuRawSHA256(t, p, "vdi")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Open(memReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if d.Size() != size {
				t.Fatalf("size %d, qemu-img says %d", d.Size(), size)
			}
			for _, chunk := range []int{0, 4093} {
				if got := testtool.ReaderSHA256(t, d, d.Size(), chunk); got != want {
					t.Fatalf("chunk %d: sha256 %s, qemu-img convert gives %s", chunk, got, want)
				}
			}
		})
	}
}

// TestBadBlockMapRefused: a block map entry past the blocks the file
// holds is refused as corrupt when read, naming the entry.
func TestBadBlockMapRefused(t *testing.T) {
	dir := t.TempDir()
	src := testtool.OddRaw(t, dir, 2<<20, 2)
	p := filepath.Join(dir, "d.vdi")
	testtool.Convert(t, src, p, "vdi")
	b, _ := os.ReadFile(p)
	h := DecodeHeader(b[HeaderOffset:])
	binary.LittleEndian.PutUint32(b[h.BlocksOffset:], 0x7fffffff)
	d, err := Open(memReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(make([]byte, 512), 0); !errors.Is(err, diskerr.ErrCorrupt) {
		t.Fatalf("read through a bad entry: %v, want ErrCorrupt", err)
	}
}

// FuzzOpen: no input panics, loops or allocates beyond its bounds.
func FuzzOpen(f *testing.F) {
	for _, b := range testtool.FuzzSeeds(f, 256<<10, "vdi", []string{"static=off"}) {
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
