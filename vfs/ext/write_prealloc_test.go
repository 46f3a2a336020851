package ext

import (
	"bytes"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// extentRows parses debugfs `ex` of p into its rows (level, logical
// start and end, physical start, uninit), header line dropped.
type exRow struct {
	level        int
	lstart, lend uint64
	pstart       uint64
	leaf, uninit bool
	raw          string
}

func extentRows(t testing.TB, img, p string) []exRow {
	t.Helper()
	out := string(debugfsOut(t, img, "ex "+p))
	var rows []exRow
	for _, line := range strings.Split(out, "\n")[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		// " 0/ 0   1/  1     0 -   767 34816 - 35583    768 Uninit"
		f := strings.Fields(strings.NewReplacer("/", " / ", "-", " - ").Replace(line))
		if len(f) < 10 {
			t.Fatalf("debugfs ex %s: unexpected row %q", p, line)
		}
		r := exRow{raw: line}
		r.level, _ = strconv.Atoi(f[0])
		r.lstart, _ = strconv.ParseUint(f[6], 10, 64)
		r.lend, _ = strconv.ParseUint(f[8], 10, 64)
		r.pstart, _ = strconv.ParseUint(f[9], 10, 64)
		r.leaf = r.level == maxLevelOf(f)
		r.uninit = strings.Contains(line, "Uninit")
		rows = append(rows, r)
	}
	return rows
}

// maxLevelOf is the tree depth a debugfs ex row names ("level/max").
func maxLevelOf(f []string) int { n, _ := strconv.Atoi(f[2]); return n }

// prealloc builds an ext4 image with block size bs holding /prealloc: n
// blocks preallocated by debugfs fallocate (unwritten extents) and an
// i_size covering them, as fallocate(2) without KEEP_SIZE leaves a file.
func prealloc(t testing.TB, bs, n int) string {
	t.Helper()
	img := mkfs(t, "", 64, "-t", "ext4", "-b", strconv.Itoa(bs))
	testtool.Run(t, "debugfs", "-w", "-R", "write /dev/null /prealloc", img)
	testtool.Run(t, "debugfs", "-w", "-R", fmt.Sprintf("fallocate /prealloc 0 %d", n-1), img)
	testtool.Run(t, "debugfs", "-w", "-R", fmt.Sprintf("sif /prealloc size %d", n*bs), img)
	for _, r := range extentRows(t, img, "/prealloc") {
		if r.leaf && !r.uninit {
			t.Fatalf("setup: debugfs fallocate left a written extent: %s", r.raw)
		}
	}
	fsck(t, img)
	return img
}

// TestWritePreallocatedOneExtent (audit kernel/04): replacing a file
// whose blocks are preallocated (unwritten extents) with content covering
// some of them leaves the written range as ONE initialised extent (the
// kernel's split-and-merge), not one extent per block; e2fsck is clean
// and debugfs reads the new content.
func TestWritePreallocatedOneExtent(t *testing.T) {
	for _, bs := range []int{4096, 1024} {
		t.Run(strconv.Itoa(bs), func(t *testing.T) {
			t.Parallel()
			const total = 5 << 20
			img := prealloc(t, bs, total/bs)
			data := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
			w := openW(t, img)
			if err := w.ReplaceFile("/prealloc", data); err != nil {
				t.Fatal(err)
			}
			fsck(t, img)
			wantCat(t, img, "/prealloc", data)
			var leaves []exRow
			for _, r := range extentRows(t, img, "/prealloc") {
				if r.leaf {
					leaves = append(leaves, r)
				}
			}
			if len(leaves) != 1 || leaves[0].uninit || leaves[0].lstart != 0 || leaves[0].lend != uint64(len(data)/bs-1) {
				t.Fatalf("after writing %d blocks over preallocated ones: %d leaf extents, want one written extent 0-%d; first: %+v",
					len(data)/bs, len(leaves), len(data)/bs-1, leaves[:min(len(leaves), 3)])
			}
		})
	}
}

// TestWritePreallocatedPartly: writing inside a preallocated range keeps
// the unwritten head and tail as unwritten extents around one written
// extent (at most three extents for one written range).
func TestWritePreallocatedPartly(t *testing.T) {
	const bs, n = 4096, 1024
	img := prealloc(t, bs, n)
	w := openW(t, img)
	head := make([]byte, 100*bs)
	mid := bytes.Repeat([]byte{0xA5}, 300*bs)
	tx, err := w.begin()
	if err != nil {
		t.Fatal(err)
	}
	in, err := tx.inode(w.lookupTest(t, "prealloc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.writeData(in, int64(len(head)), mid); err != nil {
		t.Fatal(err)
	}
	if err := tx.commit(); err != nil {
		t.Fatal(err)
	}
	fsck(t, img)
	got := debugfsCat(t, img, "/prealloc")
	want := append(append(head, mid...), make([]byte, (n-400)*bs)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("content differs after a write into the middle of a preallocated range")
	}
	var kinds []string
	for _, r := range extentRows(t, img, "/prealloc") {
		if r.leaf {
			kinds = append(kinds, fmt.Sprintf("%d-%d:%v", r.lstart, r.lend, r.uninit))
		}
	}
	if strings.Join(kinds, " ") != "0-99:true 100-399:false 400-1023:true" {
		t.Fatalf("extents after a middle write: %d, first %v, want unwritten 0-99, written 100-399, unwritten 400-1023", len(kinds), kinds[:min(len(kinds), 6)])
	}
}

// lookupTest returns the inode number of name in the root directory.
func (w wfs) lookupTest(t testing.TB, name string) uint32 {
	t.Helper()
	root, err := w.inode(layout.RootIno)
	if err != nil {
		t.Fatal(err)
	}
	ino, err := w.lookup(root, name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	return ino
}

// TestInitialiseMerges writes the blocks of an unwritten extent in
// random orders and requires the map to end as one written extent after
// every order, with at most three extents at any step of an in-order
// write (the kernel's split).
func TestInitialiseMerges(t *testing.T) {
	const n = 300
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 20; round++ {
		fm := &fileMap{exts: []xext{{lblk: 10, pblk: 5000, n: n, uninit: true}}}
		order := rng.Perm(n)
		if round == 0 {
			for i := range order {
				order[i] = i
			}
		}
		for step, k := range order {
			l := uint64(10 + k)
			i, _ := fm.find(l)
			if i < 0 || !fm.exts[i].uninit {
				t.Fatalf("round %d: block %d not in an unwritten extent: %+v", round, l, fm.exts)
			}
			if p := fm.initialise(i, l); p != 5000+uint64(k) {
				t.Fatalf("round %d: block %d initialised at %d, want %d", round, l, p, 5000+k)
			}
			if round == 0 && len(fm.exts) > 2 {
				t.Fatalf("in-order write, step %d: %d extents %+v", step, len(fm.exts), fm.exts)
			}
			for j := 1; j < len(fm.exts); j++ {
				if mergeable(fm.exts[j-1], fm.exts[j]) {
					t.Fatalf("round %d step %d: extents %d and %d left unmerged: %+v", round, step, j-1, j, fm.exts)
				}
			}
		}
		if len(fm.exts) != 1 || fm.exts[0] != (xext{10, 5000, n, false}) {
			t.Fatalf("round %d: map %+v, want one written extent", round, fm.exts)
		}
	}
}

// TestInitialiseRespectsMaxLen: a written extent never grows past the
// longest initialised extent.
func TestInitialiseRespectsMaxLen(t *testing.T) {
	max := maxExtentLen(false)
	fm := &fileMap{exts: []xext{{0, 1000, max, false}, {max, 1000 + max, 10, true}}}
	fm.initialise(1, max)
	if len(fm.exts) != 3 || fm.exts[0].n != max || fm.exts[1] != (xext{max, 1000 + max, 1, false}) {
		t.Fatalf("map %+v: the full extent must not grow past %d", fm.exts, max)
	}
}

// TestCoalesce: a fragmented map (one extent per block, as the engine
// once left preallocated ranges) is stored merged, within the extent
// length limits and never across a change of written state or a
// physical gap.
func TestCoalesce(t *testing.T) {
	var exts []xext
	for i := uint64(0); i < 100; i++ {
		exts = append(exts, xext{i, 1000 + i, 1, false})
	}
	exts = append(exts, xext{100, 1100, 5, true}, xext{105, 1105, 5, true}, xext{110, 2000, 3, true}, xext{113, 2003, 1, false})
	got := coalesce(exts)
	want := []xext{{0, 1000, 100, false}, {100, 1100, 10, true}, {110, 2000, 3, true}, {113, 2003, 1, false}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("coalesce: %v, want %v", got, want)
	}
	max := maxExtentLen(true)
	got = coalesce([]xext{{0, 10, max, true}, {max, 10 + max, 1, true}})
	if len(got) != 2 {
		t.Fatalf("coalesce merged past the longest unwritten extent: %v", got)
	}
}
