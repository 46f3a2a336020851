package ext

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
)

// dumpLayout is where dumpe2fs (the oracle) says each group's metadata is.
type dumpLayout struct {
	groups []map[string]uint64 // per group: "gdt", "rgdt", "sb", "bb", "ib", "it", "free"
}

var layoutRe = regexp.MustCompile(`(?m)^Group (\d+):|(Primary superblock|Backup superblock|Group descriptors|Reserved GDT blocks|Block bitmap|Inode bitmap|Inode table) at (\d+)|Free blocks: (\d+)`)

func dumpe2fsLayout(t testing.TB, img string) dumpLayout {
	t.Helper()
	out := testtool.Run(t, "dumpe2fs", img)
	var l dumpLayout
	keys := map[string]string{"Primary superblock": "sb", "Backup superblock": "sb", "Group descriptors": "gdt",
		"Reserved GDT blocks": "rgdt", "Block bitmap": "bb", "Inode bitmap": "ib", "Inode table": "it"}
	for _, m := range layoutRe.FindAllStringSubmatch(string(out), -1) {
		switch {
		case m[1] != "":
			l.groups = append(l.groups, map[string]uint64{})
		case len(l.groups) == 0:
		case m[2] != "":
			v, _ := strconv.ParseUint(m[3], 10, 64)
			l.groups[len(l.groups)-1][keys[m[2]]] = v
		case m[4] != "":
			v, _ := strconv.ParseUint(m[4], 10, 64)
			if _, ok := l.groups[len(l.groups)-1]["free"]; !ok {
				l.groups[len(l.groups)-1]["free"] = v
			}
		}
	}
	if len(l.groups) < 2 {
		t.Fatalf("dumpe2fs %s: %d groups parsed", img, len(l.groups))
	}
	return l
}

func (l dumpLayout) at(t testing.TB, g int, key string) uint64 {
	t.Helper()
	v, ok := l.groups[g][key]
	if !ok {
		t.Fatalf("dumpe2fs gives no %s for group %d", key, g)
	}
	return v
}

// debugfsBmap asks debugfs which block logical block lblk of p is.
func debugfsBmap(t testing.TB, img, p string, lblk int) uint64 {
	t.Helper()
	out := strings.TrimSpace(string(debugfsOut(t, img, fmt.Sprintf("bmap %s %d", p, lblk))))
	v, err := strconv.ParseUint(out, 10, 64)
	if err != nil || v == 0 {
		t.Fatalf("debugfs bmap %s %d: %q", p, lblk, out)
	}
	return v
}

func imageSum(t testing.TB, img string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// wantRefused runs op on a fresh writable open of img and requires it to
// fail with an error wrapping vfs.ErrCorrupt (and ErrBadTarget when
// badTarget), naming each of names, with img unchanged.
func wantRefused(t *testing.T, img, what string, badTarget bool, names []string, op func(w wfs) error) {
	t.Helper()
	before := imageSum(t, img)
	err := op(openW(t, img))
	switch {
	case err == nil:
		t.Fatalf("%s: accepted", what)
	case !errors.Is(err, vfs.ErrCorrupt):
		t.Fatalf("%s: error does not wrap vfs.ErrCorrupt: %v", what, err)
	case badTarget && !errors.Is(err, ErrBadTarget):
		t.Fatalf("%s: error does not wrap ErrBadTarget: %v", what, err)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%s: error does not name %q: %v", what, n, err)
		}
	}
	if imageSum(t, img) != before {
		t.Fatalf("%s: refused (%v) but the image changed", what, err)
	}
}

// TestWriteRefusesMetadataTargets (audit R9): a file whose extent (or
// block map) names filesystem metadata, a block its bitmap marks free, or
// a directory block the lookup just read: appending, replacing and
// removing it are refused before anything is written, with an error
// naming the inode, the logical and the physical block.
func TestWriteRefusesMetadataTargets(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(src+"/f", []byte("one block of content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := mkfs(t, src, 64, "-t", "ext4", "-b", "1024") // flex_bg: group 1's metadata lies in group 0
	l := dumpe2fsLayout(t, base)
	targets := []struct {
		name string
		blk  uint64
		meta bool
	}{
		{"gdt", l.at(t, 0, "gdt"), true},
		{"reserved-gdt", l.at(t, 0, "rgdt") + 5, true},
		{"backup-superblock", l.at(t, 1, "sb"), true},
		{"backup-gdt", l.at(t, 1, "gdt"), true},
		{"block-bitmap-g0", l.at(t, 0, "bb"), true},
		{"block-bitmap-g1-in-g0", l.at(t, 1, "bb"), true},
		{"inode-bitmap-g0", l.at(t, 0, "ib"), true},
		{"inode-table-g0", l.at(t, 0, "it"), true},
		{"inode-table-g1-in-g0", l.at(t, 1, "it") + 7, true},
		{"journal", debugfsBmap(t, base, "<8>", 10), true},
		{"free-block", l.at(t, 0, "free") + 3, false},
		{"root-dir-block", debugfsBmap(t, base, "/", 0), false},
	}
	for _, k := range targets {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			img := t.TempDir() + "/t.img"
			if err := os.WriteFile(img, fileBytes(t, base), 0o644); err != nil {
				t.Fatal(err)
			}
			testtool.Run(t, "debugfs", "-w", "-R", fmt.Sprintf("sif /f block[5] %d", k.blk), img) // first extent's start
			ino := fmt.Sprintf("inode %d", debugfsIno(t, img, "/f"))
			names := []string{ino, "logical block 0", fmt.Sprintf("physical block %d", k.blk)}
			if k.meta {
				names = append(names, "filesystem metadata")
			}
			wantRefused(t, img, "append", true, names, func(w wfs) error { return w.AppendFile("/f", []byte("more\n")) })
			// Replacing gives the file new blocks and frees the old one, and
			// removing frees it: both refused, naming the block.
			freeing := []string{ino, fmt.Sprintf("block %d", k.blk)}
			wantRefused(t, img, "replace", true, freeing, func(w wfs) error { return w.ReplaceFile("/f", bytes.Repeat([]byte{'x'}, 1024)) })
			wantRefused(t, img, "remove", true, freeing, func(w wfs) error { return w.Remove("/f") })
		})
	}
}

// debugfsIno is the inode number of p.
func debugfsIno(t testing.TB, img, p string) uint32 {
	t.Helper()
	out := string(debugfsOut(t, img, "stat "+p))
	m := regexp.MustCompile(`Inode: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("debugfs stat %s: %q", p, out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 32)
	return uint32(n)
}

// TestWriteRefusesMMPTarget: the MMP block is metadata too.
func TestWriteRefusesMMPTarget(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(src+"/f", []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := mkfs(t, src, 64, "-t", "ext4", "-O", "mmp")
	out := string(testtool.Run(t, "dumpe2fs", "-h", img))
	m := regexp.MustCompile(`MMP block number:\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dumpe2fs -h names no MMP block:\n%s", out)
	}
	testtool.Run(t, "debugfs", "-w", "-R", "sif /f block[5] "+m[1], img)
	wantRefused(t, img, "append", true, []string{"physical block " + m[1], "MMP block"}, func(w wfs) error { return w.AppendFile("/f", []byte("x")) })
}

// TestWriteRefusesBlockMapTargets: the same through an ext3 block map: a
// direct pointer, and an indirect block pointer, naming metadata.
func TestWriteRefusesBlockMapTargets(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(src+"/f", bytes.Repeat([]byte("0123456789abcdef"), 20*1024/16), 0o644); err != nil {
		t.Fatal(err)
	}
	base := mkfs(t, src, 64, "-t", "ext3", "-b", "1024")
	l := dumpe2fsLayout(t, base)
	for _, k := range []struct {
		name, field string
		blk         uint64
		op          func(w wfs) error
	}{
		{"direct-to-gdt", "block[0]", l.at(t, 0, "gdt"), func(w wfs) error { return w.ReplaceFile("/f", []byte("short")) }},
		{"indirect-to-inode-table", "block[IND]", l.at(t, 0, "it") + 2, func(w wfs) error { return w.AppendFile("/f", []byte("tail")) }},
		{"indirect-to-block-bitmap", "block[IND]", l.at(t, 0, "bb"), func(w wfs) error { return w.Remove("/f") }},
	} {
		t.Run(k.name, func(t *testing.T) {
			img := t.TempDir() + "/t.img"
			if err := os.WriteFile(img, fileBytes(t, base), 0o644); err != nil {
				t.Fatal(err)
			}
			testtool.Run(t, "debugfs", "-w", "-R", fmt.Sprintf("sif /f %s %d", k.field, k.blk), img)
			wantRefused(t, img, k.name, true, []string{fmt.Sprintf("block %d", k.blk), "filesystem metadata"}, k.op)
		})
	}
}

// TestWriteAfterFreeReuse: blocks a removal frees are forgotten as the
// removed inode's, so a file given them later is written in place
// without a false refusal; e2fsck agrees.
func TestWriteAfterFreeReuse(t *testing.T) {
	img := mkfs(t, "", 16, "-t", "ext4", "-b", "1024", "-O", "^flex_bg")
	w := openW(t, img)
	if err := w.MakePath("/d/sub"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := w.ReplaceFile(fmt.Sprintf("/d/sub/f%02d", i), bytes.Repeat([]byte{'a'}, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.ReadDir("/d/sub"); err != nil { // the engine reads (and remembers) the directory blocks
		t.Fatal(err)
	}
	dirBlk := debugfsBmap(t, img, "/d/sub", 0)
	for i := 0; i < 20; i++ {
		if err := w.Remove(fmt.Sprintf("/d/sub/f%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Remove("/d/sub"); err != nil {
		t.Fatal(err)
	}
	reused := false
	data := bytes.Repeat([]byte("reuse\n"), 2000)
	for i := 0; i < 40 && !reused; i++ {
		p := fmt.Sprintf("/g%02d", i)
		if err := w.ReplaceFile(p, data); err != nil {
			t.Fatal(err)
		}
		for _, b := range fileBlocksOf(t, w, p) {
			if b == dirBlk {
				reused = true
				data[0]++
				if err := w.ReplaceFile(p, data); err != nil { // in place, through the existing map
					t.Fatalf("overwriting %s, which reuses the removed directory's block %d: %v", p, dirBlk, err)
				}
			}
		}
	}
	if !reused {
		t.Fatalf("no new file reused the removed directory's block %d: the test proves nothing", dirBlk)
	}
	fsck(t, img)
}

// fileBlocksOf lists the physical blocks of p through the engine.
func fileBlocksOf(t testing.TB, w wfs, p string) []uint64 {
	t.Helper()
	ino := w.lookupTest(t, strings.TrimPrefix(p, "/"))
	in, err := w.inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.mapperFor(in)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	bs := uint64(w.geo.blockSize)
	for l := uint64(0); l < (uint64(in.size)+bs-1)/bs; {
		r, err := m.mapBlock(l)
		if err != nil {
			t.Fatal(err)
		}
		n := min(r.n, (uint64(in.size)+bs-1)/bs-l)
		for i := uint64(0); i < n && !r.zero; i++ {
			out = append(out, r.pblk+i)
		}
		l += n
	}
	return out
}

// TestCommitRefusesUncheckedTarget: the commit-time check catches a block
// of filesystem metadata handed to the transaction as data by a path
// that did not check it (here, directly), before the first write.
func TestCommitRefusesUncheckedTarget(t *testing.T) {
	img := mkfs(t, "", 64, "-t", "ext4", "-b", "1024")
	gdt := dumpe2fsLayout(t, img).at(t, 0, "gdt")
	before := imageSum(t, img)
	w := openW(t, img)
	tx, err := w.begin()
	if err != nil {
		t.Fatal(err)
	}
	b, err := tx.metaBlock(gdt, kindData)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if err := tx.commit(); !errors.Is(err, ErrBadTarget) || !strings.Contains(err.Error(), "filesystem metadata") {
		t.Fatalf("commit of a data block over the GDT: %v, want ErrBadTarget naming filesystem metadata", err)
	}
	if imageSum(t, img) != before {
		t.Fatal("refused at commit but the image changed")
	}
}

// TestAllocRefusesFlexMetadataMarkedFree: a block bitmap that calls
// free a block holding ANOTHER group's inode table (flex_bg packs group
// 1's table into group 0) does not get that block allocated.
func TestAllocRefusesFlexMetadataMarkedFree(t *testing.T) {
	img := mkfs(t, "", 64, "-t", "ext4", "-b", "1024", "-O", "^metadata_csum")
	l := dumpe2fsLayout(t, img)
	it1, bb0 := l.at(t, 1, "it"), l.at(t, 0, "bb")
	if it1 >= 8193 {
		t.Fatalf("group 1's inode table at %d is not in group 0", it1)
	}
	bit := it1 - 1 // group 0 starts at block 1 with 1 KiB blocks
	off := int64(bb0)*1024 + int64(bit/8)
	b := readImg(t, img, off, 1)
	patch(t, img, off, []byte{b[0] &^ (1 << (bit % 8))})
	before := imageSum(t, img)
	err := openW(t, img).ReplaceFile("/new", []byte("data\n"))
	if !errors.Is(err, vfs.ErrCorrupt) || !strings.Contains(err.Error(), "inode table of group 1") {
		t.Fatalf("allocating with group 1's inode table marked free: %v, want a corrupt error naming it", err)
	}
	if imageSum(t, img) != before {
		t.Fatal("refused but the image changed")
	}
}

// TestWriteRefusesMisplacedBitmap: a group descriptor (no checksums to
// catch it) whose inode bitmap names group 1's block bitmap: allocating
// an inode would write the inode bitmap over it; refused, image
// unchanged.
func TestWriteRefusesMisplacedBitmap(t *testing.T) {
	img := mkfs(t, "", 64, "-t", "ext4", "-b", "1024", "-O", "^metadata_csum,^uninit_bg")
	l := dumpe2fsLayout(t, img)
	bb1 := l.at(t, 1, "bb")
	off := int64(l.at(t, 0, "gdt"))*1024 + 4 // group 0's bg_inode_bitmap_lo
	le := []byte{byte(bb1), byte(bb1 >> 8), byte(bb1 >> 16), byte(bb1 >> 24)}
	patch(t, img, off, le)
	before := imageSum(t, img)
	err := openW(t, img).ReplaceFile("/new", []byte("data\n"))
	if !errors.Is(err, ErrBadTarget) || !strings.Contains(err.Error(), "block bitmap of group 1") {
		t.Fatalf("creating a file with group 0's inode bitmap on group 1's block bitmap: %v, want ErrBadTarget naming it", err)
	}
	if imageSum(t, img) != before {
		t.Fatal("refused but the image changed")
	}
}
