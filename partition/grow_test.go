package partition

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/internal/testtool"
)

// growDisk opens img read-write, reads its table and grows partition n.
func growDisk(t *testing.T, img string, n int) (Growth, *Table, error) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	tab, err := Read(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return tab.Grow(f, n)
}

// growpartEnd runs cloud-utils' growpart --dry-run on a copy of img and
// returns the new size and end (in sectors) it would give partition n.
func growpartEnd(t *testing.T, img string, n int) (size, end int64) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	cp := img + ".growpart"
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := testtool.Run(t, "growpart", "--dry-run", cp, strconv.Itoa(n))
	m := regexp.MustCompile(`new: size=(\d+) end=(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("growpart --dry-run gave no CHANGE line:\n%s", out)
	}
	size, _ = strconv.ParseInt(string(m[1]), 10, 64)
	end, _ = strconv.ParseInt(string(m[2]), 10, 64)
	return size, end
}

// sgdiskClean fails unless sgdisk -v finds no problem.
func sgdiskClean(t *testing.T, img string) {
	t.Helper()
	out, code := testtool.Output(t, "sgdisk", "-v", img)
	if code != 0 || !bytes.Contains(out, []byte("No problems found")) {
		t.Fatalf("sgdisk -v (exit %d):\n%s", code, out)
	}
}

// sfdiskClean fails unless sfdisk --verify is silent and successful.
func sfdiskClean(t *testing.T, img string) {
	t.Helper()
	out, code := testtool.Output(t, "sfdisk", "--verify", img)
	if code != 0 || strings.Contains(string(out), "overlap") || strings.Contains(string(out), "exceeds") {
		t.Fatalf("sfdisk --verify (exit %d):\n%s", code, out)
	}
}

func partSectors(t *testing.T, img string, n int) (start, size int64) {
	t.Helper()
	for _, p := range sfdiskJSON(t, img).PartitionTable.Partitions {
		if nodeNumber(t, p.Node) == n {
			return p.Start, p.Size
		}
	}
	t.Fatalf("sfdisk: no partition %d", n)
	return 0, 0
}

func TestGrowGPTLastPartitionMatchesGrowpart(t *testing.T) {
	img := newImage(t, 64<<20)
	testtool.Run(t, "sgdisk", "-n1:2048:+20M", "-n2:0:+20M", img)
	if err := os.Truncate(img, 200<<20); err != nil {
		t.Fatal(err)
	}
	wantSize, wantEnd := growpartEnd(t, img, 2)
	g, nt, err := growDisk(t, img, 2)
	if err != nil {
		t.Fatal(err)
	}
	if g.NewSize/512 != wantSize {
		t.Errorf("new size %d sectors, growpart says %d", g.NewSize/512, wantSize)
	}
	sgdiskClean(t, img)
	start, size := partSectors(t, img, 2)
	if start+size-1 != wantEnd {
		t.Errorf("partition 2 ends at %d on disk, growpart says %d", start+size-1, wantEnd)
	}
	if p, _ := nt.Partition(2); p.Size != g.NewSize || len(nt.Warnings) != 0 {
		t.Errorf("table read again: %+v, warnings %q", p, nt.Warnings)
	}
	if _, s1 := partSectors(t, img, 1); s1 != 20<<11 {
		t.Errorf("partition 1 changed: %d sectors", s1)
	}
}

func TestGrowGPT4KSectors(t *testing.T) {
	img := newImage(t, 64<<20)
	buildGPT(t, img, 4096, 64<<20, []testPart{{typ: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", guid: "11111111-2222-3333-4444-555555555555", first: 256, last: 256 + 5119}})
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	g, nt, err := growDisk(t, img, 1)
	if err != nil {
		t.Fatal(err)
	}
	if nt.SectorSize != 4096 || len(nt.Warnings) != 0 {
		t.Fatalf("grown table: sector size %d, warnings %q", nt.SectorSize, nt.Warnings)
	}
	lbas := int64(128<<20) / 4096
	if want := (lbas - 34 + 1 - 256) * 4096; g.NewSize != want {
		t.Errorf("new size %d, want %d (growpart leaves 33 sectors)", g.NewSize, want)
	}
	if p, _ := nt.Partition(1); p.Size != g.NewSize {
		t.Errorf("table read again: partition 1 is %d bytes, want %d", p.Size, g.NewSize)
	}
}

func TestGrowGPTRefusesPartitionInTheWay(t *testing.T) {
	img := newImage(t, 64<<20)
	testtool.Run(t, "sgdisk", "-n1:2048:+20M", "-n2:0:+20M", "-t2:8200", img)
	os.Truncate(img, 200<<20)
	before, _ := os.ReadFile(img)
	_, _, err := growDisk(t, img, 1)
	if !errors.Is(err, ErrCannotGrow) || !strings.Contains(err.Error(), "partition 2 (Linux swap") {
		t.Fatalf("growing partition 1 with partition 2 after it: %v", err)
	}
	after, _ := os.ReadFile(img)
	if !bytes.Equal(before, after) {
		t.Fatal("a refused growth wrote to the disk")
	}
}

func TestGrowNothingToGain(t *testing.T) {
	img := newImage(t, 64<<20)
	testtool.Run(t, "sgdisk", "-n1:2048:0", img)
	before, _ := os.ReadFile(img)
	g, _, err := growDisk(t, img, 1)
	if err != nil || g.Changed() || g.Why == "" {
		t.Fatalf("growth on a full disk: %+v %v", g, err)
	}
	after, _ := os.ReadFile(img)
	if !bytes.Equal(before, after) {
		t.Fatal("no-change growth wrote to the disk")
	}
}

func TestGrowMBRPrimaryMatchesGrowpart(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdiskScript(t, img, "label: dos\n,20M\n,20M,83\n")
	os.Truncate(img, 200<<20)
	wantSize, _ := growpartEnd(t, img, 2)
	g, _, err := growDisk(t, img, 2)
	if err != nil {
		t.Fatal(err)
	}
	sfdiskClean(t, img)
	if _, size := partSectors(t, img, 2); size != wantSize || g.NewSize/512 != wantSize {
		t.Errorf("partition 2: %d sectors on disk, %d planned, growpart says %d", size, g.NewSize/512, wantSize)
	}
}

func TestGrowMBRLogical(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdiskScript(t, img, "label: dos\n,10M\n,,E\n,10M\n,10M\n")
	os.Truncate(img, 300<<20)
	if _, _, err := growDisk(t, img, 5); !errors.Is(err, ErrCannotGrow) || !strings.Contains(err.Error(), "partition 6") {
		t.Fatalf("growing logical 5 before logical 6: %v", err)
	}
	g, nt, err := growDisk(t, img, 6)
	if err != nil {
		t.Fatal(err)
	}
	sfdiskClean(t, img)
	start, size := partSectors(t, img, 6)
	lbas := int64(300<<20) / 512
	if start+size-1 != lbas-34 || size*512 != g.NewSize {
		t.Errorf("logical 6 at %d+%d sectors (planned %d bytes), want it to end at %d", start, size, g.NewSize, lbas-34)
	}
	es, esz := partSectors(t, img, 2)
	if es+esz-1 != lbas-34 {
		t.Errorf("extended partition ends at %d, want %d", es+esz-1, lbas-34)
	}
	if len(nt.Warnings) != 0 {
		t.Errorf("warnings: %q", nt.Warnings)
	}
}

func TestGrowRefusesExtendedAndNoTable(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdiskScript(t, img, "label: dos\n,10M\n,,E\n,10M\n")
	os.Truncate(img, 100<<20)
	if _, _, err := growDisk(t, img, 2); !errors.Is(err, ErrCannotGrow) {
		t.Fatalf("growing the extended partition: %v", err)
	}
	tab := &Table{Scheme: SchemeNone, DiskSize: 1 << 20, SectorSize: 512, Partitions: []Partition{{Number: 0, Size: 1 << 20}}}
	if _, err := tab.PlanGrow(0); !errors.Is(err, ErrCannotGrow) {
		t.Fatalf("growing a disk without a table: %v", err)
	}
}

func TestFreeAfter(t *testing.T) {
	img := newImage(t, 64<<20)
	testtool.Run(t, "sgdisk", "-n1:2048:+20M", "-n2:0:+20M", img)
	os.Truncate(img, 200<<20)
	f, _ := os.Open(img)
	defer f.Close()
	tab, err := Read(f, 200<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n := tab.FreeAfter(1); n != 0 {
		t.Errorf("free after partition 1 (not the last): %d", n)
	}
	if n := tab.FreeAfter(2); n != (200<<20)-(2048+2*(20<<11)+33)*512 {
		t.Errorf("free after partition 2: %d", n)
	}
}

// TestGrowQuestionsLinear: inspect asks PlanGrow and SpaceAfter of every
// partition; on a 32768-entry GPT (audit R4's layout) that must not scan
// the table per partition. A scan each took over a minute; indexed it is
// well under a second. The answers are checked too: only the last
// partition may grow, and each earlier one is refused naming the next.
func TestGrowQuestionsLinear(t *testing.T) {
	n := gptMaxEntries
	img := manyPartsGPT(t, n)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	// The disk grown by 64 MiB after the table was written.
	tab, err := Read(f, st.Size()+64<<20)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, p := range tab.Partitions {
		g, err := tab.PlanGrow(p.Number)
		last := p.Number == n
		if last != (err == nil && g.Changed()) {
			t.Fatalf("partition %d: %+v %v", p.Number, g, err)
		}
		if !last && !strings.Contains(err.Error(), fmt.Sprintf("partition %d ", p.Number+1)) {
			t.Fatalf("partition %d refused without naming the next: %v", p.Number, err)
		}
		if free := tab.SpaceAfter(p.Number); (free > 0) != last {
			t.Fatalf("partition %d: %d bytes free after it", p.Number, free)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("growth questions for %d partitions took %v", n, d)
	} else {
		t.Logf("growth questions for %d partitions: %v", n, d)
	}
}
