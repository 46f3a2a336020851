package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"regexp"
	"sort"
	"strings"
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
			leafChecked := false
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
					if lv == 1 {
						// A root leaf: xfs_db prints the same records.
						if db, eng := dbRmapRecs(t, img, ag), fmtRmapRecs(recs); db != eng {
							t.Fatalf("%s: AG %d: xfs_db reads the reverse mappings\n%s\nthe engine\n%s", batch, ag, db, eng)
						}
						leafChecked = true
					}
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
			for ag := uint32(0); uint64(ag) < f.geo.agCount; ag++ {
				if lv := dbField(t, img, "rmaplevel", fmt.Sprintf("agf %d", ag)); lv != 1 {
					t.Fatalf("AG %d: the rmap btree is still %d levels with every file removed: no join", ag, lv)
				}
			}
			if !leafChecked {
				t.Fatal("no reverse mapping was compared with xfs_db's")
			}
			// Nearly full: one file takes what it can, then more is
			// refused with ErrNoSpace and nothing written; what is
			// left is the kernel's per-AG reservation.
			content["/big"] = fillUp(t, f, "/big")
			check("nearly full")
			before := fileSum(t, img)
			if err := f.AppendFile("/big", pattern(bs, 8)); !errors.Is(err, vfs.ErrNoSpace) {
				t.Fatalf("appending past the free space: %v, want ErrNoSpace", err)
			}
			if fileSum(t, img) != before {
				t.Fatal("the refused append changed the image")
			}
			t.Logf("rmap btrees reached %d levels", maxLevel)
		})
	}
}

// TestRmapKernelWritesMore: on an rmapbt+reflink filesystem the engine
// writes files grown to a bmap btree fork, directories in several forms,
// a new inode chunk's worth of files, removes and truncates some, and
// fills the free space up to the kernel's per-AG reservation; a real
// kernel, whose mount must not report that reservation short, (the libguestfs appliance) then appends to the engine's
// files, truncates and removes them (each a lookup of the engine's
// reverse mappings: a wrong one shuts the filesystem down), preallocates
// unwritten extents and writes new files; dmesg shows no XFS complaint
// and xfs_repair -n is clean. The engine then removes the kernel's
// files (unwritten extents among them) and writes more: clean again.
func TestRmapKernelWritesMore(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: boots the libguestfs appliance under software emulation (run without -short)")
	}
	img := emptyImage(t, "-m", "rmapbt=1,reflink=1", "-d", "agcount=4")
	f := openRW(t, img)
	bs := f.BlockSize()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for d := 0; d < 4; d++ {
		must(f.MakePath(fmt.Sprintf("/d%d", d)))
		for i := 0; i < 30; i++ {
			must(f.ReplaceFile(fmt.Sprintf("/d%d/small%d", d, i), pattern(100+i, byte(i))))
		}
	}
	for step := 0; step < 60; step++ { // interleaved: two btree forks
		for i := 0; i < 2; i++ {
			must(f.AppendFile(fmt.Sprintf("/d0/grow%d", i), pattern(bs*(1+step%3), byte(step))))
		}
	}
	must(f.ReplaceFile("/d1/trunc", pattern(bs*20, 3)))
	must(f.Truncate("/d1/trunc", int64(bs*7+5)))
	must(f.Remove("/d1/small3"))
	// Filled up to the kernel's per-AG reservation, which its mount
	// must still find whole.
	fillUp(t, f, "/d3/fill")
	repairClean(t, img)
	script := `run
mount /dev/sda /
rm /d3/fill
write-append /d0/grow0 more-from-the-kernel
fill 65 300000 /d0/grow1
truncate-size /d0/small1 0
rm /d0/small2
rm /d1/trunc
fallocate64 /d2/prealloc 1000000
fill 66 200000 /d3/kfile
mkdir /d3/kdir
write /d3/kdir/x hello
umount-all
echo ==dmesg==
dmesg
`
	out := guestfish(t, img, script)
	_, dmesg, _ := strings.Cut(out, "==dmesg==")
	for _, line := range strings.Split(dmesg, "\n") {
		if xfsKernelErrors.MatchString(line) || strings.Contains(line, "XFS") && strings.Contains(line, "reserv") {
			t.Errorf("kernel: %s", line)
		}
	}
	if !regexp.MustCompile(`XFS \(sd[a-z]\): Unmounting Filesystem`).MatchString(dmesg) {
		t.Fatalf("the kernel did not mount and unmount the filesystem:\n%s", dmesg)
	}
	repairClean(t, img)
	f = openRW(t, img)
	must(f.Remove("/d2/prealloc"))
	must(f.Remove("/d0/grow0"))
	must(f.AppendFile("/d3/kfile", pattern(bs*5, 9)))
	must(f.Truncate("/d0/grow1", int64(bs*3)))
	for i := 0; i < 80; i++ {
		must(f.ReplaceFile(fmt.Sprintf("/d3/kdir/after%d", i), pattern(bs+i, byte(i))))
	}
	must(f.Flush())
	repairClean(t, img)
	got, err := openImage(t, img, nil).ReadFile("/d3/kfile")
	if err != nil || len(got) != 200000+bs*5 || got[0] != 66 {
		t.Fatalf("/d3/kfile: %d bytes, %v", len(got), err)
	}
}

// TestRmapHostile: a reverse mapping that does not match the file it
// maps (another owner, a length past the AG) is corruption met before
// any write: removing the file fails with vfs.ErrCorrupt naming the
// rmapbt and the image keeps every byte.
func TestRmapHostile(t *testing.T) {
	for _, c := range []struct {
		name, field, value string
	}{
		{"other owner", "owner", "123456"},
		{"length past the AG", "blockcount", "1000000000"},
		{"zero length", "blockcount", "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := emptyImage(t, "-m", "rmapbt=1", "-d", "agcount=4")
			f := openRW(t, img)
			if err := f.ReplaceFile("/victim", pattern(3*f.BlockSize(), 5)); err != nil {
				t.Fatal(err)
			}
			if err := f.Flush(); err != nil {
				t.Fatal(err)
			}
			ino := mustIno(t, f, "/victim")
			ag := uint32(ino >> (f.geo.agBlkLog + f.geo.inoPBLog))
			idx := -1
			for i, r := range rmapRecords(t, f, ag) {
				if r.owner == ino {
					idx = i
				}
			}
			if idx < 0 {
				t.Fatalf("no reverse mapping names inode %d", ino)
			}
			if lv := dbField(t, img, "rmaplevel", fmt.Sprintf("agf %d", ag)); lv != 1 {
				t.Fatalf("rmap btree of %d levels: the test patches the root leaf", lv)
			}
			xfsDBWrite(t, img, fmt.Sprintf("agf %d", ag), "addr rmaproot", fmt.Sprintf("write recs[%d].%s %s", idx+1, c.field, c.value))
			before := fileSum(t, img)
			g := openRW(t, img)
			err := g.Remove("/victim")
			if !errors.Is(err, vfs.ErrCorrupt) || !strings.Contains(err.Error(), "rmapbt") {
				t.Fatalf("removing a file whose reverse mapping is corrupt: %v, want vfs.ErrCorrupt naming the rmapbt", err)
			}
			if fileSum(t, img) != before {
				t.Fatal("the refused removal changed the image")
			}
		})
	}
}

// dbRmapRecs prints AG ag's reverse mappings as xfs_db reads its rmap
// btree root leaf, one "start+count owner offset flags" per line.
func dbRmapRecs(t testing.TB, img string, ag uint32) string {
	t.Helper()
	out := xfsDB(t, img, fmt.Sprintf("agf %d", ag), "addr rmaproot", "p recs")
	var b strings.Builder
	for _, f := range strings.Fields(out) {
		_, rec, ok := strings.Cut(f, ":[")
		if !ok {
			continue
		}
		var start, count, off uint64
		var owner int64
		var unwritten, attr, bmbt int
		if _, err := fmt.Sscanf(strings.TrimSuffix(rec, "]"), "%d,%d,%d,%d,%d,%d,%d", &start, &count, &owner, &off, &unwritten, &attr, &bmbt); err != nil {
			t.Fatalf("xfs_db record %q: %v", f, err)
		}
		fmt.Fprintf(&b, "%d+%d %d %d %d%d%d\n", start, count, owner, off, unwritten, attr, bmbt)
	}
	return b.String()
}

// fmtRmapRecs prints the engine's records as dbRmapRecs does.
func fmtRmapRecs(recs []rmapRec) string {
	var b strings.Builder
	bit := func(v uint64) int {
		if v != 0 {
			return 1
		}
		return 0
	}
	for _, r := range recs {
		fmt.Fprintf(&b, "%d+%d %d %d %d%d%d\n", r.start, r.count, int64(r.owner), r.off, bit(r.flags&rmapOffUnwritten), bit(r.flags&rmapOffAttr), bit(r.flags&rmapOffBmbt))
	}
	return b.String()
}

// fillUp appends to the file at p, in halving chunks, until the engine
// refuses a single block with ErrNoSpace; it returns the bytes written.
func fillUp(t testing.TB, f *FS, p string) []byte {
	t.Helper()
	bs := f.BlockSize()
	var all []byte
	for chunk := int(f.sb.DBlocks / 4); chunk >= 1; {
		data := pattern(chunk*bs, byte(chunk))
		err := f.AppendFile(p, data)
		switch {
		case err == nil:
			all = append(all, data...)
		case errors.Is(err, vfs.ErrNoSpace):
			chunk /= 2
		default:
			t.Fatal(err)
		}
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	return all
}
