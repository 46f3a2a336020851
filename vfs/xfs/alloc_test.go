package xfs

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type agExt struct{ ag, start, n uint32 }

// freespD lists the free extents xfs_db sees in AG ag: the by-block
// btree's records, without the AGFL's blocks (freesp lists each as a
// one-block extent).
func freespD(t testing.TB, img string, ag uint32) []agExt {
	t.Helper()
	agfl := map[uint32]int{}
	out := xfsDB(t, img, fmt.Sprintf("agfl %d", ag), "p bno")
	for _, f := range strings.Fields(out) {
		if _, v, ok := strings.Cut(f, ":"); ok && v != "null" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				t.Fatalf("agfl: %q", f)
			}
			agfl[uint32(n)]++
		}
	}
	var exts []agExt
	for _, line := range strings.Split(xfsDB(t, img, fmt.Sprintf("freesp -d -a %d", ag)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] == "agno" {
			continue
		}
		var v [3]uint32
		for i := range f {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				break
			}
			v[i] = uint32(n)
		}
		if v[0] != ag || v[2] == 0 {
			continue
		}
		if v[2] == 1 && agfl[v[1]] > 0 {
			agfl[v[1]]--
			continue
		}
		exts = append(exts, agExt{v[0], v[1], v[2]})
	}
	sort.Slice(exts, func(i, j int) bool { return exts[i].start < exts[j].start })
	return exts
}

// engineFree lists AG ag's free extents as the engine reads its
// by-block btree, walking it record by record.
func engineFree(t testing.TB, f *FS, ag uint32) []agExt {
	t.Helper()
	tr, err := f.begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.abort()
	a, err := tr.allocGroup(ag)
	if err != nil {
		t.Fatal(err)
	}
	path, err := a.bno.edge(false)
	if err != nil {
		t.Fatal(err)
	}
	var exts []agExt
	for ok := path[0].blk.n() > 0; ok; {
		s, n := decodeAllocRec(path[0].rec())
		exts = append(exts, agExt{ag, s, n})
		if ok, err = a.bno.step(path, 1); err != nil {
			t.Fatal(err)
		}
	}
	return exts
}

// allocConfig is one filesystem layout of the allocator tests: small
// blocks make short btree blocks, so a few thousand records need 2 or 3
// levels.
var allocConfigs = []struct {
	name string
	args []string
}{
	{"v5-1k", []string{"-b", "size=1024", "-m", "reflink=0", "-d", "agcount=4"}},
	{"v4-512", []string{"-b", "size=512", "-m", "crc=0", "-d", "agcount=4"}},
	{"v4-512-nolazy", []string{"-b", "size=512", "-m", "crc=0", "-l", "lazy-count=0", "-d", "agcount=4"}},
}

// TestAllocFreeRandom allocates and frees thousands of extents of random
// sizes in two AGs, one transaction per batch: the by-block and by-count
// btrees split to two or more levels and join back, the AGFL is refilled
// and trimmed, and after every batch xfs_repair -n is clean, the free
// extents xfs_db lists are exactly those the engine reads, no allocated
// extent is free or allocated twice, and sb_fdblocks moved by exactly
// the blocks allocated.
func TestAllocFreeRandom(t *testing.T) {
	for _, c := range allocConfigs {
		t.Run(c.name, func(t *testing.T) {
			img := emptyImage(t, c.args...)
			fd0 := dbField(t, img, "fdblocks", "sb 0")
			f := openRW(t, img)
			ags := dataAGs(f)
			rng := rand.New(rand.NewSource(12))
			var held []agExt
			var nheld uint64
			maxLevel := uint64(0)
			check := func(batch string) {
				t.Helper()
				repairClean(t, img)
				if got, want := dbField(t, img, "fdblocks", "sb 0"), fd0-nheld; got != want {
					t.Fatalf("%s: sb_fdblocks %d, want %d", batch, got, want)
				}
				for _, ag := range ags {
					db, eng := freespD(t, img, ag), engineFree(t, f, ag)
					if fmt.Sprint(db) != fmt.Sprint(eng) {
						t.Fatalf("%s: AG %d free extents differ:\nxfs_db %v\nengine %v", batch, ag, db, eng)
					}
					for _, h := range held {
						if h.ag != ag {
							continue
						}
						i := sort.Search(len(db), func(i int) bool { return db[i].start+db[i].n > h.start })
						if i < len(db) && db[i].start < h.start+h.n {
							t.Fatalf("%s: allocated %v overlaps free %v", batch, h, db[i])
						}
					}
					checkSiblings(t, f, ag)
					bl, cl := dbField(t, img, "bnolevel", fmt.Sprintf("agf %d", ag)), dbField(t, img, "cntlevel", fmt.Sprintf("agf %d", ag))
					if fl := dbField(t, img, "flcount", fmt.Sprintf("agf %d", ag)); fl != bl+1+cl+1 {
						t.Fatalf("%s: AG %d free list holds %d blocks, the kernel's minimum is %d", batch, ag, fl, bl+1+cl+1)
					}
					maxLevel = max(maxLevel, dbField(t, img, "bnolevel", fmt.Sprintf("agf %d", ag)), dbField(t, img, "cntlevel", fmt.Sprintf("agf %d", ag)))
				}
				// No two allocations overlap.
				s := append([]agExt(nil), held...)
				sort.Slice(s, func(i, j int) bool { return s[i].ag < s[j].ag || s[i].ag == s[j].ag && s[i].start < s[j].start })
				for i := 1; i < len(s); i++ {
					if s[i].ag == s[i-1].ag && s[i-1].start+s[i-1].n > s[i].start {
						t.Fatalf("%s: %v and %v were both handed out", batch, s[i-1], s[i])
					}
				}
			}
			alloc := func(tr *tx, ag, lo, hi uint32) {
				a, err := tr.allocGroup(ag)
				if err != nil {
					t.Fatal(err)
				}
				s, n, err := a.alloc(lo, hi, testOwner)
				if err != nil {
					t.Fatal(err)
				}
				if n < lo || n > hi {
					t.Fatalf("alloc(%d, %d) gave %d blocks", lo, hi, n)
				}
				held = append(held, agExt{ag, s, n})
				nheld += uint64(n)
			}
			free := func(tr *tx, i int, piece bool) {
				h := held[i]
				s, n := h.start, h.n
				if piece && n > 2 {
					// Free a middle piece; the rest stays held.
					off := 1 + uint32(rng.Intn(int(n-2)))
					s, n = h.start+off, 1+uint32(rng.Intn(int(h.n-off-1)))
					held[i] = agExt{h.ag, h.start, off}
					held = append(held, agExt{h.ag, s + n, h.start + h.n - (s + n)})
				} else {
					held[i] = held[len(held)-1]
					held = held[:len(held)-1]
				}
				a, err := tr.allocGroup(h.ag)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.free(s, n, testOwner); err != nil {
					t.Fatal(err)
				}
				nheld -= uint64(n)
			}
			commit := func(tr *tx) {
				if err := tr.commit(); err != nil {
					t.Fatal(err)
				}
			}
			// Checkerboard: thousands of one-block extents, every other
			// one freed, make thousands of free-space records.
			tr, _ := f.begin()
			for i := 0; i < 12000; i++ {
				alloc(tr, ags[i%2], 1, 1)
			}
			commit(tr)
			check("single blocks")
			tr, _ = f.begin()
			for i := len(held) - 1; i >= 0; i-- {
				if (i/2)%2 == 0 { // every other block of each AG (they alternate)
					free(tr, i, false)
				}
			}
			commit(tr)
			check("checkerboard")
			for batch := 0; batch < 4; batch++ {
				tr, _ = f.begin()
				for i := 0; i < 400; i++ {
					hi := 1 + uint32(rng.Intn(40))
					alloc(tr, ags[rng.Intn(2)], 1+uint32(rng.Intn(int(hi))), hi)
				}
				commit(tr)
				check(fmt.Sprintf("alloc batch %d", batch))
				tr, _ = f.begin()
				for i := 0; i < 300 && len(held) > 0; i++ {
					free(tr, rng.Intn(len(held)), rng.Intn(3) == 0)
				}
				commit(tr)
				check(fmt.Sprintf("free batch %d", batch))
			}
			if maxLevel < 2 {
				t.Fatalf("the free-space btrees never grew past %d level(s): no split was tested", maxLevel)
			}
			// Everything back: the trees join down again.
			tr, _ = f.begin()
			for len(held) > 0 {
				free(tr, len(held)-1, false)
			}
			commit(tr)
			check("all freed")
			for _, ag := range ags {
				if lv := dbField(t, img, "bnolevel", fmt.Sprintf("agf %d", ag)); lv != 1 {
					t.Fatalf("AG %d: by-block btree still %d levels with one free extent", ag, lv)
				}
			}
			t.Logf("btrees reached %d levels", maxLevel)
		})
	}
}

// checkSiblings walks both free-space btrees of AG ag level by level
// and checks that each level's sibling pointers chain its blocks in key
// order, null at both ends.
func checkSiblings(t testing.TB, f *FS, ag uint32) {
	t.Helper()
	tr, err := f.begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.abort()
	a, err := tr.allocGroup(ag)
	if err != nil {
		t.Fatal(err)
	}
	for _, bt := range []*sbtree{a.bno, a.cnt} {
		root, levels := bt.root()
		level := []uint32{root}
		for lv := levels - 1; lv >= 0; lv-- {
			var next []uint32
			for i, b := range level {
				s, err := bt.get(b, lv)
				if err != nil {
					t.Fatal(err)
				}
				wantL, wantR := uint32(0xFFFFFFFF), uint32(0xFFFFFFFF)
				if i > 0 {
					wantL = level[i-1]
				}
				if i+1 < len(level) {
					wantR = level[i+1]
				}
				if s.left() != wantL || s.right() != wantR {
					t.Fatalf("AG %d %s level %d block %d: siblings %d/%d, want %d/%d", ag, bt.what, lv, b, s.left(), s.right(), wantL, wantR)
				}
				for j := 0; lv > 0 && j < s.n(); j++ {
					next = append(next, s.ptr(j))
				}
			}
			level = next
		}
	}
}

// dataAGs returns two AGs other than AG 0 (inodes) and the log's.
func dataAGs(f *FS) []uint32 {
	logAG := uint32(f.sb.LogStart >> f.geo.agBlkLog)
	var ags []uint32
	for ag := uint32(1); len(ags) < 2 && uint64(ag) < f.geo.agCount; ag++ {
		if ag != logAG {
			ags = append(ags, ag)
		}
	}
	return ags
}

// TestAllocNoSpace: an allocation larger than any free extent fails with
// ErrNoSpace (wrapping vfs.ErrNoSpace), and the aborted transaction
// leaves the image unchanged.
func TestAllocNoSpace(t *testing.T) {
	img := emptyImage(t, "-m", "reflink=0")
	before := fileSum(t, img)
	f := openRW(t, img)
	tr, err := f.begin()
	if err != nil {
		t.Fatal(err)
	}
	a, err := tr.allocGroup(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.alloc(uint32(f.geo.agBlocks), uint32(f.geo.agBlocks), testOwner); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("alloc of a whole AG: %v, want ErrNoSpace", err)
	}
	tr.abort()
	if fileSum(t, img) != before {
		t.Fatal("a failed allocation changed the image")
	}
}

// TestFreeRefusals: freeing space that is already free is refused as
// corruption, the image unchanged; on a reflink filesystem an extent no
// refcount record covers is freed (TestFreeSharedRefused has the shared
// case).
func TestFreeRefusals(t *testing.T) {
	img := emptyImage(t, "-m", "reflink=0")
	f := openRW(t, img)
	free := engineFree(t, f, 1)
	tr, _ := f.begin()
	a, err := tr.allocGroup(1)
	if err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, img)
	last := free[len(free)-1]
	if err := a.free(last.start+1, 2, testOwner); err == nil {
		t.Fatal("a double free was accepted")
	}
	tr.abort()
	if fileSum(t, img) != before {
		t.Fatal("a refused free changed the image")
	}
	img2 := emptyImage(t) // reflink on by default
	g := openRW(t, img2)
	tr, _ = g.begin()
	if a, err = tr.allocGroup(1); err != nil {
		t.Fatal(err)
	}
	s, n, err := a.alloc(1, 4, testOwner)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.free(s, n, testOwner); err != nil {
		t.Fatalf("free of an unshared extent on reflink: %v", err)
	}
	if err := tr.commit(); err != nil {
		t.Fatal(err)
	}
	repairClean(t, img2)
}

// TestFreeSharedRefused: on a reflink filesystem, truncating, removing
// or renaming over a file one of whose blocks has a refcount record
// (another file shares it) is refused with ErrUnsupportedFeature, before
// any write.
func TestFreeSharedRefused(t *testing.T) {
	img := emptyImage(t)
	f := openRW(t, img)
	bs := f.BlockSize()
	if err := f.ReplaceFile("/shared", pattern(bs*4, 1)); err != nil {
		t.Fatal(err)
	}
	if err := f.ReplaceFile("/other", []byte("other\n")); err != nil {
		t.Fatal(err)
	}
	ag, agbno := firstExtent(t, f, img, "/shared")
	// A refcount record over the file's third block, as a reflink copy
	// made by the kernel would leave.
	xfsDBWrite(t, img, fmt.Sprintf("agf %d", ag), "addr refcntroot", "write numrecs 1",
		fmt.Sprintf("write recs[1].startblock %d", agbno+2), "write recs[1].blockcount 1", "write recs[1].refcount 2")
	before := fileSum(t, img)
	f = openRW(t, img)
	refusedUnchanged(t, img, before, "shared", map[string]error{
		"replace":  f.ReplaceFile("/shared", []byte("x")),
		"truncate": f.Truncate("/shared", int64(bs)),
		"remove":   f.Remove("/shared"),
		// Rename frees the replaced target in its second transaction:
		// refused before the first (the new name) commits.
		"rename over": f.Rename("/other", "/shared"),
	})
	// Past the shared block, truncation is allowed.
	if err := f.Truncate("/shared", int64(bs)*3); err != nil {
		t.Fatalf("truncating after the shared block: %v", err)
	}
	if fileSum(t, img) == before {
		t.Fatal("the allowed truncation wrote nothing")
	}
}

// TestAllocDefaultV5: allocation on mkfs.xfs's defaults (4 KiB blocks,
// reflink, finobt, inobtcount, bigtime) leaves xfs_repair -n clean, the
// refcount btree untouched, and sb_fdblocks lower by what was allocated.
func TestAllocDefaultV5(t *testing.T) {
	img := emptyImage(t)
	fd0 := dbField(t, img, "fdblocks", "sb 0")
	f := openRW(t, img)
	ags := dataAGs(f)
	ref := xfsDB(t, img, fmt.Sprintf("agf %d", ags[0]), "p refcntroot refcntlevel refcntblocks")
	rng := rand.New(rand.NewSource(5))
	var total uint64
	tr, _ := f.begin()
	for i := 0; i < 500; i++ {
		a, err := tr.allocGroup(ags[i%2])
		if err != nil {
			t.Fatal(err)
		}
		_, n, err := a.alloc(1, 1+uint32(rng.Intn(64)), testOwner)
		if err != nil {
			t.Fatal(err)
		}
		total += uint64(n)
	}
	if err := tr.commit(); err != nil {
		t.Fatal(err)
	}
	repairClean(t, img)
	if got := dbField(t, img, "fdblocks", "sb 0"); got != fd0-total {
		t.Fatalf("sb_fdblocks %d, want %d", got, fd0-total)
	}
	if got := xfsDB(t, img, fmt.Sprintf("agf %d", ags[0]), "p refcntroot refcntlevel refcntblocks"); got != ref {
		t.Fatalf("refcount btree fields changed:\n%s\nwas\n%s", got, ref)
	}
}

// TestFreeCowStagingRefused: a copy-on-write staging record (left by a
// crash during a reflink copy-on-write; its key sorts after every shared
// record) over a block the file maps is found and the free refused, even
// when a shared record past the file ends the walk of shared records.
func TestFreeCowStagingRefused(t *testing.T) {
	img := emptyImage(t)
	f := openRW(t, img)
	bs := f.BlockSize()
	if err := f.ReplaceFile("/staged", pattern(bs*4, 2)); err != nil {
		t.Fatal(err)
	}
	ag, agbno := firstExtent(t, f, img, "/staged")
	xfsDBWrite(t, img, fmt.Sprintf("agf %d", ag), "addr refcntroot", "write numrecs 2",
		fmt.Sprintf("write recs[1].startblock %d", agbno+100), "write recs[1].blockcount 1", "write recs[1].refcount 2",
		fmt.Sprintf("write recs[2].startblock %d", agbno+2), "write recs[2].blockcount 1", "write recs[2].refcount 1",
		"write recs[2].cowflag 1")
	before := fileSum(t, img)
	f = openRW(t, img)
	refusedUnchanged(t, img, before, "copy-on-write", map[string]error{
		"truncate": f.Truncate("/staged", int64(bs)),
		"remove":   f.Remove("/staged"),
	})
	if err := f.Truncate("/staged", int64(bs)*3); err != nil {
		t.Fatalf("truncating after the staged block: %v", err)
	}
}

// refusedUnchanged requires every attempt (what was tried → its error) to
// be refused with ErrUnsupportedFeature naming naming, and img to be
// byte for byte what it was (before, its fileSum) when they were made.
func refusedUnchanged(t *testing.T, img string, before [32]byte, naming string, attempts map[string]error) {
	t.Helper()
	for what, err := range attempts {
		if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), naming) {
			t.Fatalf("%s: %v, want a refusal naming %q", what, err, naming)
		}
	}
	if fileSum(t, img) != before {
		t.Fatal("a refused operation changed the image")
	}
}

// firstExtent returns the AG and AG block where the first extent of the
// file at p starts, as xfs_db reads it from img.
func firstExtent(t *testing.T, f *FS, img, p string) (ag, agbno uint64) {
	t.Helper()
	fsb := dbField(t, img, "u3.bmx[0].startblock", fmt.Sprintf("inode %d", mustIno(t, f, p)))
	return fsb >> f.geo.agBlkLog, fsb & (1<<f.geo.agBlkLog - 1)
}
