package oracletest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
)

// debugfsSample are the paths checked against debugfs in every image
// (debugfs runs once per image for all of them).
var debugfsSample = []string{
	"/", "/etc", "/etc/passwd", "/etc/shadow", "/etc/hard2", "/empty", "/emptydir",
	"/sizes/f0000060", "/sizes/f0000061", "/sizes/f0004097", "/sizes/f3145733",
	"/data/hole-middle", "/data/hole-start", "/data/all-hole", "/data/sparse-5g",
	"/links/target", "/links/fast-rel", "/links/fast-59", "/links/slow-60", "/links/slow-long",
	"/dev/fifo", "/dev/null", "/dev/sda", "/dev/big-major",
	"/bin/setuid", "/bin/setgid", "/tmp", "/shared", "/perm/000", "/perm/7777",
	"/home/user", "/odd/owned", "/odd/link", "/odd/big-ids", "/xattr/file",
}

// debugfsStat is what debugfs stat says about an inode.
type debugfsStat struct {
	ino        uint64
	typ        string
	perm       uint32
	uid, gid   uint32
	size       int64
	links      uint32
	mtime      int64
	fastTarget string
	hasFast    bool
	devMajor   uint32
	devMinor   uint32
}

var (
	reInode  = regexp.MustCompile(`Inode: (\d+)\s+Type: (.+?)\s+Mode:\s+(\d+)`)
	reOwner  = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+).*Size: (\d+)`)
	reLinks  = regexp.MustCompile(`Links: (\d+)`)
	reMtime  = regexp.MustCompile(`\smtime: 0x([0-9a-f]+)`)
	reFast   = regexp.MustCompile(`Fast link dest: "(.*)"`)
	reDevice = regexp.MustCompile(`Device major/minor number: ([0-9a-f]+):([0-9a-f]+) \(hex`)
)

// runDebugfsBatch runs requests in one debugfs process and returns each
// request's output.
func runDebugfsBatch(t testing.TB, img string, reqs []string) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(reqs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := string(testtool.Run(t, "debugfs", "-f", f, img))
	parts := strings.Split(out, "debugfs: ")
	if len(parts) != len(reqs)+1 {
		t.Fatalf("debugfs: %d answers to %d requests", len(parts)-1, len(reqs))
	}
	return parts[1:]
}

func parseDebugfsStat(out string) (debugfsStat, error) {
	var s debugfsStat
	m := reInode.FindStringSubmatch(out)
	o := reOwner.FindStringSubmatch(out)
	l := reLinks.FindStringSubmatch(out)
	if m == nil || o == nil || l == nil {
		return s, fmt.Errorf("unparsed debugfs stat output: %.300s", out)
	}
	s.ino, _ = strconv.ParseUint(m[1], 10, 64)
	s.typ = m[2]
	p, _ := strconv.ParseUint(m[3], 8, 32)
	s.perm = uint32(p)
	u, _ := strconv.ParseUint(o[1], 10, 32)
	g, _ := strconv.ParseUint(o[2], 10, 32)
	s.uid, s.gid = uint32(u), uint32(g)
	s.size, _ = strconv.ParseInt(o[3], 10, 64)
	n, _ := strconv.ParseUint(l[1], 10, 32)
	s.links = uint32(n)
	if mt := reMtime.FindStringSubmatch(out); mt != nil {
		v, _ := strconv.ParseUint(mt[1], 16, 64)
		s.mtime = int64(int32(uint32(v))) // low 32 bits, signed (pre-2038 times)
	}
	if f := reFast.FindStringSubmatch(out); f != nil {
		s.fastTarget, s.hasFast = f[1], true
	}
	if d := reDevice.FindStringSubmatch(out); d != nil {
		ma, _ := strconv.ParseUint(d[1], 10, 32)
		mi, _ := strconv.ParseUint(d[2], 10, 32)
		s.devMajor, s.devMinor = uint32(ma), uint32(mi)
	}
	return s, nil
}

// debugfsType maps debugfs's type word to a FileMode type.
var debugfsType = map[string]fs.FileMode{
	"regular": 0, "directory": fs.ModeDir, "symlink": fs.ModeSymlink,
	"FIFO": fs.ModeNamedPipe, "character special": fs.ModeDevice | fs.ModeCharDevice,
	"block special": fs.ModeDevice, "socket": fs.ModeSocket,
}

// compareWithDebugfs checks the sample against debugfs stat and dump.
func compareWithDebugfs(t *testing.T, efs *ext.FS, bi builtImage) {
	dumpDir := t.TempDir()
	var reqs []string
	for i, p := range debugfsSample {
		dump := fmt.Sprintf("dump %s %s/%d", p, dumpDir, i)
		if p == "/data/sparse-5g" {
			dump = "stat " + p // debugfs dump would write all 5 GiB
		}
		reqs = append(reqs, "stat "+p, dump)
	}
	outs := runDebugfsBatch(t, bi.path, reqs)
	for i, p := range debugfsSample {
		if strings.Contains(outs[2*i], "File not found") {
			if bi.layout.tree.noTrailingHoles && strings.HasPrefix(p, "/data/") {
				continue
			}
		}
		ds, err := parseDebugfsStat(outs[2*i])
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		fi, err := efs.Lstat(p)
		if err != nil {
			t.Errorf("Lstat(%q): %v", p, err)
			continue
		}
		wantType, ok := debugfsType[ds.typ]
		if !ok || fi.Mode.Type() != wantType || vfs.UnixPerm(fi.Mode) != ds.perm {
			t.Errorf("%s: engine mode %v (%o), debugfs type %s mode %o", p, fi.Mode, vfs.UnixPerm(fi.Mode), ds.typ, ds.perm)
		}
		if fi.Ino != ds.ino || fi.UID != ds.uid || fi.GID != ds.gid || fi.Size != ds.size || fi.Nlink != ds.links {
			t.Errorf("%s: engine ino %d uid %d gid %d size %d links %d; debugfs %d %d %d %d %d",
				p, fi.Ino, fi.UID, fi.GID, fi.Size, fi.Nlink, ds.ino, ds.uid, ds.gid, ds.size, ds.links)
		}
		if fi.ModTime.Unix() != ds.mtime {
			t.Errorf("%s: engine mtime %d, debugfs %d", p, fi.ModTime.Unix(), ds.mtime)
		}
		if ds.hasFast && fi.Target != ds.fastTarget {
			t.Errorf("%s: engine target %q, debugfs fast link dest %q", p, fi.Target, ds.fastTarget)
		}
		if fi.Mode&fs.ModeDevice != 0 {
			if want := devNumber(ds.devMajor, ds.devMinor); fi.Rdev != want {
				t.Errorf("%s: engine rdev %#x, debugfs %d:%d", p, fi.Rdev, ds.devMajor, ds.devMinor)
			}
		}
		if fi.Mode.IsRegular() && fi.Size <= bigFile {
			want, err := os.ReadFile(fmt.Sprintf("%s/%d", dumpDir, i))
			got, gerr := efs.ReadFile(p)
			if strings.Contains(outs[2*i], "Size of inline data") && int64(len(want)) > fi.Size {
				want = want[:fi.Size] // debugfs 1.47.0 dumps the whole inline area
			}
			if err != nil || gerr != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: engine content (%d bytes, %v) differs from debugfs dump (%d bytes, %v)", p, len(got), gerr, len(want), err)
			}
		}
	}
}

// devNumber encodes a device number as Linux's dev_t (and the host's
// st_rdev) does.
func devNumber(major, minor uint32) uint64 {
	ma, mi := uint64(major), uint64(minor)
	return (ma&0xfff)<<8 | (ma&^0xfff)<<32 | (mi & 0xff) | (mi&^0xff)<<12
}

// checkGuestSemantics checks lookups the source tree cannot answer (the
// host would follow absolute and escaping links out of the tree).
func checkGuestSemantics(t *testing.T, efs *ext.FS, bi builtImage) {
	passwd, err := efs.Lstat("/etc/passwd")
	if err != nil {
		t.Fatalf("Lstat(/etc/passwd): %v", err)
	}
	for _, p := range []string{"/links/fast-abs", "/links/escape", "/links/chain"} {
		fi, err := efs.Stat(p)
		if err != nil || fi.Ino != passwd.Ino {
			t.Errorf("Stat(%q) = ino %d, %v; want /etc/passwd's inode %d", p, fi.Ino, err, passwd.Ino)
		}
	}
	if fi, err := efs.Stat("/links/dir/f0000001"); err != nil || fi.Size != 1 {
		t.Errorf("Stat through a directory symlink: %+v, %v", fi, err)
	}
	for _, p := range []string{"/links/dangling", "/links/to-dangle", "/nonexistent", "/etc/passwd/x"} {
		if _, err := efs.Stat(p); err == nil {
			t.Errorf("Stat(%q) succeeded", p)
		}
		if ok, err := efs.HasFile(p); ok {
			t.Errorf("HasFile(%q) = true, %v", p, err)
		}
	}
	if _, err := efs.Stat("/links/dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(dangling) error = %v, want fs.ErrNotExist", err)
	}
	for _, p := range []string{"/links/loop-a", "/links/self"} {
		if _, err := efs.Stat(p); err == nil {
			t.Errorf("Stat(%q) through a symlink loop succeeded", p)
		}
		if _, err := efs.ReadFile(p); err == nil {
			t.Errorf("ReadFile(%q) through a symlink loop succeeded", p)
		}
	}
	if _, err := efs.ReadFile("/etc"); !errors.Is(err, vfs.ErrIsDir) {
		t.Errorf("ReadFile(/etc) error = %v, want ErrIsDir", err)
	}
	if _, err := efs.ReadDir("/etc/passwd"); !errors.Is(err, vfs.ErrNotDir) {
		t.Errorf("ReadDir(/etc/passwd) error = %v, want ErrNotDir", err)
	}
	if _, err := efs.Readlink("/etc/passwd"); err == nil {
		t.Errorf("Readlink of a regular file succeeded")
	}
	hard := []string{"/links/target", "/links/hard1", "/etc/hard2"}
	for _, p := range hard {
		fi, err := efs.Lstat(p)
		if err != nil || fi.Nlink != 3 || fi.Ino != mustIno(t, efs, hard[0]) {
			t.Errorf("hard link %s: %+v, %v", p, fi, err)
		}
	}
	if n := bi.layout.tree.manyEntries; n > 0 {
		checkMany(t, efs, bi, n)
	}
	if bi.layout.tree.casefold {
		checkCasefold(t, efs, bi)
	}
}

func mustIno(t *testing.T, efs *ext.FS, p string) uint64 {
	fi, err := efs.Lstat(p)
	if err != nil {
		t.Fatalf("Lstat(%q): %v", p, err)
	}
	return fi.Ino
}

// checkMany looks names up in the big indexed directory (the htree path).
func checkMany(t *testing.T, efs *ext.FS, bi builtImage, n int) {
	out := testtool.Run(t, "debugfs", "-R", "htree /many", bi.path)
	if !strings.Contains(string(out), "Root node dump") {
		t.Fatalf("/many is not an indexed directory:\n%.500s", out)
	}
	if want := bi.layout.htreeLevels; !strings.Contains(string(out), fmt.Sprintf("Indirect levels: %d\n", want)) {
		t.Fatalf("/many does not have indirect_levels %d:\n%.300s", want, out)
	}
	target := mustIno(t, efs, "/many/0-target")
	for i := 1; i < n; i += 997 {
		name := fmt.Sprintf("/many/e%06d%s", i, strings.Repeat("n", i%23))
		if fi, err := efs.Lstat(name); err != nil || fi.Ino != target {
			t.Errorf("Lstat(%q) = %+v, %v", name, fi, err)
		}
	}
	checkHashedLookup(t, bi, fmt.Sprintf("/many/e%06d%s", n-1, strings.Repeat("n", (n-1)%23)))
	for _, miss := range []string{"/many/e000001", "/many/E000001n", "/many/zzz"} {
		if _, err := efs.Lstat(miss); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lstat(%q) error = %v, want fs.ErrNotExist", miss, err)
		}
	}
}

// checkCasefold looks names up in the casefold directory by other cases
// and normalisations.
func checkCasefold(t *testing.T, efs *ext.FS, bi builtImage) {
	out := testtool.Run(t, "debugfs", "-R", "stat /cf", bi.path)
	if !strings.Contains(string(out), "Flags: 0x4") {
		t.Fatalf("/cf has no casefold flag:\n%.300s", out)
	}
	for stored, asked := range map[string]string{
		"Mixed_Case_Name_007.TXT": "mixed_case_name_007.txt",
		"Mixed_Case_Name_299.TXT": "MIXED_CASE_NAME_299.TXT",
		"Straße":                  "STRASSE",
		"Émile":                   "E\u0301MILE",
	} {
		want := mustIno(t, efs, "/cf/"+stored)
		fi, err := efs.Lstat("/cf/" + asked)
		if err != nil || fi.Ino != want {
			t.Errorf("casefold Lstat(/cf/%s) = %+v, %v; want inode %d of %q", asked, fi, err, want, stored)
		}
	}
	if _, err := efs.Lstat("/cf/Mixed_Case_Name_300.TXT"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("casefold miss error = %v", err)
	}
	// Outside /cf, names stay case-sensitive.
	if _, err := efs.Lstat("/ETC/passwd"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(/ETC/passwd) error = %v, want fs.ErrNotExist", err)
	}
}

// checkHashedLookup opens the image afresh and looks one name up: the
// engine must follow the hash index (root, index levels, one leaf, the
// inode), where a linear scan would read the whole of /many.
func checkHashedLookup(t *testing.T, bi builtImage, name string) {
	f, err := os.Open(bi.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	cr := &countingReader{f: f}
	efs, err := ext.Open(cr, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dirSize := mustSize(t, efs, "/many")
	before, reads := cr.bytes.Load(), cr.reads.Load()
	if _, err := efs.Lstat(name); err != nil {
		t.Fatalf("Lstat(%q): %v", name, err)
	}
	got := cr.bytes.Load() - before
	limit := int64(bi.layout.htreeLevels+4) * int64(efs.BlockSize())
	if got > limit {
		t.Errorf("Lstat(%q) read %d bytes in %d reads (limit %d); /many is %d bytes: not a hashed lookup",
			name, got, cr.reads.Load()-reads, limit, dirSize)
	}
	t.Logf("hashed lookup in /many (%d bytes, htree levels %d): %d reads, %d bytes",
		dirSize, bi.layout.htreeLevels+1, cr.reads.Load()-reads, got)
}

func mustSize(t *testing.T, efs *ext.FS, p string) int64 {
	fi, err := efs.Lstat(p)
	if err != nil {
		t.Fatalf("Lstat(%q): %v", p, err)
	}
	return fi.Size
}
