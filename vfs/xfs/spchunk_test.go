package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// twoAGImage makes a two-AG 64 MiB filesystem: below mkfs.xfs's 300 MB
// floor, which xfsprogs lifts for its own test suite's variables.
func twoAGImage(t *testing.T, args ...string) string {
	t.Helper()
	needTool(t, "mkfs.xfs")
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mkfs.xfs", append(append([]string{"-q", "-f", "-d", "agcount=2"}, args...), img)...)
	cmd.Env = append(os.Environ(), "TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs %v: %v\n%s", args, err, out)
	}
	return img
}

var inobtRecRE = regexp.MustCompile(`(?m)^\d+:\[(\d+),(\d+|0x[0-9a-f]+),(\d+),(\d+),(\d+|0x[0-9a-f]+)\]`)

// inobtRecs reads the records of AG ag's inode btree (one leaf) with xfs_db.
func inobtRecs(t *testing.T, img string, ag int) [][4]uint64 {
	t.Helper()
	out := xfsDB(t, img, fmt.Sprintf("agi %d", ag), "addr root", "p")
	if !bytes.Contains([]byte(out), []byte("level = 0")) {
		t.Fatalf("xfs_db: the inobt root is not a leaf:\n%s", out)
	}
	var recs [][4]uint64
	for _, m := range inobtRecRE.FindAllStringSubmatch(out, -1) {
		var r [4]uint64
		for i := range r {
			v, err := strconv.ParseUint(m[i+1], 0, 64)
			if err != nil {
				t.Fatal(err)
			}
			r[i] = v
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		t.Fatalf("xfs_db printed no inobt record:\n%s", out)
	}
	return recs
}

// TestSparseInodeChunk: on an AG fragmented so that no aligned full
// inode chunk fits (7-block files filling it, every other one removed)
// and with every inode in use, creating files takes sparse inode chunks
// (sb_spino_align blocks, a sparse inobt/finobt record, merged with the
// chunk's existing record) where the filesystem has the feature:
// xfs_repair -n is clean, xfs_db shows records with holes and
// consistent counts, and a fresh open reads every name and the kept
// files. Without the feature the create is refused with ErrNoSpace and
// the image keeps every byte.
func TestSparseInodeChunk(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		sparse bool
	}{
		{"sparse", []string{"-i", "sparse=1"}, true},
		{"sparse-rmapbt", []string{"-i", "sparse=1", "-m", "rmapbt=1"}, true},
		{"nosparse", []string{"-i", "sparse=0"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := twoAGImage(t, c.args...)
			f := openRW(t, img)
			bs := int(f.geo.blockSize)
			data := pattern(7*bs, 3)
			for _, d := range []string{"/fill", "/e"} {
				if err := f.MakePath(d); err != nil {
					t.Fatal(err)
				}
			}
			n := 0
			for size := 7 * bs; size > 0; size -= 6 * bs {
				for {
					if n > 20000 {
						t.Fatal("the filesystem never filled")
					}
					err := f.AppendFile(fmt.Sprintf("/fill/%d", n), data[:size])
					if errors.Is(err, ErrNoSpace) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					n++
				}
			}
			for i := 0; i < n; i += 2 {
				if err := f.Remove(fmt.Sprintf("/fill/%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			// The engine keeps the kernel's reserve free, in one extent
			// at the end of an AG: files the size of each AG's longest
			// free extent take those, so that only the 7-block holes
			// stay, none holding an aligned 8-block chunk.
			var bigs []string
			for ag := 0; len(bigs) < 40; ag = (ag + 1) % 2 {
				longest := dbField(t, img, "longest", fmt.Sprintf("agf %d", ag))
				if longest < 8 {
					if other := dbField(t, img, "longest", fmt.Sprintf("agf %d", 1-ag)); other < 8 {
						break
					}
					continue
				}
				p := fmt.Sprintf("/big%d", len(bigs))
				if err := f.AppendFile(p, pattern(int(longest)*bs, byte(len(bigs)))); err != nil {
					t.Fatalf("%s of %d blocks: %v", p, longest, err)
				}
				bigs = append(bigs, p)
			}
			repairClean(t, img)
			ifree := int(dbField(t, img, "ifree", "sb 0"))
			longest := max(dbField(t, img, "longest", "agf 0"), dbField(t, img, "longest", "agf 1"))
			t.Logf("%d files, %d big files, %d free inodes, longest free extent %d blocks", n, len(bigs), ifree, longest)
			if longest >= 8 {
				t.Fatalf("the longest free extent holds %d blocks: not fragmented", longest)
			}
			for i := 0; i < ifree; i++ {
				if err := f.AppendFile(fmt.Sprintf("/e/%d", i), nil); err != nil {
					t.Fatalf("using up free inode %d of %d: %v", i, ifree, err)
				}
			}
			if got := dbField(t, img, "ifree", "sb 0"); got != 0 {
				t.Fatalf("%d inodes still free", got)
			}
			names := ifree
			if !c.sparse {
				before, err := os.ReadFile(img)
				if err != nil {
					t.Fatal(err)
				}
				err = f.AppendFile("/e/more", nil)
				if !errors.Is(err, ErrNoSpace) {
					t.Fatalf("create without a free inode or room for a full chunk: %v, want ErrNoSpace", err)
				}
				after, err := os.ReadFile(img)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(before, after) {
					t.Fatal("the refused create changed the image")
				}
			} else {
				icount0 := dbField(t, img, "icount", "sb 0")
				const extra = 100
				for i := 0; i < extra; i++ {
					if err := f.AppendFile(fmt.Sprintf("/e/%d", names), nil); err != nil {
						t.Fatalf("extra file %d: %v", i, err)
					}
					names++
				}
				icount := dbField(t, img, "icount", "sb 0")
				spIno := uint64(f.sb.SpinoAlign) << f.geo.inoPBLog
				if icount <= icount0 || (icount-icount0)%spIno != 0 {
					t.Fatalf("sb_icount %d -> %d: not whole sparse allocations of %d inodes", icount0, icount, spIno)
				}
				holed := 0
				var sum uint64
				var recs [][4]uint64
				for ag := 0; ag < 2; ag++ {
					recs = append(recs, inobtRecs(t, img, ag)...)
				}
				for _, r := range recs {
					startino, holemask, count, freecount := r[0], r[1], r[2], r[3]
					if startino%64 != 0 {
						t.Fatalf("inobt record at %d: not chunk-aligned", startino)
					}
					if holemask != 0 {
						holed++
						if want := 64 - 4*uint64(bitsOnes16(uint16(holemask))); count != want {
							t.Fatalf("record %d: holemask %#x, count %d, want %d", startino, holemask, count, want)
						}
					}
					if freecount > count {
						t.Fatalf("record %d: %d free of %d", startino, freecount, count)
					}
					sum += count
				}
				if holed == 0 {
					t.Fatal("no sparse inode chunk record")
				}
				if sum != icount {
					t.Fatalf("inobt records hold %d inodes, sb_icount %d", sum, icount)
				}
				t.Logf("%d new inodes, %d sparse records", icount-icount0, holed)
			}
			repairClean(t, img)
			g := openImage(t, img, nil)
			ents, err := g.ReadDir("/e")
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != names {
				t.Fatalf("/e holds %d names, want %d", len(ents), names)
			}
			for i, p := range bigs {
				got, err := g.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 || len(got)%bs != 0 || !bytes.Equal(got, pattern(len(got), byte(i))) {
					t.Fatalf("%s: %d bytes, wrong content", p, len(got))
				}
			}
			for i := 1; i < n; i += 2 {
				got, err := g.ReadFile(fmt.Sprintf("/fill/%d", i))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data[:len(got)]) || (len(got) != 7*bs && len(got) != bs) {
					t.Fatalf("/fill/%d: %d bytes, wrong content", i, len(got))
				}
			}
		})
	}
}

func bitsOnes16(x uint16) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// TestSparseInodeChunkMerge: a sparse allocation in the other half of a
// chunk that already has a sparse record merges into that record (as
// xfs_inobt_insert_sprec does) instead of adding a second one for the
// same chunk. The AG is arranged so that the only short free extents are
// the chunk's halves, one after the other: the record ends with no hole,
// 64 inodes, all free, and xfs_repair -n is clean; the inodes then serve
// new files.
func TestSparseInodeChunkMerge(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"sparse", []string{"-i", "sparse=1", "-m", "rmapbt=0"}},
		{"sparse-rmapbt", []string{"-i", "sparse=1", "-m", "rmapbt=1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := emptyImage(t, c.args...)
			f := openRW(t, img)
			sp := f.sb.SpinoAlign
			inoPB := uint32(1) << f.geo.inoPBLog
			chunkBlocks := 64 / inoPB
			align := f.sb.InoAlignMT
			if align != chunkBlocks || sp == 0 || chunkBlocks != 2*sp {
				t.Fatalf("mkfs geometry: chunk %d blocks, inoalignmt %d, spino_align %d", chunkBlocks, align, sp)
			}
			tr, err := f.begin()
			if err != nil {
				t.Fatal(err)
			}
			fa, err := tr.allocGroup(0)
			if err != nil {
				t.Fatal(err)
			}
			a, err := tr.inodeGroup(0)
			if err != nil {
				t.Fatal(err)
			}
			sparse := func() {
				t.Helper()
				_, il := a.inobt.root()
				resv, err := fa.kernelReserve()
				if err != nil {
					t.Fatal(err)
				}
				if err := a.newSparseChunk(fa, uint64(chunkBlocks), uint64(align), uint64(il+1), uint64(resv)); err != nil {
					t.Fatal(err)
				}
			}
			// mkfs leaves short free extents near the AG's start (a
			// sparse allocation takes the shortest that fits): sparse
			// chunks take them first, records of their own.
			hi := fa.bno.agLength()/align*align - chunkBlocks
			for i := 0; ; i++ {
				_, fc, _, ok, err := fa.findAligned(sp, sp, align, hi)
				if err != nil || !ok {
					t.Fatalf("no room for a sparse chunk: %v", err)
				}
				if fc >= 64 {
					break
				}
				if i == 16 {
					t.Fatal("short free extents never ran out")
				}
				sparse()
			}
			chunk, err := fa.allocAligned(chunkBlocks, align, ownInodes)
			if err != nil {
				t.Fatal(err)
			}
			for _, half := range []uint32{1, 0} {
				if err := fa.free(chunk+half*sp, sp, ownInodes); err != nil {
					t.Fatal(err)
				}
				sparse()
			}
			if err := tr.commit(); err != nil {
				t.Fatal(err)
			}
			repairClean(t, img)
			startino := uint64(chunk) << f.geo.inoPBLog
			var found []([4]uint64)
			for _, r := range inobtRecs(t, img, 0) {
				if r[0] == startino {
					found = append(found, r)
				}
			}
			if len(found) != 1 || found[0] != [4]uint64{startino, 0, 64, 64} {
				t.Fatalf("inobt records of chunk %d (blocks %d..): %v, want one [startino, holemask 0, count 64, freecount 64]", startino, chunk, found)
			}
			for i := 0; i < 80; i++ {
				if err := f.AppendFile(fmt.Sprintf("/f%d", i), nil); err != nil {
					t.Fatal(err)
				}
			}
			repairClean(t, img)
			g := openImage(t, img, nil)
			ents, err := g.ReadDir("/")
			if err != nil || len(ents) != 80 {
				t.Fatalf("root lists %d names, %v; want 80", len(ents), err)
			}
		})
	}
}
