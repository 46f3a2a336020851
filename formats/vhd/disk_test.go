package vhd

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/internal/testtool"
)

// TestReadMatchesQemu: every byte read equals qemu-img convert -O raw of
// the same file, for fixed and dynamic VHDs with data at odd offsets.
func TestReadMatchesQemu(t *testing.T) {
	for _, sub := range []string{"fixed", "dynamic"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			src := testtool.OddRaw(t, dir, 5<<20+3*512, 7)
			p := filepath.Join(dir, "d.vhd")
			testtool.Convert(t, src, p, "vpc", "subformat="+sub)
			want, size := testtool.QemuRawSHA256(t, p, "vpc")
			d := openFile(t, p)
			if d.Size() != size {
				t.Fatalf("size %d, qemu-img says %d", d.Size(), size)
			}
			if d.Type().String() != sub {
				t.Fatalf("type %s, want %s", d.Type(), sub)
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
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	d, err := Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCorruptChecksumRefused: a footer and header whose checksums do not
// match are refused as corrupt.
func TestCorruptChecksumRefused(t *testing.T) {
	dir := t.TempDir()
	src := testtool.OddRaw(t, dir, 1<<20, 1)
	p := filepath.Join(dir, "d.vhd")
	testtool.Convert(t, src, p, "vpc", "subformat=dynamic")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// the dynamic header sits at 512: flip its block size
	c := append([]byte(nil), b...)
	c[512+0x21] ^= 1
	if _, err := Open(memReader(c), int64(len(c))); !errors.Is(err, diskerr.ErrCorrupt) {
		t.Fatalf("damaged dynamic header: err %v, want ErrCorrupt", err)
	}
	// both footers damaged
	c = append([]byte(nil), b...)
	c[len(c)-512+0x30] ^= 1
	c[0x30] ^= 1
	if _, err := Open(memReader(c), int64(len(c))); !errors.Is(err, diskerr.ErrCorrupt) {
		t.Fatalf("damaged footers: err %v, want ErrCorrupt", err)
	}
	// only the end footer damaged: the copy at 0 serves
	c = append([]byte(nil), b...)
	c[len(c)-512+0x30] ^= 1
	if _, err := Open(memReader(c), int64(len(c))); err != nil {
		t.Fatalf("end footer damaged, head copy good: %v", err)
	}
}
