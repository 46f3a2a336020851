package partition

import (
	"bytes"
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

// split cuts an image into a head, a tail and the zero sectors between;
// head and tail come zero-run encoded, as the fuzz targets take them.
func split(b []byte, headLen, tailLen int) ([]byte, []byte, uint32) {
	return zeroRuns(b[:headLen]), zeroRuns(b[len(b)-tailLen:]), uint32((len(b) - headLen - tailLen) / 512)
}

// The disk bytes the fuzz targets take are zero-run encoded: a 0x00 byte
// and the uvarint after it stand for that many plus one zero bytes (a 0x00
// with no valid uvarint after it for one), every other byte for itself.
// Disk images are mostly zeros: a 17 KiB GPT head encodes in about 250
// bytes. Go's fuzzer minimises every input that finds new coverage, for up
// to -fuzzminimizetime (60 s) and in time quadratic in the input's length:
// with the raw 17 KiB seeds each new input stalled the run for the whole
// minute (FuzzGPT ran about 50 inputs in 75 s); encoded, minimising takes
// a fraction of a second and the mutator spends its flips on the bytes
// that carry the tables, not on their zero padding.

// maxDecoded bounds what one encoded input expands to; the disk beyond
// head and tail is zeros anyway.
const maxDecoded = 1 << 20

// unzero decodes a zero-run encoded input into at most maxDecoded bytes.
func unzero(enc []byte) []byte {
	out := make([]byte, 0, min(4*len(enc), maxDecoded))
	for i := 0; i < len(enc) && len(out) < maxDecoded; {
		b := enc[i]
		i++
		if b != 0 {
			out = append(out, b)
			continue
		}
		n, k := binary.Uvarint(enc[i:])
		if k <= 0 {
			n, k = 0, 0
		}
		i += k
		z := int(min(n, uint64(maxDecoded-len(out)-1))) + 1
		out = append(out, make([]byte, z)...)
	}
	return out
}

// zeroRuns encodes b for unzero.
func zeroRuns(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		if b[i] != 0 {
			out = append(out, b[i])
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] == 0 {
			j++
		}
		out = append(out, 0)
		out = binary.AppendUvarint(out, uint64(j-i-1))
		i = j
	}
	return out
}

// maxReadPerTable bounds what one Read may read: four GPT entry arrays of
// at most 4 MiB, EBRs, and a few KiB per Identify.
const maxReadPerTable = 20 << 20

// checkTable holds for any input: Read either fails with ErrCorrupt (the
// disk never fails) or returns partitions that Open refuses or bounds to
// the disk, and nothing reads without bound.
func checkTable(t *testing.T, head, tail []byte, extraSectors uint32) {
	checkDisk(t, newSparseDisk(unzero(head), unzero(tail), extraSectors))
}

// checkDisk is checkTable on a decoded disk.
func checkDisk(t *testing.T, d *sparseDisk) {
	d.total = 0
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
	f.Add(zeroRuns(readAll(f, img)[:512]), []byte{}, uint32(0))
	f.Fuzz(checkTable)
}

// fixGPTCRCs recomputes the CRCs of the GPT headers (512-byte sectors) at
// LBA 1 in the head and at the last LBA in the tail, over entry arrays
// anywhere on the disk, so that the fuzzer reaches the checks that follow
// the CRCs instead of stopping at them.
func fixGPTCRCs(d *sparseDisk) {
	if len(d.head) >= 1024 {
		fixHeaderCRCs(d, d.head[512:1024])
	}
	if len(d.tail) >= 512 && d.size%512 == 0 {
		fixHeaderCRCs(d, d.tail[len(d.tail)-512:])
	}
}

func fixHeaderCRCs(d *sparseDisk, h []byte) {
	if string(h[:8]) != "EFI PART" {
		return
	}
	lba := binary.LittleEndian.Uint64(h[0x48:])
	n := uint64(binary.LittleEndian.Uint32(h[0x50:])) * uint64(binary.LittleEndian.Uint32(h[0x54:]))
	if n <= gptMaxArrayBytes && lba < uint64(d.size)/512 && n <= uint64(d.size)-lba*512 {
		arr := make([]byte, n)
		if _, err := d.ReadAt(arr, int64(lba)*512); err == nil {
			binary.LittleEndian.PutUint32(h[0x58:], crc32.ChecksumIEEE(arr))
		}
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
		d := newSparseDisk(unzero(head), unzero(tail), extraSectors)
		if fix {
			fixGPTCRCs(d)
		}
		checkDisk(t, d)
	})
}

// TestZeroRunsRoundTrip: the zero-run encoding gives back every seed image
// byte for byte, and stays small on them; malformed counts and huge runs
// decode to a bounded length.
func TestZeroRunsRoundTrip(t *testing.T) {
	img := newImage(t, 64<<10)
	testtool.Run(t, "sgdisk", "-a", "1", "-n", "1:40:60", "-t", "1:8300", "-c", "1:root", img)
	raw := readAll(t, img)
	for _, b := range [][]byte{raw, raw[:34*512], raw[len(raw)-33*512:], {}, {0}, {1, 0, 0, 2}, bytes.Repeat([]byte{0}, 300)} {
		enc := zeroRuns(b)
		if got := unzero(enc); !bytes.Equal(got, b) {
			t.Fatalf("round trip of %d bytes gave %d bytes", len(b), len(got))
		}
	}
	if enc := zeroRuns(raw); len(enc) > 1024 {
		t.Fatalf("a 64 KiB GPT image encodes in %d bytes", len(enc))
	}
	huge := binary.AppendUvarint([]byte{7, 0}, 1<<62)
	if got := unzero(append(huge, 0)); len(got) != maxDecoded || got[0] != 7 {
		t.Fatalf("huge run decoded to %d bytes", len(got))
	}
	if got := unzero([]byte{0, 0xFF}); len(got) != 2 || got[1] != 0xFF {
		t.Fatalf("malformed count decoded to %v", got)
	}
}
