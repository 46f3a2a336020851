package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/internal/testtool"
)

// bitmapImage is a 4 MiB qcow2 (4 KiB clusters) with guest data at 0 and
// two persistent bitmaps made by qemu: b0 saw a write (its table names a
// data cluster), b1 did not.
type bitmapImage struct {
	path           string
	b              []byte
	ext            int64 // offset of the bitmaps header extension
	dir            int64
	tables         [2]int64
	data0          int64 // b0's data cluster
	l1, l2, rt, rb int64
	guest0         int64 // host cluster of guest cluster 0
}

func newBitmapImage(t *testing.T) bitmapImage {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bm.qcow2")
	testtool.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", p, "4M")
	testtool.Run(t, "qemu-io", "-c", "write -P 0x5a 0 64k", p)
	testtool.Run(t, "qemu-img", "bitmap", "--add", p, "b0")
	testtool.Run(t, "qemu-io", "-c", "write -P 0x11 1M 64k", p)
	testtool.Run(t, "qemu-img", "bitmap", "--add", p, "b1")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	bi := bitmapImage{path: p, b: b}
	for off := int64(be.Uint32(b[0x64:])); ; {
		typ, n := be.Uint32(b[off:]), int64(be.Uint32(b[off+4:]))
		if typ == ExtEnd {
			t.Fatal("setup: no bitmaps extension")
		}
		if typ == ExtBitmaps {
			bi.ext = off
			break
		}
		off += 8 + (n+7)&^7
	}
	if nb := be.Uint32(b[bi.ext+8:]); nb != 2 {
		t.Fatalf("setup: %d bitmaps", nb)
	}
	bi.dir = int64(be.Uint64(b[bi.ext+8+16:]))
	e := bi.dir
	for i := range bi.tables {
		bi.tables[i] = int64(be.Uint64(b[e:]))
		e += (24 + int64(be.Uint32(b[e+20:])) + int64(be.Uint16(b[e+18:])) + 7) &^ 7
	}
	bi.data0 = int64(be.Uint64(b[bi.tables[0]:]) & l2OffsetMask)
	bi.l1 = int64(be.Uint64(b[0x28:]))
	bi.l2 = int64(be.Uint64(b[bi.l1:]) & l1OffsetMask)
	bi.rt = int64(be.Uint64(b[0x30:]))
	bi.rb = int64(be.Uint64(b[bi.rt:]) & rtOffsetMask)
	bi.guest0 = int64(be.Uint64(b[bi.l2:]) & l2OffsetMask)
	if bi.data0 == 0 || bi.tables[1] == 0 || bi.guest0 == 0 {
		t.Fatalf("setup: unexpected layout %+v", bi)
	}
	return bi
}

// writeRefused writes the patched image to disk, opens it, writes one
// guest cluster and requires a refusal (class ErrCorrupt, naming every
// want) with the file byte for byte unchanged.
func writeRefused(t *testing.T, path string, b []byte, want ...string) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := Open(f, int64(len(b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, werr := img.WriteAt(bytes.Repeat([]byte{7}, 4096), 2<<20)
	runtime.ReadMemStats(&after)
	if err := img.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if werr == nil {
		t.Fatal("write succeeded, want a refusal")
	}
	if !errors.Is(werr, diskerr.ErrCorrupt) {
		t.Fatalf("write: %v, want class %v", werr, diskerr.ErrCorrupt)
	}
	for _, w := range want {
		if !strings.Contains(werr.Error(), w) {
			t.Errorf("error %q does not name %q", werr, w)
		}
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
		t.Error("the refused write changed the image")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("the refusal allocated %d bytes (bound 4 MiB)", alloc)
	}
	t.Logf("refused: %v", werr)
}

// TestBitmapDropRefusesLiveMetadata (audit R2): a bitmap table entry (or a
// bitmap table) naming a cluster that is live metadata, guest data,
// another bitmap's cluster or the directory is refused before anything is
// written: dropping the bitmaps would free it.
func TestBitmapDropRefusesLiveMetadata(t *testing.T) {
	bi := newBitmapImage(t)
	be := binary.BigEndian
	entry := func(at, v int64) func([]byte) {
		return func(b []byte) { be.PutUint64(b[at:], uint64(v)) }
	}
	cases := []struct {
		name  string
		patch func([]byte)
		want  []string
	}{
		{"entry-on-l1", entry(bi.tables[0], bi.l1), []string{`bitmap 0 "b0" table entry 0`, "active L1 table"}},
		{"entry-on-l2", entry(bi.tables[0], bi.l2), []string{`bitmap 0 "b0" table entry 0`, "active L2 table"}},
		{"entry-on-refcount-table", entry(bi.tables[0], bi.rt), []string{"table entry 0", "refcount table"}},
		{"entry-on-refcount-block", entry(bi.tables[0], bi.rb), []string{"table entry 0", "refcount block"}},
		{"entry-on-directory", entry(bi.tables[1], bi.dir), []string{`bitmap 1 "b1" table entry 0`, "bitmap directory"}},
		{"entry-on-own-table", entry(bi.tables[1], bi.tables[1]), []string{"table entry 0", `already named by the table of bitmap 1 "b1"`}},
		{"entry-on-guest-data", entry(bi.tables[1], bi.guest0), []string{`bitmap 1 "b1" table entry 0`, "virtual cluster 0"}},
		{"entry-shared", entry(bi.tables[1], bi.data0), []string{`bitmap 1 "b1" table entry 0`, `already named by the bitmap 0 "b0" table entry 0`}},
		{"table-on-refcount-table", entry(bi.dir, bi.rt), []string{`table of bitmap 0 "b0"`, "refcount table"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), bi.b...)
			c.patch(b)
			writeRefused(t, filepath.Join(t.TempDir(), "x.qcow2"), b, c.want...)
		})
	}
}

// TestBitmapDirectoryTotalBound (audit R1): a directory whose entries all
// name one table asks for far more table bytes than the file holds. It is
// refused before any write, naming the directory, in bounded memory
// (without the bound: one table read and its offsets kept per entry).
func TestBitmapDirectoryTotalBound(t *testing.T) {
	bi := newBitmapImage(t)
	be := binary.BigEndian
	b := append([]byte(nil), bi.b...)
	b = append(b, make([]byte, (4096-len(b)%4096)%4096)...)
	table := int64(len(b))
	for i := 0; i < 1024; i++ { // an 8 KiB table, every entry naming b0's data
		b = be.AppendUint64(b, uint64(bi.data0))
	}
	dir := int64(len(b))
	const n = 2000
	for i := 0; i < n; i++ {
		var e [24]byte
		be.PutUint64(e[0:], uint64(table))
		be.PutUint32(e[8:], 1024)
		e[16], e[17] = 1, 12
		b = append(b, e[:]...)
	}
	b = append(b, make([]byte, (4096-len(b)%4096)%4096)...)
	be.PutUint32(b[bi.ext+8:], n)
	be.PutUint64(b[bi.ext+8+8:], n*24)
	be.PutUint64(b[bi.ext+8+16:], uint64(dir))
	writeRefused(t, bi.path, b, "bitmap directory", "more than the")
}
