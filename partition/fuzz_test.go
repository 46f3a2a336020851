package partition

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// sparseDisk is head at byte 0 and tail at the end of a disk of size
// bytes, zeros between: a small fuzz input can describe a disk far larger
// than itself, with its GPT backup at the end.
type sparseDisk struct {
	head, tail []byte
	size       int64
	total      int64 // bytes read, to bound the cost of one Read
}

func newSparseDisk(head, tail []byte, extraSectors uint32) *sparseDisk {
	return &sparseDisk{head: head, tail: tail, size: int64(len(head)) + int64(len(tail)) + int64(extraSectors)<<9}
}

func (d *sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	d.total += int64(len(p))
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, errors.New("sparseDisk: read outside the disk")
	}
	clear(p)
	if off < int64(len(d.head)) {
		copy(p, d.head[off:])
	}
	tailAt := d.size - int64(len(d.tail))
	if end := off + int64(len(p)); end > tailAt {
		from := max(off, tailAt)
		copy(p[from-off:], d.tail[from-tailAt:])
	}
	return len(p), nil
}

// split cuts an image into a head, a tail and the zero sectors between.
func split(b []byte, headLen, tailLen int) ([]byte, []byte, uint32) {
	return b[:headLen], b[len(b)-tailLen:], uint32((len(b) - headLen - tailLen) / 512)
}

// maxReadPerTable bounds what one Read may read: four GPT entry arrays of
// at most 4 MiB, EBRs, and a few KiB per Identify.
const maxReadPerTable = 20 << 20

// checkTable holds for any input: Read either fails with ErrCorrupt (the
// disk never fails) or returns partitions that Open refuses or bounds to
// the disk, and nothing reads without bound.
func checkTable(t *testing.T, head, tail []byte, extraSectors uint32) {
	d := newSparseDisk(head, tail, extraSectors)
	tab, err := Read(d, d.size)
	if d.total > maxReadPerTable {
		t.Fatalf("Read read %d bytes", d.total)
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error is not ErrCorrupt: %v", err)
		}
		return
	}
	seen := map[int]bool{}
	for _, p := range tab.Partitions {
		if seen[p.Number] || p.Start < 0 || p.Size < 0 {
			t.Fatalf("bad partition %+v", p)
		}
		seen[p.Number] = true
		sec, err := tab.Open(d, p.Number)
		if err != nil {
			continue
		}
		if sec.Start()+sec.Size() > d.size {
			t.Fatalf("partition %d opened past the disk end: %d+%d > %d", p.Number, sec.Start(), sec.Size(), d.size)
		}
		if _, err := Identify(sec, sec.Size()); err != nil {
			t.Fatalf("Identify on partition %d: %v", p.Number, err)
		}
	}
}

func readAll(t testing.TB, img string) []byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzMBR(f *testing.F) {
	img := newImage(f, 64<<10)
	sfdiskScript(f, img, "label: dos\nstart=2, size=4, type=83, bootable\nstart=8, size=60, type=5\nstart=10, size=4, type=83\nstart=16, size=4, type=82\nstart=22, size=4, type=8e\n")
	head, tail, extra := split(readAll(f, img), 30*512, 0)
	f.Add(head, tail, extra)
	img = newImage(f, 64<<10)
	sfdiskScript(f, img, "label: dos\nstart=2, size=40, type=83\nstart=42, size=20, type=7\nstart=62, size=30, type=c\nstart=92, size=30, type=fd\n")
	head, tail, extra = split(readAll(f, img), 512, 0)
	f.Add(head, tail, extra)
	// The MBR alone, its partitions past the disk end.
	f.Add(readAll(f, img)[:512], []byte{}, uint32(0))
	f.Fuzz(checkTable)
}

// fixGPTCRCs recomputes the CRCs of a GPT at LBA 1 (512-byte sectors) of
// head, where they fit, so that the fuzzer reaches the checks that follow
// the CRCs instead of stopping at them.
func fixGPTCRCs(data []byte) {
	if len(data) < 1024 || string(data[512:520]) != "EFI PART" {
		return
	}
	h := data[512:1024]
	lba := binary.LittleEndian.Uint64(h[0x48:])
	n := uint64(binary.LittleEndian.Uint32(h[0x50:])) * uint64(binary.LittleEndian.Uint32(h[0x54:]))
	if lba < uint64(len(data))/512 && n <= uint64(len(data))-lba*512 {
		binary.LittleEndian.PutUint32(h[0x58:], crc32.ChecksumIEEE(data[lba*512:lba*512+n]))
	}
	hs := binary.LittleEndian.Uint32(h[0x0C:])
	if hs >= 92 && hs <= 512 {
		binary.LittleEndian.PutUint32(h[0x10:], 0)
		binary.LittleEndian.PutUint32(h[0x10:], crc32.ChecksumIEEE(h[:hs]))
	}
}

func FuzzGPT(f *testing.F) {
	img := newImage(f, 64<<10)
	testtool.Run(f, "sgdisk", "-a", "1", "-n", "1:40:60", "-t", "1:8300", "-c", "1:root", "-n", "2:61:90", "-t", "2:ef00", "-A", "2:set:2", img)
	head, tail, extra := split(readAll(f, img), 34*512, 33*512)
	f.Add(head, tail, extra, false)
	f.Add(head, []byte{}, extra+33+1<<20, true) // backup lost: a grown disk
	testtool.Run(f, "sgdisk", "-h", "1", img)
	head, tail, extra = split(readAll(f, img), 34*512, 33*512)
	f.Add(head, tail, extra, false)
	// Small tables (4 entries) that the fuzzer can mutate quickly.
	root := testPart{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "21111111-2222-4333-8444-555555555555", 6, 9, "root", 4}
	for _, ss := range []int{512, 4096} {
		img = newImage(f, 64<<10)
		buildGPTEntries(f, img, ss, 64<<10, 4, []testPart{root})
		head, tail, extra := split(readAll(f, img), 3*ss, 2*ss)
		f.Add(head, tail, extra, false)
		f.Add(head, tail, extra, true)
	}
	f.Fuzz(func(t *testing.T, head, tail []byte, extraSectors uint32, fix bool) {
		if fix {
			fixGPTCRCs(head)
		}
		checkTable(t, head, tail, extraSectors)
	})
}
