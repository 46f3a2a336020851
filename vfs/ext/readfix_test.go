package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// TestReadInlineSizePastStoredBytes: mke2fs -O inline_data -d makes an
// inline-data inode of size 1 MiB from an all-hole 1 MiB file, and
// e2fsck calls it clean; like the kernel, the engine reads the stored
// bytes and zeros after them.
func TestReadInlineSizePastStoredBytes(t *testing.T) {
	testtool.Need(t, "e2fsck")
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(src, "small"), []byte("tiny\n"), 0o644))
	fh, err := os.Create(filepath.Join(src, "holes"))
	must(err)
	must(fh.Truncate(1 << 20))
	must(fh.Close())
	img := mkfs(t, src, 8, "-t", "ext4", "-O", "inline_data,^metadata_csum")
	testtool.Run(t, "e2fsck", "-fn", img)
	f := mustOpen(t, img)
	in, err := f.regular("read", "/holes")
	must(err)
	if !in.flag(layout.FlagInlineData) {
		t.Fatalf("/holes is not inline (flags %#x): the test image does not cover the case", in.raw.Flags)
	}
	b, err := f.ReadFile("/holes")
	if err != nil || len(b) != 1<<20 || !bytes.Equal(b, make([]byte, 1<<20)) {
		t.Fatalf("ReadFile(/holes) = %d bytes (all zero: %v), %v", len(b), bytes.Count(b, []byte{0}) == len(b), err)
	}
	vfstest.WantContent(t, f, "/small", "tiny\n")
	fl, err := f.OpenFile("/holes")
	must(err)
	buf := []byte("xxxxxxxx")
	n, err := fl.ReadAt(buf, 1<<20-4)
	if n != 4 || err != io.EOF || !bytes.Equal(buf[:4], make([]byte, 4)) {
		t.Errorf("ReadAt at the end = %d %q, %v; want 4 zeros and EOF", n, buf[:n], err)
	}

	// A size past what ext can address is still refused, naming the inode.
	off := inodeOffset(t, img, "/holes", f.geo.blockSize)
	var sz [4]byte
	binary.LittleEndian.PutUint32(sz[:], 1<<20) // i_size_high: size 2^52
	patch(t, img, off+0x6C, sz[:])
	f = mustOpen(t, img)
	_, err = f.OpenFile("/holes")
	if !errors.Is(err, vfs.ErrCorrupt) || !strings.Contains(err.Error(), "inode") {
		t.Errorf("OpenFile of an inline inode of size 2^52: %v, want ErrCorrupt naming the inode", err)
	}
}

// TestReadDirKeepsGoodEntries: in e2fsprogs' f_bad_inode_csum some inodes
// of / fail their checksum; ReadDir returns every other entry and, as
// os.ReadDir does, an error naming each bad one by its guest path ("/22",
// not "//22").
func TestReadDirKeepsGoodEntries(t *testing.T) {
	f := corpusImage(t, "f_bad_inode_csum")
	ents, err := f.ReadDir("/")
	if err == nil {
		t.Fatal("ReadDir(/) of f_bad_inode_csum: no error for its bad inodes")
	}
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, vfs.ErrCorrupt) {
		t.Errorf("ReadDir(/) error %v does not match ErrChecksum", err)
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name] = true
	}
	if len(ents) < 50 || !names["1"] || !names["lost+found"] || names["22"] {
		t.Errorf("ReadDir(/) kept %d entries (1: %v, lost+found: %v, 22: %v)", len(ents), names["1"], names["lost+found"], names["22"])
	}
	var bad []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *fs.PathError
		if !errors.As(e, &pe) || pe.Op != "readdir" {
			t.Errorf("joined error %v is not a readdir *fs.PathError", e)
			continue
		}
		if names[strings.TrimPrefix(pe.Path, "/")] {
			t.Errorf("%s is both listed and reported bad", pe.Path)
		}
		bad = append(bad, pe.Path)
	}
	root, _ := f.inode(2)
	all, _ := f.collectEntries(root)
	if len(bad) == 0 || bad[0] != "/22" || len(ents)+len(bad) != len(all) {
		t.Errorf("bad entries %v beside %d good ones; want /22 first and %d in all", bad, len(ents), len(all))
	}
}

// TestGuestJoin: entry paths keep the guest-absolute form.
func TestGuestJoin(t *testing.T) {
	for _, c := range [][3]string{
		{"/", "22", "/22"}, {"/etc", "passwd", "/etc/passwd"}, {"/etc/", "x", "/etc/x"},
		{"/a/../b", "c", "/b/c"}, {"//", "n", "/n"},
	} {
		if got := guestJoin(c[0], c[1]); got != c[2] {
			t.Errorf("guestJoin(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

// TestReadStatNames: Stat and Lstat name the object by the last element
// of the path given (os.Stat semantics), whatever a symlink points at;
// OpenFile too.
func TestReadStatNames(t *testing.T) {
	f := populatedImage(t)
	for _, c := range []struct {
		p, name string
		follow  bool
	}{
		{"/links/abs", "abs", true}, {"/links/abs", "abs", false},
		{"/links/dir", "dir", true}, {"/links/dir/", "dir", true},
		{"/links/dir/file", "file", true}, {"/", "/", true}, {"/chain/3", "3", false},
	} {
		stat := f.Lstat
		if c.follow {
			stat = f.Stat
		}
		fi, err := stat(c.p)
		if err != nil || fi.Name != c.name {
			t.Errorf("stat(%s, follow %v) name %q, %v; want %q", c.p, c.follow, fi.Name, err, c.name)
		}
	}
	fl, err := f.OpenFile("/links/rel")
	if err != nil || fl.Stat().Name != "rel" {
		t.Errorf("OpenFile(/links/rel) = %+v, %v; want the name rel", fl, err)
	}
}

// TestReadOnlySuite runs vfs/vfstest's read-only conformance cases on an
// image mkfs.ext4 -d made of Populate's tree.
func TestReadOnlySuite(t *testing.T) {
	opts := vfstest.Options{}
	if os.Geteuid() != 0 { // mkfs -d copies the host owner: not root's
		opts = vfstest.Options{NoChown: true, UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	}
	vfstest.RunReadOnly(t, populatedImage(t), opts)
}

// populatedImage builds vfstest.Populate's tree in a host directory through
// vfs/local, makes an ext4 image of it and opens it.
func populatedImage(t *testing.T) *FS {
	t.Helper()
	testtool.Need(t, "mkfs.ext4")
	dir := filepath.Join(t.TempDir(), "guest")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	vfstest.Populate(t, l)
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", dir, img, "8M")
	return mustOpen(t, img)
}
