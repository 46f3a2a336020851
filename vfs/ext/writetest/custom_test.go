package writetest

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// customSpecs are the filesystems the customisation operations are
// checked on: ext2 and ext3 block maps (with 128-byte inodes: no in-body
// attributes, no time extras), ext4 with and without metadata_csum,
// 1 KiB blocks, and inline_data.
var customSpecs = []string{"ext2-1k", "ext3-4k", "ext3-1k-128", "ext4", "ext4-nocsum", "ext4-1k", "ext4-inline"}

var (
	reLinks   = regexp.MustCompile(`Links: (\d+)`)
	reFileACL = regexp.MustCompile(`File ACL: (\d+)`)
	reBlocks  = regexp.MustCompile(`Blockcount: (\d+)`)
	reMtime   = regexp.MustCompile(`(?m)^\s*mtime: (0x[0-9a-f]+)(?::([0-9a-f]+))?`)
	reAtime   = regexp.MustCompile(`(?m)^\s*atime: (0x[0-9a-f]+)(?::([0-9a-f]+))?`)
)

// statNum reads one number debugfs' stat prints for p.
func statNum(t *testing.T, img, p string, re *regexp.Regexp) int64 {
	t.Helper()
	out := debugfs(t, img, "stat "+p)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("debugfs stat %s has no %s:\n%s", p, re, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// oracle checks the image after a step: e2fsck -fn clean.
func oracle(t *testing.T, img, step string) {
	t.Helper()
	if out, ok := fsck(t, img); !ok {
		t.Fatalf("e2fsck -fn after %s:\n%s", step, out)
	}
}

// TestCustomOpsOracle runs Rename, Link, SetXattr/RemoveXattr, SetTimes
// and Truncate on each filesystem of customSpecs, with e2fsck -fn after
// every step and debugfs reading back what was written.
func TestCustomOpsOracle(t *testing.T) {
	for _, name := range customSpecs {
		t.Run(name, func(t *testing.T) {
			spec := specByName(t, name)
			img := mkfs(t, spec, "")
			_, fsys, err := openImage(t, img, ext.Options{})
			must(t, err)
			customSteps(t, fsys, img, spec)
		})
	}
}

func customSteps(t *testing.T, fsys *ext.FS, img string, spec imageSpec) {
	must(t, fsys.MakePath("/d/sub/deep"))
	must(t, fsys.MakePath("/e"))
	must(t, fsys.MakePath("/h"))
	must(t, fsys.ReplaceFile("/d/f", []byte("small")))
	must(t, fsys.ReplaceFile("/d/sub/deep/x", []byte("deep")))
	big := pattern(200<<10, "big")
	must(t, fsys.ReplaceFile("/d/big", big))
	for i := range 300 { // several blocks: an htree on dir_index filesystems
		must(t, fsys.ReplaceFile(fmt.Sprintf("/h/entry-with-a-longish-name-%03d", i), []byte{byte(i)}))
	}
	oracle(t, img, "setup")

	// Rename: across directories, within an htree, directories in and out
	// of an htree, onto an empty directory, replacing a file.
	must(t, fsys.Rename("/d/f", "/e/f2"))
	oracle(t, img, "rename file across directories")
	if st := debugfsStat(t, img, "/d/f"); st.found {
		t.Error("/d/f still there after the rename")
	}
	wantCat(t, img, "/e/f2", "small")
	d0, h0 := statNum(t, img, "/d", reLinks), statNum(t, img, "/h", reLinks)
	must(t, fsys.Rename("/d/sub", "/h/sub"))
	oracle(t, img, "rename directory into /h")
	if d1, h1 := statNum(t, img, "/d", reLinks), statNum(t, img, "/h", reLinks); d1 != d0-1 || h1 != h0+1 {
		t.Errorf("links after moving a directory: /d %d -> %d, /h %d -> %d", d0, d1, h0, h1)
	}
	if out := debugfs(t, img, "ls -l /h/sub/.."); !strings.Contains(out, "entry-with-a-longish-name-000") {
		t.Errorf("/h/sub/.. does not list /h:\n%.400s", out)
	}
	must(t, fsys.Rename("/h/entry-with-a-longish-name-007", "/h/renamed-in-place"))
	oracle(t, img, "rename inside /h")
	wantCat(t, img, "/h/renamed-in-place", "\x07")
	// An htree directory itself changes parent: its ".." lives in the
	// index root, whose dx tail checksum covers it.
	if st := debugfsStat(t, img, "/h"); !spec.indirect && st.flags&flagIndex == 0 && !strings.Contains(spec.name, "inline") {
		t.Errorf("/h has no index (flags %#x): the htree case is not exercised", st.flags)
	}
	must(t, fsys.MakePath("/e/hp"))
	must(t, fsys.Rename("/h", "/e/hp/h"))
	oracle(t, img, "rename an htree directory to another parent")
	must(t, fsys.Rename("/e/hp/h", "/h"))
	oracle(t, img, "rename it back")
	// On inline_data the moved directory is inline: its ".." is i_block[0].
	if st := debugfsStat(t, img, "/h/sub"); strings.Contains(spec.name, "inline") && st.flags&flagInline == 0 {
		t.Errorf("/h/sub is not inline on %s (flags %#x): the inline case is not exercised", spec.name, st.flags)
	}
	must(t, fsys.MakePath("/e/empty"))
	must(t, fsys.Rename("/h/sub", "/e/empty"))
	oracle(t, img, "rename a directory onto an empty one")
	wantCat(t, img, "/e/empty/deep/x", "deep")
	must(t, fsys.ReplaceFile("/e/victim", []byte("victim")))
	must(t, fsys.Rename("/e/f2", "/e/victim"))
	oracle(t, img, "rename replacing a file")
	wantCat(t, img, "/e/victim", "small")
	before := fileSHA(t, img)
	vfstest.WantErr(t, fsys.Rename("/e", "/e/empty/deep/e"), fs.ErrInvalid, "/e/empty/deep/e")
	vfstest.WantErr(t, fsys.Rename("/d", "/e/empty"), fs.ErrExist, "/e/empty")
	if fileSHA(t, img) != before {
		t.Error("a refused rename changed the image")
	}

	// Link.
	must(t, fsys.Link("/d/big", "/e/big2"))
	oracle(t, img, "link")
	if n := statNum(t, img, "/e/big2", reLinks); n != 2 {
		t.Errorf("links of /d/big after Link: %d", n)
	}
	vfstest.WantErr(t, fsys.Link("/d", "/e/dirlink"), vfs.ErrIsDir, "/d")

	// Extended attributes: small (in the inode when it has room), large
	// (the xattr block), then removed (block released).
	must(t, fsys.SetXattr("/d/big", "user.small", []byte("v")))
	oracle(t, img, "setxattr small")
	must(t, fsys.SetXattr("/d/big", "security.selinux", []byte("system_u:object_r:etc_t:s0\x00")))
	large := strings.Repeat("L", 600)
	must(t, fsys.SetXattr("/d/big", "user.large", []byte(large)))
	oracle(t, img, "setxattr large")
	out := debugfs(t, img, "ea_list /d/big")
	for _, want := range []string{`user.small (1) = "v"`, `user.large (600)`, `security.selinux (27)`} {
		if !strings.Contains(out, want) {
			t.Errorf("ea_list /d/big lacks %s:\n%s", want, out)
		}
	}
	if acl := statNum(t, img, "/d/big", reFileACL); acl == 0 {
		t.Error("a 600-byte value and no xattr block")
	}
	must(t, fsys.SetXattr("/d/big", "user.small", []byte("replaced")))
	must(t, fsys.RemoveXattr("/d/big", "user.large"))
	must(t, fsys.RemoveXattr("/d/big", "security.selinux"))
	oracle(t, img, "removexattr")
	out = debugfs(t, img, "ea_list /d/big")
	if !strings.Contains(out, `user.small (8) = "replaced"`) || strings.Contains(out, "user.large") {
		t.Errorf("ea_list /d/big after replace and remove:\n%s", out)
	}
	must(t, fsys.RemoveXattr("/d/big", "user.small"))
	oracle(t, img, "removexattr last")
	if acl := statNum(t, img, "/d/big", reFileACL); acl != 0 {
		t.Errorf("xattr block %d kept with no attribute in it", acl)
	}
	vfstest.WantErr(t, fsys.RemoveXattr("/d/big", "user.small"), vfs.ErrNoXattr, "/d/big")
	must(t, fsys.SetXattr("/e/empty", "user.dir", []byte("d")))
	must(t, fsys.SetXattr("/h/renamed-in-place", "user.x", bytes.Repeat([]byte{1}, 300)))
	oracle(t, img, "setxattr on a directory and an inline file")

	// Times.
	extra := !strings.Contains(spec.name, "-128") // 256-byte inodes have the time extras
	mt := time.Date(2011, 12, 13, 14, 15, 16, 0, time.UTC)
	if extra {
		mt = time.Date(2100, 1, 2, 3, 4, 5, 123456700, time.UTC) // past 2038: the epoch bits
	}
	at := time.Date(1999, 9, 9, 9, 9, 9, 900, time.UTC)
	must(t, fsys.SetTimes("/d/big", at, mt))
	oracle(t, img, "utimes")
	out = debugfs(t, img, "stat /d/big")
	m := reMtime.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no mtime in debugfs stat:\n%s", out)
	}
	sec, _ := strconv.ParseUint(m[1], 0, 32)
	var ext32 uint64
	if m[2] != "" {
		ext32, _ = strconv.ParseUint(m[2], 16, 32)
	}
	gotSec := int64(int32(sec)) + int64(ext32&3)<<32
	if gotSec != mt.Unix() || extra && int64(ext32>>2) != int64(mt.Nanosecond()) {
		t.Errorf("mtime on disk %#x:%#x, want %v", sec, ext32, mt)
	}
	if a := reAtime.FindStringSubmatch(out); a == nil || mustParse(a[1]) != uint64(uint32(at.Unix())) {
		t.Errorf("atime on disk %v, want %#x", a, at.Unix())
	}
	if !extra {
		vfstest.WantErr(t, fsys.SetTimes("/d/big", at, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)), fs.ErrInvalid, "/d/big")
	}

	// Truncate: shrink (blocks freed), grow (a hole), inline growth.
	blocks0 := statNum(t, img, "/d/big", reBlocks)
	must(t, fsys.Truncate("/d/big", 5000))
	oracle(t, img, "truncate shrink")
	wantCat(t, img, "/d/big", string(big[:5000]))
	blocks1 := statNum(t, img, "/d/big", reBlocks)
	if blocks1 >= blocks0 {
		t.Errorf("Blockcount %d -> %d after shrinking", blocks0, blocks1)
	}
	must(t, fsys.Truncate("/d/big", 10<<20))
	oracle(t, img, "truncate grow")
	if b := statNum(t, img, "/d/big", reBlocks); b != blocks1 {
		t.Errorf("Blockcount %d -> %d after growing: the hole was allocated", blocks1, b)
	}
	if st := debugfsStat(t, img, "/d/big"); st.size != 10<<20 {
		t.Errorf("size %d after growing", st.size)
	}
	got, err := fsys.ReadFile("/d/big")
	must(t, err)
	if !bytes.Equal(got[:5000], big[:5000]) || !bytes.Equal(got[5000:], make([]byte, 10<<20-5000)) {
		t.Error("grown file does not read as its head and zeros")
	}
	must(t, fsys.Truncate("/e/victim", 100))
	must(t, fsys.Truncate("/e/victim", 9000))
	oracle(t, img, "truncate grow a small file")
	wantCat(t, img, "/e/victim", "small"+string(make([]byte, 9000-5)))
	if st := debugfsStat(t, img, "/e/victim"); st.flags&flagInline != 0 {
		t.Error("a 9000-byte file is still inline")
	}
}

func mustParse(s string) uint64 {
	n, _ := strconv.ParseUint(s, 0, 64)
	return n
}

// wantCat checks a file's content as debugfs reads it.
func wantCat(t *testing.T, img, p, want string) {
	t.Helper()
	got, err := debugfsOut(t, img, "cat "+p)
	if err != nil {
		t.Fatal(err)
	}
	// debugfs 1.47 cats an inline-data file's whole 60-byte i_block area
	// (a file mke2fs -d made prints the same); the size says what is data.
	if st := debugfsStat(t, img, p); st.flags&flagInline != 0 && int64(len(got)) > st.size {
		got = got[:st.size]
	}
	if string(got) != want {
		t.Errorf("debugfs cat %s: %d bytes %.40q, want %d bytes %.40q", p, len(got), got, len(want), want)
	}
}
