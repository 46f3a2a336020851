package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
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

// TestReadMatchesQemu: every byte read equals qemu-img convert -O raw of
// the same file, for fixed and dynamic VHDX (1 MiB blocks, so data spans
// several) with data at odd offsets.
func TestReadMatchesQemu(t *testing.T) {
	for _, opts := range [][]string{{"subformat=dynamic"}, {"subformat=fixed"}, {"subformat=dynamic", "block_size=1048576"}} {
		t.Run(opts[len(opts)-1], func(t *testing.T) {
			dir := t.TempDir()
			src := testtool.OddRaw(t, dir, 5<<20+4096, 7)
			p := filepath.Join(dir, "d.vhdx")
			testtool.Convert(t, src, p, "vhdx", opts...)
			want, size := testtool.QemuRawSHA256(t, p, "vhdx")
			d := openFile(t, p)
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

func openFile(t testing.TB, p string) *Disk {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(memReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func small(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	src := testtool.OddRaw(t, dir, 1<<20, 1)
	p := filepath.Join(dir, "d.vhdx")
	testtool.Convert(t, src, p, "vhdx")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setHeader rewrites both headers through f and fixes their checksums.
func setHeader(b []byte, f func(h []byte)) {
	for _, off := range []int{HeaderOffset1, HeaderOffset2} {
		h := b[off : off+HeaderSize]
		f(h)
		binary.LittleEndian.PutUint32(h[4:], Checksum(h))
	}
}

// TestDirtyLogRefused: a header naming a log (the file was not closed
// cleanly) is refused as unsupported: the log is not replayed.
func TestDirtyLogRefused(t *testing.T) {
	b := small(t)
	setHeader(b, func(h []byte) { h[0x30] = 1 })
	_, err := Open(memReader(b), int64(len(b)))
	if !errors.Is(err, diskerr.ErrUnsupported) {
		t.Fatalf("err %v, want ErrUnsupported", err)
	}
}

// TestChecksumsChecked: damaged headers and region tables are refused as
// corrupt; one damaged copy is survived through the other.
func TestChecksumsChecked(t *testing.T) {
	b := small(t)
	c := append([]byte(nil), b...)
	c[HeaderOffset1+0x50] ^= 1
	c[HeaderOffset2+0x50] ^= 1
	if _, err := Open(memReader(c), int64(len(c))); !errors.Is(err, diskerr.ErrCorrupt) {
		t.Fatalf("both headers damaged: err %v, want ErrCorrupt", err)
	}
	c = append([]byte(nil), b...)
	c[RegionOffset1+0x20] ^= 1
	c[RegionOffset2+0x20] ^= 1
	if _, err := Open(memReader(c), int64(len(c))); !errors.Is(err, diskerr.ErrCorrupt) {
		t.Fatalf("both region tables damaged: err %v, want ErrCorrupt", err)
	}
	c = append([]byte(nil), b...)
	c[RegionOffset1+0x20] ^= 1
	c[HeaderOffset1+0x50] ^= 1
	if _, err := Open(memReader(c), int64(len(c))); err != nil {
		t.Fatalf("first copies damaged, second good: %v", err)
	}
}
