package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// plainLayout names the metadata of testdata/plain.qcow2 (4 KiB clusters,
// one snapshot): offsets read from its header and tables.
type plainLayout struct {
	b                               []byte
	l1, l2, rt, rb, snapTab, snapL1 int64
}

func loadPlain(t *testing.T) plainLayout {
	t.Helper()
	b, err := os.ReadFile("testdata/plain.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	p := plainLayout{b: b}
	p.l1 = int64(be.Uint64(b[0x28:]))
	p.l2 = int64(be.Uint64(b[p.l1:]) & l1OffsetMask)
	p.rt = int64(be.Uint64(b[0x30:]))
	p.rb = int64(be.Uint64(b[p.rt:]) & rtOffsetMask)
	p.snapTab = int64(be.Uint64(b[0x40:]))
	p.snapL1 = int64(be.Uint64(b[p.snapTab:]))
	if p.l2 == 0 || p.rb == 0 || p.snapL1 == 0 || be.Uint32(b[0x3c:]) != 1 {
		t.Fatalf("testdata/plain.qcow2 changed: %+v", p)
	}
	return p
}

// wantRefusedUnchanged opens a copy of image b, runs write on it and
// requires a refusal of class ErrCorrupt whose message holds every want,
// with the file byte for byte unchanged (Close included).
func wantRefusedUnchanged(t *testing.T, b []byte, write func(img *Image) error, want ...string) {
	t.Helper()
	f := &memFile{b: append([]byte(nil), b...)}
	img, err := Open(f, int64(len(f.b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	werr := write(img)
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
	if !bytes.Equal(f.b, b) {
		t.Error("the refused write changed the image")
	}
	t.Logf("refused: %v", werr)
}

// TestWriteOverlapRefusedBeforeFirstWrite (audit R3): an L2 entry mapping a
// guest cluster onto metadata refuses every write of the session before
// its first byte, whichever cluster the write is for, naming the metadata;
// so does an L2 table lying on other metadata. Without the check, guest
// data lands on the table.
func TestWriteOverlapRefusedBeforeFirstWrite(t *testing.T) {
	p := loadPlain(t)
	const bad = 100 // an unallocated guest cluster (virtual offset 400 KiB)
	cases := []struct {
		name   string
		target int64 // host cluster the corrupt entry names
		want   string
	}{
		{"active-l1", p.l1, "active L1 table"},
		{"active-l2", p.l2, "active L2 table"},
		{"refcount-table", p.rt, "refcount table"},
		{"refcount-block", p.rb, "refcount block"},
		{"snapshot-table", p.snapTab, "snapshot table"},
		{"snapshot-l1", p.snapL1, "inactive L1 table"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), p.b...)
			binary.BigEndian.PutUint64(b[p.l2+8*bad:], uint64(c.target)|FlagCopied)
			data := bytes.Repeat([]byte{0xab}, 4096)
			// A write to a healthy cluster is refused too: the session
			// must not start.
			wantRefusedUnchanged(t, b, func(img *Image) error {
				_, err := img.WriteAt(data, 0)
				return err
			}, "virtual cluster 100", c.want)
			// And so is the write through the corrupt mapping itself.
			wantRefusedUnchanged(t, b, func(img *Image) error {
				_, err := img.WriteAt(data, bad*4096)
				return err
			}, c.want)
		})
	}
	// Metadata on metadata: writing one table would destroy the other.
	for _, c := range []struct {
		name   string
		at     int64 // the pointer patched
		target uint64
		want   []string
	}{
		{"l2-table-on-refcount-block", p.l1, uint64(p.rb) | FlagCopied, []string{"active L2 table", "refcount block"}},
		{"l2-table-on-l1", p.l1, uint64(p.l1) | FlagCopied, []string{"active L2 table", "active L1 table"}},
		{"l1-on-refcount-table", 0x28, uint64(p.rt), []string{"active L1 table", "refcount table"}},
		{"refcount-block-on-snapshot-l1", p.rt, uint64(p.snapL1), []string{"refcount block", "inactive L1 table"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), p.b...)
			binary.BigEndian.PutUint64(b[c.at:], c.target)
			wantRefusedUnchanged(t, b, func(img *Image) error {
				_, err := img.WriteAt([]byte("x"), 0)
				return err
			}, c.want...)
		})
	}
}

// TestWriteOverlapBeyondUpfrontBound: when the active L2 tables exceed
// what is read up front, a write elsewhere proceeds, and a write through
// the corrupt mapping is still refused before it lands on the L1 table.
func TestWriteOverlapBeyondUpfrontBound(t *testing.T) {
	p := loadPlain(t)
	defer func(v int64) { maxUpfrontL2 = v }(maxUpfrontL2)
	maxUpfrontL2 = 0
	b := append([]byte(nil), p.b...)
	binary.BigEndian.PutUint64(b[p.l2+8*100:], uint64(p.l1)|FlagCopied)
	wantRefusedUnchanged(t, b, func(img *Image) error {
		_, err := img.WriteAt(make([]byte, 4096), 100*4096)
		return err
	}, "virtual cluster 100", "active L1 table")
	f := &memFile{b: append([]byte(nil), b...)}
	img, err := Open(f, int64(len(f.b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.WriteAt([]byte("healthy"), 0); err != nil {
		t.Fatalf("write to a healthy cluster: %v", err)
	}
	_, err = img.WriteAt(bytes.Repeat([]byte{0xab}, 4096), 100*4096)
	if !errors.Is(err, diskerr.ErrCorrupt) || !strings.Contains(err.Error(), "active L1 table") {
		t.Fatalf("write through the corrupt mapping: %v, want a refusal naming the active L1 table", err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(f.b[p.l1:p.l1+4096], []byte{0xab, 0xab}) {
		t.Error("guest data landed on the L1 table")
	}
}

// TestCheckWriteBeyondUpfrontBound: past the up-front L2 scan's bound,
// CheckWrite still judges a batch of writes before any is made: the write
// through the corrupt mapping is refused, the healthy one passes, and the
// host file is byte for byte unchanged (not even the autoclear bits).
func TestCheckWriteBeyondUpfrontBound(t *testing.T) {
	p := loadPlain(t)
	defer func(v int64) { maxUpfrontL2 = v }(maxUpfrontL2)
	maxUpfrontL2 = 0
	b := append([]byte(nil), p.b...)
	binary.BigEndian.PutUint64(b[p.l2+8*100:], uint64(p.l1)|FlagCopied)
	f := &memFile{b: append([]byte(nil), b...)}
	img, err := Open(f, int64(len(f.b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := img.CheckWrite(0, 8192); err != nil {
		t.Fatalf("CheckWrite of healthy clusters: %v", err)
	}
	err = img.CheckWrite(99*4096, 3*4096)
	if !errors.Is(err, diskerr.ErrCorrupt) || !strings.Contains(err.Error(), "virtual cluster 100") || !strings.Contains(err.Error(), "active L1 table") {
		t.Fatalf("CheckWrite through the corrupt mapping: %v, want a refusal naming cluster 100 and the active L1 table", err)
	}
	if err := img.CheckWrite(img.Size()-512, 1024); !errors.Is(err, diskerr.ErrOutOfRange) {
		t.Fatalf("CheckWrite past the end: %v", err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.b, b) {
		t.Error("CheckWrite (and Close after it) changed the host file")
	}
}

// TestMetaMapOverlap: the map finds a range meeting any extent, including
// one hidden behind a longer extent that starts earlier.
func TestMetaMapOverlap(t *testing.T) {
	mm := &metaMap{ext: []metaExtent{
		{0, 512, kindHeader},
		{4096, 1 << 20, kindActiveL1}, // long
		{8192, 8704, kindRefcountBlock},
		{2 << 20, 2<<20 + 512, kindActiveL2},
	}}
	mm.seal()
	for _, c := range []struct {
		off, n int64
		want   metaKind
		allow  []metaKind
	}{
		{0, 1, kindHeader, nil},
		{512, 512, 0, nil},
		{8192, 512, kindRefcountBlock, nil},
		{8192, 512, kindActiveL1, []metaKind{kindRefcountBlock}}, // behind it
		{600 << 10, 512, kindActiveL1, nil},
		{1 << 20, 512, 0, nil},
		{2<<20 - 512, 1024, kindActiveL2, nil},
		{3 << 20, 512, 0, nil},
	} {
		e, ok := mm.overlap(c.off, c.n, 512, c.allow...)
		if got := metaKind(0); ok {
			got = e.kind
			if got != c.want {
				t.Errorf("overlap(%#x, %d, allow %v) = %v, want %v", c.off, c.n, c.allow, got, c.want)
			}
		} else if c.want != 0 {
			t.Errorf("overlap(%#x, %d) found nothing, want %v", c.off, c.n, c.want)
		}
	}
}
