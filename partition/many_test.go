package partition

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/internal/testtool"
)

// gptMaxEntries is the largest entry count Read accepts at the smallest
// entry size: the 4 MiB array limit.
const gptMaxEntries = gptMaxArrayBytes / gptEntryMinSize

// manyPartsGPT writes a GPT image whose n entries are all used, each a
// 2-sector Linux partition, the layout of audit script R4 at n = 32768.
func manyPartsGPT(t testing.TB, n int) string {
	t.Helper()
	arraySectors := uint64(n * gptEntryMinSize / 512)
	first := 2 + arraySectors
	size := int64(first+uint64(2*n)+arraySectors+1) * 512
	parts := make([]testPart, n)
	for i := range parts {
		parts[i] = testPart{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", fmt.Sprintf("%08X-2222-4333-8444-555555555555", i),
			first + uint64(2*i), first + uint64(2*i) + 1, "", 0}
	}
	img := newImage(t, size)
	buildGPTEntries(t, img, 512, size, n, parts)
	return img
}

// openAll reads img's table and opens every partition, failing on any
// refusal: the partitions are valid and disjoint.
func openAll(t testing.TB, img string, n int) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Read(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Partitions) != n {
		t.Fatalf("%d partitions, want %d", len(tab.Partitions), n)
	}
	for _, p := range tab.Partitions {
		q, err := tab.Partition(p.Number)
		if err != nil || q != p {
			t.Fatalf("Partition(%d) = %+v, %v; want %+v", p.Number, q, err, p)
		}
		sec, err := tab.Open(f, p.Number)
		if err != nil {
			t.Fatalf("Open(%d): %v", p.Number, err)
		}
		if sec.Start() != p.Start || sec.Size() != p.Size {
			t.Fatalf("Open(%d) = %d+%d, want %d+%d", p.Number, sec.Start(), sec.Size(), p.Start, p.Size)
		}
	}
}

// TestGPTMaxEntriesOpenLinear (audit R4): reading a valid GPT at the 4 MiB
// entry-array limit (32768 used entries) and opening every partition costs
// work linear in the entry count. Per-partition Open used to rescan every
// partition twice (the number lookup and the overlap check): 64 times the
// work for 8 times the entries. The test compares 4096 with 32768 entries
// (the best of five runs each) and fails above 24 times (linear is 8,
// quadratic 64) when the big table also took over 2 s: caches and a loaded
// machine stretch the ratio of short runs (34x seen at 0.3 s), while the
// quadratic code took 10-40 s.
func TestGPTMaxEntriesOpenLinear(t *testing.T) {
	small, big := gptMaxEntries/8, gptMaxEntries
	imgSmall, imgBig := manyPartsGPT(t, small), manyPartsGPT(t, big)
	// sgdisk -v is itself quadratic (minutes at 32768 entries): it proves
	// the builder at 1024.
	out := testtool.Run(t, "sgdisk", "-v", manyPartsGPT(t, 1024))
	if !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v on a 1024-entry table:\n%s", out)
	}
	best := func(img string, n int) time.Duration {
		var b time.Duration
		for i := 0; i < 5; i++ {
			start := time.Now()
			openAll(t, img, n)
			if d := time.Since(start); i == 0 || d < b {
				b = d
			}
		}
		return b
	}
	ds, db := best(imgSmall, small), best(imgBig, big)
	t.Logf("read + open all: %d partitions %v, %d partitions %v (%.1fx)", small, ds, big, db, float64(db)/float64(ds))
	if db > 24*ds && db > 2*time.Second {
		t.Fatalf("%d partitions took %v, %d took %v: %.1fx the time for 8x the partitions (quadratic)", small, ds, big, db, float64(db)/float64(ds))
	}
}

// BenchmarkGPTMaxEntriesOpenAll: Read plus Open of every partition of a
// 32768-entry GPT.
func BenchmarkGPTMaxEntriesOpenAll(b *testing.B) {
	img := manyPartsGPT(b, gptMaxEntries)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		openAll(b, img, gptMaxEntries)
	}
}

// TestIndexedOpenMatchesScan: on random tables of overlapping, nested,
// duplicate-start, empty and extended partitions, Open through Read's
// index refuses exactly the partitions the scan over every partition
// refuses (a Table built by hand has no index and scans).
func TestIndexedOpenMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	disk := &memDisk{b: make([]byte, 1<<16)}
	for round := 0; round < 500; round++ {
		scanned := &Table{DiskSize: 1 << 16}
		for n := 1; n <= 1+rng.IntN(12); n++ {
			p := Partition{Number: n, Start: int64(rng.IntN(64)) * 512, Size: int64(rng.IntN(16)) * 512, Extended: rng.IntN(8) == 0}
			scanned.Partitions = append(scanned.Partitions, p)
		}
		indexed := &Table{DiskSize: scanned.DiskSize, Partitions: slices.Clone(scanned.Partitions)}
		indexed.buildIndex()
		for _, p := range scanned.Partitions {
			_, errS := scanned.Open(disk, p.Number)
			_, errI := indexed.Open(disk, p.Number)
			if (errS == nil) != (errI == nil) || errors.Is(errS, ErrCorrupt) != errors.Is(errI, ErrCorrupt) {
				t.Fatalf("round %d, partition %d of %+v: scan says %v, index says %v", round, p.Number, scanned.Partitions, errS, errI)
			}
		}
		if _, err := indexed.Partition(99); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Partition(99) = %v, want ErrNotFound", err)
		}
	}
}

// TestGPTMaxEntriesWarningsBounded: a GPT whose 32768 entries all lie
// outside the usable LBAs, and past the disk end, keeps maxWarnings
// warnings and counts the rest, instead of carrying 65536 of them into
// every report.
func TestGPTMaxEntriesWarningsBounded(t *testing.T) {
	n := gptMaxEntries
	parts := make([]testPart, n)
	for i := range parts {
		parts[i] = testPart{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", fmt.Sprintf("%08X-2222-4333-8444-555555555555", i),
			1<<40 + uint64(i), 1<<40 + uint64(i), "", 0}
	}
	size := int64(2+2*n/4+1+1) * 512 // both arrays, headers, the MBR
	img := newImage(t, size)
	buildGPTEntries(t, img, 512, size, n, parts)
	tab := mustRead(t, img, Options{})
	if len(tab.Partitions) != n {
		t.Fatalf("%d partitions, want %d", len(tab.Partitions), n)
	}
	last := fmt.Sprintf("and %d more warnings", 2*n-maxWarnings)
	if len(tab.Warnings) != maxWarnings+1 || tab.Warnings[maxWarnings] != last {
		t.Fatalf("%d warnings, the last %q; want %d and %q", len(tab.Warnings), tab.Warnings[len(tab.Warnings)-1], maxWarnings+1, last)
	}
}
