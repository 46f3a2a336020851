package diskimage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/partition"
)

// gptMaxEntries is the entry count of a 4 MiB GPT entry array (128-byte
// entries): the largest table partition.Read accepts.
const gptMaxEntries = 32768

// writeGPT writes a raw disk with 512-byte sectors whose GPT has n entries,
// entry i (from 0) a Linux filesystem partition of partSectors sectors
// placed one after the other from the first usable LBA. It is the layout
// of audit script R4 (n = 32768, partSectors = 2); it returns the path and
// the first partition's byte offset.
func writeGPT(t testing.TB, n, used int, partSectors uint64) (string, int64) {
	t.Helper()
	const es = 128
	arraySectors := uint64(n * es / 512)
	first := 2 + arraySectors
	lbas := first + uint64(used)*partSectors + arraySectors + 1
	linux := [16]byte{0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4}
	arr := make([]byte, n*es)
	for i := 0; i < used; i++ {
		e := arr[i*es:]
		copy(e, linux[:])
		binary.LittleEndian.PutUint64(e[16:], uint64(i)+1) // unique GUID
		binary.LittleEndian.PutUint64(e[0x20:], first+uint64(i)*partSectors)
		binary.LittleEndian.PutUint64(e[0x28:], first+uint64(i+1)*partSectors-1)
	}
	header := func(my, alt, entries uint64) []byte {
		h := make([]byte, 512)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[0x08:], 0x00010000)
		binary.LittleEndian.PutUint32(h[0x0C:], 92)
		binary.LittleEndian.PutUint64(h[0x18:], my)
		binary.LittleEndian.PutUint64(h[0x20:], alt)
		binary.LittleEndian.PutUint64(h[0x28:], first)
		binary.LittleEndian.PutUint64(h[0x30:], lbas-2-arraySectors)
		copy(h[0x38:], "disk-guid-012345")
		binary.LittleEndian.PutUint64(h[0x48:], entries)
		binary.LittleEndian.PutUint32(h[0x50:], uint32(n))
		binary.LittleEndian.PutUint32(h[0x54:], es)
		binary.LittleEndian.PutUint32(h[0x58:], crc32.ChecksumIEEE(arr))
		binary.LittleEndian.PutUint32(h[0x10:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	pmbr := make([]byte, 512)
	pmbr[0x1BE+4] = 0xEE
	binary.LittleEndian.PutUint32(pmbr[0x1BE+8:], 1)
	binary.LittleEndian.PutUint32(pmbr[0x1BE+12:], uint32(min(lbas-1, 0xFFFFFFFF)))
	pmbr[510], pmbr[511] = 0x55, 0xAA
	img := filepath.Join(t.TempDir(), "gpt.raw")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(lbas) * 512); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		b   []byte
		lba uint64
	}{{pmbr, 0}, {header(1, lbas-1, 2), 1}, {arr, 2}, {arr, lbas - 1 - arraySectors}, {header(lbas-1, 1, lbas-1-arraySectors), lbas - 1}} {
		if _, err := f.WriteAt(w.b, int64(w.lba)*512); err != nil {
			t.Fatal(err)
		}
	}
	return img, int64(first) * 512
}

// inspectTime is the best of runs Inspects of img, which must report
// want partitions and no root.
func inspectTime(t testing.TB, img string, want, runs int) time.Duration {
	t.Helper()
	var best time.Duration
	for i := 0; i < runs; i++ {
		start := time.Now()
		r, err := Inspect(img, Options{})
		d := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Partitions) != want || r.Root != nil || !strings.Contains(r.RootError, ErrNoRoot.Error()) {
			t.Fatalf("%d partitions (want %d), root %+v, root error %q", len(r.Partitions), want, r.Root, r.RootError)
		}
		if i == 0 || d < best {
			best = d
		}
	}
	return best
}

// TestInspectGPTMaxEntriesLinear (audit R4): inspect of a valid GPT at the
// 4 MiB entry-array limit, every one of its 32768 entries a partition,
// costs work linear in the entries. It used to be quadratic (each
// partition's Open scanned every partition, and root detection ran twice):
// 25-80 s. 4096 entries against 32768, best of several runs: it fails
// above 24 times (linear 8, quadratic 64) when the big table also took
// over 10 s (it took 25-80 s quadratic, 0.3-1.3 s linear alone and up to
// a few seconds with eight builds on two cores, when the ratio of two
// timings taken minutes apart means little). The root error
// lists 16 partitions and counts the rest.
func TestInspectGPTMaxEntriesLinear(t *testing.T) {
	small, _ := writeGPT(t, gptMaxEntries/8, gptMaxEntries/8, 2)
	big, _ := writeGPT(t, gptMaxEntries, gptMaxEntries, 2)
	ds := inspectTime(t, small, gptMaxEntries/8, 5)
	db := inspectTime(t, big, gptMaxEntries, 3)
	t.Logf("inspect: %d partitions %v, %d partitions %v (%.1fx)", gptMaxEntries/8, ds, gptMaxEntries, db, float64(db)/float64(ds))
	if db > 24*ds && db > 10*time.Second {
		t.Fatalf("%d partitions took %v, %d took %v: %.1fx the time for 8x the partitions (quadratic)", gptMaxEntries/8, ds, gptMaxEntries, db, float64(db)/float64(ds))
	}
	_, err := Open(big, Options{})
	if !errors.Is(err, ErrNoRoot) {
		t.Fatalf("Open: %v, want ErrNoRoot", err)
	}
	if msg := err.Error(); strings.Count(msg, "partition ") > maxListed+2 || !strings.Contains(msg, fmt.Sprintf("and %d more partitions (%d unrecognised)", gptMaxEntries-maxListed, gptMaxEntries-maxListed)) {
		t.Fatalf("root error does not bound its list: %.300s...", msg)
	}
}

// BenchmarkInspectGPTMaxEntries: Inspect of the 32768-partition GPT of R4.
func BenchmarkInspectGPTMaxEntries(b *testing.B) {
	img, _ := writeGPT(b, gptMaxEntries, gptMaxEntries, 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Inspect(img, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRootProbesBounded: root detection opens at most MaxRootProbes ext
// filesystems. A GPT holds MaxRootProbes ext filesystems without /etc and
// then two guest roots: the roots are past the bound, so detection names
// them as not examined and finds no root (instead of opening every
// filesystem a table of 32768 may list); --partition N still opens one.
func TestRootProbesBounded(t *testing.T) {
	const partSectors = 512 // 256 KiB
	data := filepath.Join(t.TempDir(), "data.ext4")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-d", dataTree(t), data, "256k")
	root := filepath.Join(t.TempDir(), "root.ext4")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-d", guestTree(t, "Debian"), root, "256k")
	n := MaxRootProbes + 2
	img, first := writeGPT(t, 128, n, partSectors)
	for i := 0; i < n; i++ {
		src := data
		if i >= MaxRootProbes {
			src = root
		}
		copyInto(t, src, img, first+int64(i)*partSectors*512)
	}
	disk, err := formats.Open(img, formats.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	tab, err := partition.Read(disk, disk.Size())
	if err != nil {
		t.Fatal(err)
	}
	cands := Candidates(disk, disk.Size(), tab)
	if len(cands) != n {
		t.Fatalf("%d candidates, want %d", len(cands), n)
	}
	for i, c := range cands {
		probed := i < MaxRootProbes
		if c.Kind != "ext4" || (c.fs != nil) != probed || c.Root || (c.Why == whyNotProbed) == probed {
			t.Fatalf("partition %d: kind %q opened %v root %v why %q", c.Number, c.Kind, c.fs != nil, c.Root, c.Why)
		}
	}
	_, err = Open(img, Options{})
	if !errors.Is(err, ErrNoRoot) || !strings.Contains(err.Error(), "2 ext4 not examined") {
		t.Fatalf("Open: %v, want ErrNoRoot naming the 2 filesystems not examined", err)
	}
	im, err := Open(img, Options{Partition: fmt.Sprint(n)})
	if err != nil {
		t.Fatalf("Open --partition %d: %v", n, err)
	}
	defer im.Close()
	if ok, err := im.FS.HasFile("/etc/os-release"); !ok || err != nil {
		t.Fatalf("partition %d: /etc/os-release: %v %v", n, ok, err)
	}
}
