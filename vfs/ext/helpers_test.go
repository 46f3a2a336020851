package ext

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// srcTree builds a source tree exercising what the engine reads: small and
// large files, holes, deep paths, many entries, hard links, every kind of
// symlink, fifos, devices, setuid files, other owners and xattrs.
func srcTree(t testing.TB, manyEntries int) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	w := func(p string, data []byte, mode os.FileMode) {
		p = filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewSource(1))
	big := make([]byte, 300_000)
	rng.Read(big)
	w("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"), 0o644)
	w("etc/hostname", []byte("guest\n"), 0o644)
	w("empty", nil, 0o600)
	w("big.bin", big, 0o644)
	w("bin/su", []byte("#!/bin/sh\n"), 0o4755)
	w("a/b/c/d/e/f/g/h/deep.txt", []byte("deep\n"), 0o640)
	sparse := filepath.Join(src, "sparse.img")
	fh, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt([]byte("start"), 0)
	fh.WriteAt([]byte("middle"), 5<<20)
	fh.WriteAt([]byte("end"), 12<<20)
	fh.Close()
	frag, err := os.Create(filepath.Join(src, "frag.bin")) // more extents than the inode holds
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 12; i++ {
		frag.WriteAt([]byte(fmt.Sprintf("chunk %d", i)), i*40_000)
	}
	frag.Close()
	for i := 0; i < manyEntries; i++ {
		w("many/"+manyName(i), []byte(strconv.Itoa(i)), 0o644)
	}
	os.MkdirAll(filepath.Join(src, "links"), 0o755)
	sl := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(src, p)); err != nil {
			t.Fatal(err)
		}
	}
	sl("/etc/passwd", "links/abs")
	sl("../etc/hostname", "links/rel")
	sl("/nowhere/at/all", "links/dangling")
	sl("loop2", "links/loop1")
	sl("loop1", "links/loop2")
	sl("/"+strings.Repeat("./", 40)+"etc/passwd", "links/slow")
	sl("/a/b/c", "links/dir")
	if err := os.Link(filepath.Join(src, "etc/passwd"), filepath.Join(src, "hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Optional extras that need privileges or xattr support on the host
	// filesystem; the comparison reads the source's own metadata, so
	// whatever was created is checked.
	_ = syscall.Mknod(filepath.Join(src, "chardev"), syscall.S_IFCHR|0o600, int(mkdev(4, 65)))
	_ = syscall.Mknod(filepath.Join(src, "blockdev"), syscall.S_IFBLK|0o600, int(mkdev(259, 300)))
	_ = os.Lchown(filepath.Join(src, "etc/hostname"), 1000, 1001)
	_ = os.Lchown(filepath.Join(src, "a"), 70000, 70001)
	_ = syscall.Setxattr(filepath.Join(src, "etc/hostname"), "user.color", []byte("blue"), 0)
	_ = syscall.Setxattr(filepath.Join(src, "etc/hostname"), "user.big", bytes.Repeat([]byte("v"), 300), 0)
	return src
}

func mkdev(major, minor uint64) uint64 {
	return major&0xFFFFF000<<32 | major&0xFFF<<8 | minor&0xFFFFFF00<<12 | minor&0xFF
}

// mkfs builds an image of sizeMB from src with mke2fs and the given
// options, and returns its path.
func mkfs(t testing.TB, src string, sizeMB int, args ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	all := append([]string{"-q", "-F", "-E", "root_owner=0:0"}, args...)
	if src != "" {
		all = append(all, "-d", src)
	}
	all = append(all, img, strconv.Itoa(sizeMB)+"M")
	testtool.Run(t, "mke2fs", all...)
	return img
}

// openImage opens img with opts.
func openImage(t testing.TB, img string, opts *Options) (*FS, error) {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	return Open(fh, st.Size(), opts)
}

func mustOpen(t testing.TB, img string) *FS {
	t.Helper()
	f, err := openImage(t, img, nil)
	if err != nil {
		t.Fatalf("open %s: %v", img, err)
	}
	return f
}

// patch rewrites len(b) bytes of img at off.
func patch(t testing.TB, img string, off int64, b []byte) {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readImg(t testing.TB, img string, off int64, n int) []byte {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, n)
	if _, err := fh.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// editSuper applies edit to img's superblock and refreshes its checksum.
func editSuper(t testing.TB, img string, edit func(sb *layout.Superblock)) {
	t.Helper()
	b := readImg(t, img, layout.SuperblockOffset, layout.SuperblockSize)
	sb, _ := layout.DecodeSuperblock(b)
	edit(sb)
	sb.Encode(b)
	binary.LittleEndian.PutUint32(b[layout.SuperblockChecksumOffset:], crc32c(^uint32(0), b[:layout.SuperblockChecksumOffset]))
	patch(t, img, layout.SuperblockOffset, b)
}

var imapRe = regexp.MustCompile(`located at block (\d+), offset (0x[0-9a-f]+)`)

// inodeOffset asks debugfs where the inode of path sits in img.
func inodeOffset(t testing.TB, img, path string, bs int64) int64 {
	t.Helper()
	out := testtool.Run(t, "debugfs", "-R", "imap "+path, img)
	m := imapRe.FindSubmatch(out)
	if m == nil {
		t.Fatalf("debugfs imap %s: %s", path, out)
	}
	blk, _ := strconv.ParseInt(string(m[1]), 10, 64)
	off, _ := strconv.ParseInt(string(m[2]), 0, 64)
	return blk*bs + off
}

// firstBlock asks debugfs for the first data block of path.
func firstBlock(t testing.TB, img, path string) int64 {
	t.Helper()
	out := testtool.Run(t, "debugfs", "-R", "blocks "+path, img)
	fields := strings.Fields(string(out))
	for _, f := range fields {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			return n
		}
	}
	t.Fatalf("debugfs blocks %s: %s", path, out)
	return 0
}

// mkfsTool runs mke2fs with raw arguments.
func mkfsTool(t testing.TB, args ...string) { testtool.Run(t, "mke2fs", args...) }

// manyName is the i-th name of the big directory: long enough that 2000
// of them need a two-level hash tree with 1 KiB blocks.
func manyName(i int) string {
	return fmt.Sprintf("entry-%05d-%s", i, strings.Repeat("x", 40+i%40))
}
