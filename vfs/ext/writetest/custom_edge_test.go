package writetest

import (
	"bytes"
	"encoding/binary"
	"errors"
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

// srcDir makes a host tree for mke2fs -d holding the given files.
func srcDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	return dir
}

// patchImage writes b at byte offset off of the image file.
func patchImage(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	_, err = f.WriteAt(b, off)
	must(t, err)
}

// debugfsW runs one debugfs request with the image open for writing.
func debugfsW(t *testing.T, img, req string) {
	t.Helper()
	testtool.Run(t, "debugfs", "-w", "-R", req, img)
}

var reBmap = regexp.MustCompile(`(?m)^(\d+)\s*$`)

// TestTruncateGrowZeroesTail: the bytes past the end of a file's last
// block are not guaranteed zero on disk (here they are garbage put there
// after mke2fs); growing the file must expose zeros, never them.
func TestTruncateGrowZeroesTail(t *testing.T) {
	for _, name := range []string{"ext4-nocsum", "ext2-1k"} {
		t.Run(name, func(t *testing.T) {
			spec := specByName(t, name)
			img := mkfs(t, spec, srcDir(t, map[string]string{"f": "hello"}))
			m := reBmap.FindStringSubmatch(debugfs(t, img, "bmap /f 0"))
			if m == nil {
				t.Fatal("debugfs bmap /f 0 gave no block")
			}
			blk, _ := strconv.ParseInt(m[1], 10, 64)
			bs := int64(4096)
			if strings.Contains(name, "1k") {
				bs = 1024
			}
			patchImage(t, img, blk*bs+5, bytes.Repeat([]byte{0xAA}, 300))
			oracle(t, img, "garbage past the end")
			_, fsys, err := openImage(t, img, ext.Options{})
			must(t, err)
			must(t, fsys.Truncate("/f", 400))
			oracle(t, img, "truncate grow")
			wantCat(t, img, "/f", "hello"+string(make([]byte, 395)))
		})
	}
}

// TestXattrSharedBlockCopyOnWrite: two inodes share one xattr block
// (h_refcount 2, as the kernel's mbcache makes them); setting an
// attribute on one gives it a block of its own and leaves the other's
// attributes and the shared block (now refcount 1) as they were.
func TestXattrSharedBlockCopyOnWrite(t *testing.T) {
	// Without metadata_csum, so the test can patch the block's count.
	for _, name := range []string{"ext4-nocsum", "ext2-4k"} {
		t.Run(name, func(t *testing.T) {
			spec := specByName(t, name)
			img := mkfs(t, spec, srcDir(t, map[string]string{"a": "a", "b": "b"}))
			_, fsys, err := openImage(t, img, ext.Options{})
			must(t, err)
			large := strings.Repeat("S", 600)
			must(t, fsys.SetXattr("/a", "user.shared", []byte(large)))
			must(t, fsys.SetXattr("/b", "user.own", []byte("b")))
			oracle(t, img, "setup")
			shared := statNum(t, img, "/a", reFileACL)
			if shared == 0 || statNum(t, img, "/b", reFileACL) != 0 {
				t.Fatal("setup: /a should have an xattr block and /b none")
			}
			// Share /a's block with /b, as the kernel would for equal sets:
			// /b gets the same attributes (its own in-inode one stays).
			blocks := statNum(t, img, "/b", reBlocks)
			debugfsW(t, img, "sif /b file_acl "+strconv.FormatInt(shared, 10))
			debugfsW(t, img, "sif /b blocks "+strconv.FormatInt(blocks+8, 10))
			var rc [4]byte
			binary.LittleEndian.PutUint32(rc[:], 2)
			patchImage(t, img, shared*4096+4, rc[:])
			oracle(t, img, "sharing the block")
			_, fsys, err = openImage(t, img, ext.Options{})
			must(t, err)
			must(t, fsys.SetXattr("/b", "user.more", []byte(strings.Repeat("m", 500))))
			oracle(t, img, "setxattr on a shared block")
			own := statNum(t, img, "/b", reFileACL)
			if own == 0 || own == shared || statNum(t, img, "/a", reFileACL) != shared {
				t.Errorf("after the write: /a block %d, /b block %d (shared was %d)", statNum(t, img, "/a", reFileACL), own, shared)
			}
			if out := debugfs(t, img, "ea_list /a"); strings.Contains(out, "user.more") || !strings.Contains(out, "user.shared (600)") {
				t.Errorf("/a's attributes changed:\n%s", out)
			}
			if out := debugfs(t, img, "ea_list /b"); !strings.Contains(out, "user.more (500)") || !strings.Contains(out, "user.shared (600)") {
				t.Errorf("/b's attributes:\n%s", out)
			}
			b := make([]byte, 8)
			f, err := os.Open(img)
			must(t, err)
			_, err = f.ReadAt(b, shared*4096)
			f.Close()
			must(t, err)
			if n := binary.LittleEndian.Uint32(b[4:]); n != 1 {
				t.Errorf("shared block's refcount %d after the copy, want 1", n)
			}
		})
	}
}

// TestLinkLimitRefused: an inode at ext4's 65,000 links gets no more
// (vfs.ErrLinkLimit) and the image is left as it was.
func TestLinkLimitRefused(t *testing.T) {
	img := mkfs(t, specByName(t, "ext4"), srcDir(t, map[string]string{"f": "x"}))
	debugfsW(t, img, "sif /f links_count 65000")
	_, fsys, err := openImage(t, img, ext.Options{})
	must(t, err)
	before := fileSHA(t, img)
	err = fsys.Link("/f", "/g")
	if !errors.Is(err, vfs.ErrLinkLimit) {
		t.Fatalf("Link at 65000 links: %v", err)
	}
	if fileSHA(t, img) != before {
		t.Error("the refused link changed the image")
	}
}

// TestCustomOpsRefuseCorrupt: metadata the operations rely on is checked
// before anything is written: an xattr block with a bad magic, and a
// directory whose ".." names another directory than the one holding it,
// are refused as vfs.ErrCorrupt, naming the path, and the image is left
// byte for byte as it was.
func TestCustomOpsRefuseCorrupt(t *testing.T) {
	spec := specByName(t, "ext4-nocsum")
	img := mkfs(t, spec, srcDir(t, map[string]string{"a": "a"}))
	_, fsys, err := openImage(t, img, ext.Options{})
	must(t, err)
	must(t, fsys.SetXattr("/a", "user.big", []byte(strings.Repeat("x", 600))))
	must(t, fsys.MakePath("/p/c"))
	must(t, fsys.MakePath("/q"))
	oracle(t, img, "setup")
	xblk := statNum(t, img, "/a", reFileACL)
	patchImage(t, img, xblk*4096, []byte{0, 0, 0, 0}) // the magic
	m := reBmap.FindStringSubmatch(debugfs(t, img, "bmap /p/c 0"))
	if m == nil {
		t.Fatal("no block for /p/c")
	}
	cblk, _ := strconv.ParseInt(m[1], 10, 64)
	var ino [4]byte
	binary.LittleEndian.PutUint32(ino[:], 11) // lost+found, not /p
	patchImage(t, img, cblk*4096+12, ino[:])  // the inode of "..", after "." (12 bytes)

	_, fsys, err = openImage(t, img, ext.Options{})
	must(t, err)
	before := fileSHA(t, img)
	for _, c := range []struct {
		p  string
		op func() error
	}{
		{"/a", func() error { return fsys.SetXattr("/a", "user.more", []byte("m")) }},
		{"/a", func() error { return fsys.RemoveXattr("/a", "user.big") }},
		{"/q/c", func() error { return fsys.Rename("/p/c", "/q/c") }},
	} {
		err := c.op()
		if !errors.Is(err, vfs.ErrCorrupt) {
			t.Errorf("%s: %v, want vfs.ErrCorrupt", c.p, err)
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != c.p {
			t.Errorf("error %v does not name %s", err, c.p)
		}
		if fileSHA(t, img) != before {
			t.Fatalf("%s: a refused operation changed the image", c.p)
		}
	}
}

// TestTruncatePastMappingRefused: a size whose last block the file's
// mapping cannot address (2^32 blocks with extents; the triple-indirect
// reach of a 1 KiB block map, about 16 GiB) is refused as fs.ErrInvalid
// and nothing is written; the largest addressable size is accepted and
// e2fsck agrees with it.
func TestTruncatePastMappingRefused(t *testing.T) {
	for _, c := range []struct {
		spec     string
		over, ok int64
	}{
		{"ext4", 1 << 50, 1 << 40},
		{"ext2-1k", 32 << 30, (12 + 256 + 256*256 + 256*256*256) * 1024},
	} {
		t.Run(c.spec, func(t *testing.T) {
			img := mkfs(t, specByName(t, c.spec), srcDir(t, map[string]string{"f": "data"}))
			_, fsys, err := openImage(t, img, ext.Options{})
			must(t, err)
			before := fileSHA(t, img)
			err = fsys.Truncate("/f", c.over)
			if !errors.Is(err, fs.ErrInvalid) {
				t.Fatalf("Truncate to %d: %v, want fs.ErrInvalid", c.over, err)
			}
			if fileSHA(t, img) != before {
				t.Fatal("the refused truncate changed the image")
			}
			must(t, fsys.Truncate("/f", c.ok))
			oracle(t, img, "truncate to the largest size")
			if st := debugfsStat(t, img, "/f"); st.size != c.ok {
				t.Errorf("size %d, want %d", st.size, c.ok)
			}
		})
	}
}
