package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// testOwner owns the blocks tests allocate without a file, on
// filesystems without rmapbt (where the owner is not recorded): on an
// rmapbt filesystem xfs_repair would find OWN_AG blocks that are neither
// btree nor AGFL blocks.
var testOwner = ownAG

// rmapRecords lists AG ag's reverse mappings as the engine reads them.
func rmapRecords(t testing.TB, f *FS, ag uint32) []rmapRec {
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
	path, err := a.rmap.edge(false)
	if err != nil {
		t.Fatal(err)
	}
	var out []rmapRec
	for ok := path[0].blk.n() > 0; ok; {
		out = append(out, decodeRmap(path[0].rec()))
		if ok, err = a.rmap.step(path, 1); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRmapRandomOps is the property test on rmapbt filesystems: random
// appends (interleaved across files, so extents do not merge), in-place
// replaces, truncations and removals in several AGs grow the rmap btree
// past one level and back; after every batch xfs_repair -n (which
// rebuilds every mapping from the inodes and AG headers and compares) is
// clean, the engine reads every file back, the engine's records are
// sorted, disjoint (nothing is shared) and merged as the kernel merges
// them, and agf_rmap_blocks counts the tree's blocks. Finally the
// filesystem is filled: ENOSPC is refused with the image unchanged.
func TestRmapRandomOps(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		seed int64
	}{
		{"1k-reflink", []string{"-b", "size=1024", "-m", "rmapbt=1,reflink=1", "-d", "agcount=2"}, 1},
		{"1k-noreflink-nofinobt", []string{"-b", "size=1024", "-m", "rmapbt=1,reflink=0,finobt=0", "-d", "agcount=3"}, 2},
		{"4k-seed", []string{"-m", "rmapbt=1", "-d", "agcount=4"}, seedFromEnv()},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := emptyImage(t, c.args...)
			f := openRW(t, img)
			bs := int(f.geo.blockSize)
			rng := rand.New(rand.NewSource(c.seed))
			content := map[string][]byte{}
			names := func() []string {
				var s []string
				for n := range content {
					s = append(s, n)
				}
				sort.Strings(s)
				return s
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			maxLevel := uint64(0)
			check := func(batch string) {
				t.Helper()
				must(f.Flush())
				repairClean(t, img)
				g := openImage(t, img, nil)
				for n, want := range content {
					got, err := g.ReadFile(n)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("%s: %s reads back %d bytes (%v), want %d", batch, n, len(got), err, len(want))
					}
				}
				for ag := uint32(0); uint64(ag) < f.geo.agCount; ag++ {
					recs := rmapRecords(t, f, ag)
					for i := 1; i < len(recs); i++ {
						p, r := recs[i-1], recs[i]
						if p.end() > uint64(r.start) {
							t.Fatalf("%s: AG %d: records %+v and %+v overlap", batch, ag, p, r)
						}
						if p.end() == uint64(r.start) && p.owner == r.owner && p.flags == r.flags &&
							(p.ignoresOffset() || p.off+uint64(p.count) == r.off) {
							t.Fatalf("%s: AG %d: records %+v and %+v are not merged", batch, ag, p, r)
						}
					}
					agf := fmt.Sprintf("agf %d", ag)
					lv := dbField(t, img, "rmaplevel", agf)
					maxLevel = max(maxLevel, lv)
					if blocks := dbField(t, img, "rmapblocks", agf); lv > 1 && blocks < 3 || blocks < 1 {
						t.Fatalf("%s: AG %d: rmap btree of %d levels in %d blocks", batch, ag, lv, blocks)
					}
				}
			}
			for i := 0; i < 8; i++ {
				must(f.MakePath(fmt.Sprintf("/d%d", i)))
			}
			for batch := 0; batch < 6; batch++ {
				for op := 0; op < 150; op++ {
					n := fmt.Sprintf("/d%d/f%d", rng.Intn(8), rng.Intn(24))
					switch r := rng.Intn(10); {
					case r < 6: // append a few blocks
						data := pattern(bs*(1+rng.Intn(3))+rng.Intn(bs), byte(op))
						must(f.AppendFile(n, data))
						content[n] = append(content[n], data...)
					case r < 7 && content[n] != nil: // truncate
						size := rng.Intn(len(content[n]) + 1)
						must(f.Truncate(n, int64(size)))
						content[n] = content[n][:size]
					case r < 8 && content[n] != nil: // remove
						must(f.Remove(n))
						delete(content, n)
					case r < 9: // replace
						data := pattern(rng.Intn(6*bs), byte(op+1))
						must(f.ReplaceFile(n, data))
						content[n] = data
					}
				}
				check(fmt.Sprintf("batch %d", batch))
			}
			if maxLevel < 2 && bs == 1024 {
				t.Fatalf("the rmap btree never grew past %d level(s): no split was tested", maxLevel)
			}
			// Everything removed: the trees join down again.
			for _, n := range names() {
				must(f.Remove(n))
				delete(content, n)
			}
			check("all removed")
			// Nearly full: one file takes what it can, then more is
			// refused with ErrNoSpace and nothing written.
			free := int(dbField(t, img, "fdblocks", "sb 0"))
			must(f.ReplaceFile("/big", pattern((free-free/16)*bs, 7)))
			content["/big"] = pattern((free-free/16)*bs, 7)
			check("nearly full")
			before := fileSum(t, img)
			if err := f.AppendFile("/big", pattern(free/8*bs, 8)); !errors.Is(err, vfs.ErrNoSpace) {
				t.Fatalf("appending past the free space: %v, want ErrNoSpace", err)
			}
			if fileSum(t, img) != before {
				t.Fatal("the refused append changed the image")
			}
			t.Logf("rmap btrees reached %d levels", maxLevel)
		})
	}
}
