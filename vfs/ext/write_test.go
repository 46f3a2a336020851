package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// basicOps runs every vfs operation on w and checks the result with
// e2fsck and debugfs.
func basicOps(t *testing.T, img string) {
	w := openW(t, img)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.MakePath("/etc/ssh/keys.d"))
	must(w.ReplaceFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nal:x:1000:1001::/home/al:/bin/sh\n")))
	must(w.ReplaceFile("/etc/group", []byte("root:x:0:\nstaff:x:1001:\n")))
	must(w.AppendFile("/etc/ssh/keys.d/a", []byte("ssh-ed25519 AAAA one\n")))
	must(w.AppendFile("/etc/ssh/keys.d/a", []byte("ssh-ed25519 AAAA two\n")))
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes
	must(w.ReplaceFile("/big", big))
	must(w.AppendFile("/big", []byte("tail")))
	must(w.ReplaceFile("/shrunk", big))
	must(w.ReplaceFile("/shrunk", []byte("short now")))
	must(w.SetPermissions("/etc/ssh/keys.d/a", 0o600))
	must(w.SetOwnership("/etc/ssh/keys.d/a", "al", "staff"))
	must(w.Symlink("/etc/ssh/keys.d/a", "/fast"))
	long := "/" + string(bytes.Repeat([]byte("x/"), 50)) + "target"
	must(w.Symlink(long, "/slow"))
	must(w.MakePath("/gone/sub"))
	must(w.AppendFile("/gone/sub/f", []byte("bye")))
	must(w.Remove("/gone/sub/f"))
	must(w.Remove("/gone/sub"))
	must(w.Remove("/gone"))
	must(w.ReplaceFile("/big2", big))
	must(w.Remove("/big2"))
	fsck(t, img)
	wantCat(t, img, "/etc/ssh/keys.d/a", []byte("ssh-ed25519 AAAA one\nssh-ed25519 AAAA two\n"))
	wantCat(t, img, "/big", append(append([]byte(nil), big...), "tail"...))
	wantCat(t, img, "/shrunk", []byte("short now"))
	wantStat(t, img, "/etc/ssh/keys.d/a", 0o600, 1000, 1001)
	wantStat(t, img, "/etc/ssh/keys.d", 0o755, 0, 0)
	wantStat(t, img, "/big", 0o644, 0, 0)
	if s := debugfsStat(t, img, "/fast"); s.fastLink != "/etc/ssh/keys.d/a" {
		t.Errorf("fast symlink: %+v", s)
	}
	if got := debugfsCat(t, img, "/slow"); string(got) != long {
		t.Errorf("slow symlink reads %q", got)
	}
	r := mustOpen(t, img)
	if tgt, err := r.Readlink("/slow"); err != nil || tgt != long {
		t.Errorf("Readlink /slow = %q, %v", tgt, err)
	}
	if ok, _ := r.HasFile("/gone"); ok {
		t.Errorf("/gone still exists")
	}
}

// imageKinds is the matrix this file covers: mke2fs options per kind.
var imageKinds = []struct {
	name string
	args []string
}{
	{"ext4", []string{"-t", "ext4"}},
	{"ext4-1k", []string{"-t", "ext4", "-b", "1024"}},
	{"ext4-no64bit", []string{"-t", "ext4", "-O", "^64bit"}},
	{"ext4-gdtcsum", []string{"-t", "ext4", "-O", "^metadata_csum"}},
	{"ext4-noflexbg", []string{"-t", "ext4", "-O", "^flex_bg"}},
	{"ext4-metabg", []string{"-t", "ext4", "-O", "meta_bg,^resize_inode"}},
	{"ext4-inline", []string{"-t", "ext4", "-O", "inline_data"}},
	{"ext4-nojournal", []string{"-t", "ext4", "-O", "^has_journal"}},
	{"ext3", []string{"-t", "ext3"}},
	{"ext3-1k-128", []string{"-t", "ext3", "-b", "1024", "-I", "128"}},
	{"ext2", []string{"-t", "ext2"}},
	{"ext2-1k", []string{"-t", "ext2", "-b", "1024"}},
	{"ext4-2k", []string{"-t", "ext4", "-b", "2048"}},
	{"ext4-64k", []string{"-t", "ext4", "-b", "65536"}},
	{"ext4-128inode", []string{"-t", "ext4", "-I", "128"}},
	{"ext4-largedir", []string{"-t", "ext4", "-O", "large_dir"}},
	{"ext4-casefold", []string{"-t", "ext4", "-O", "casefold"}},
	{"ext4-sparse_super2", []string{"-t", "ext4", "-O", "sparse_super2"}},
	{"ext4-ea_inode", []string{"-t", "ext4", "-O", "ea_inode"}},
	{"ext4-nohugefile", []string{"-t", "ext4", "-O", "^huge_file"}},
	{"ext4-csumseed", []string{"-t", "ext4", "-O", "metadata_csum_seed"}},
	{"ext4-noextent", []string{"-t", "ext4", "-O", "^extent,^64bit"}},
	{"ext2-rev0", []string{"-t", "ext2", "-r", "0"}},
}

func TestWriteBasicOps(t *testing.T) {
	for _, k := range imageKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, "", 64, k.args...)
			basicOps(t, img)
		})
	}
}

func TestWriteReadOnlyRefused(t *testing.T) {
	img := mkfs(t, "", 16, "-t", "ext4")
	f := mustOpen(t, img)
	if err := (wfs{f}).MakePath("/x"); !errors.Is(err, vfs.ErrReadOnly) {
		t.Fatalf("MakePath on a read-only open: %v", err)
	}
	_ = fmt.Sprint()
}

// TestWriteRefusedFeatures: features the engine cannot keep consistent
// are refused before anything is written, naming the feature.
func TestWriteRefusedFeatures(t *testing.T) {
	for _, c := range []struct {
		name, feature string
		args          []string
	}{
		{"quota-ea_inode", "ea_inode", []string{"-t", "ext4", "-O", "quota,ea_inode"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := mkfs(t, "", 32, c.args...)
			before := fileBytes(t, img)
			fh, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			_, err = Open(fh, int64(len(before)), &Options{Writable: true})
			if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), c.feature) {
				t.Fatalf("writable open of %s: %v", c.name, err)
			}
			r := mustOpen(t, img) // read-only opens still work; writes say why not
			err = r.ReplaceFile("/f", []byte("x"))
			if !errors.Is(err, vfs.ErrReadOnly) {
				t.Fatalf("write through a read-only open: %v", err)
			}
			if !bytes.Equal(before, fileBytes(t, img)) {
				t.Fatal("a refused write changed the image")
			}
		})
	}
}

// TestWriteDamagedBitmapRefused: a bitmap that calls metadata free is
// caught before anything is written.
func TestWriteDamagedBitmapRefused(t *testing.T) {
	img := mkfs(t, "", 16, "-t", "ext2")
	f := mustOpen(t, img)
	d, err := f.groupDesc(0)
	if err != nil {
		t.Fatal(err)
	}
	bs := int64(f.BlockSize())
	patch(t, img, int64(d.BlockBitmap())*bs, make([]byte, bs))
	before := fileBytes(t, img)
	err = openW(t, img).ReplaceFile("/f", []byte("data"))
	if !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("write with a zeroed block bitmap: %v", err)
	}
	if !bytes.Equal(before, fileBytes(t, img)) {
		t.Fatal("the refused write changed the image")
	}
}

// TestWriteRemoveKinds removes what mke2fs -d made: a hard-linked file
// (one name goes), a file with xattrs, a fifo, symlinks, a big file and
// a deep tree, checking e2fsck after all.
func TestWriteRemoveKinds(t *testing.T) {
	for _, k := range []struct {
		name string
		args []string
	}{{"ext4", []string{"-t", "ext4"}}, {"ext3", []string{"-t", "ext3"}}, {"ext4-inline", []string{"-t", "ext4", "-O", "inline_data"}}} {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, srcTree(t, 50), 64, k.args...)
			w := openW(t, img)
			for _, p := range []string{"/hardlink", "/etc/hostname", "/fifo", "/links/slow", "/links/dangling",
				"/big.bin", "/frag.bin", "/sparse.img", "/a/b/c/d/e/f/g/h/deep.txt", "/a/b/c/d/e/f/g/h", "/many/" + manyName(7)} {
				if err := w.Remove(p); err != nil {
					t.Fatalf("remove %s: %v", p, err)
				}
			}
			if err := w.Remove("/a/b"); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("removing a non-empty directory: %v", err)
			}
			fsck(t, img)
			wantCat(t, img, "/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"))
			if s := debugfsStat(t, img, "/etc/passwd"); s.links != 1 {
				t.Errorf("/etc/passwd has %d links after its hard link went", s.links)
			}
		})
	}
}

// TestWriteInodeFields: 32-bit owners, nanosecond timestamps and crtime
// where the inode has room, none where it has not.
func TestWriteInodeFields(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		extras bool
	}{{"256", []string{"-t", "ext4"}, true}, {"128", []string{"-t", "ext4", "-I", "128"}, false}} {
		t.Run(c.name, func(t *testing.T) {
			img := mkfs(t, "", 16, c.args...)
			w := openW(t, img)
			if err := w.ReplaceFile("/f", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := w.SetOwnership("/f", "70000", "70001"); err != nil {
				t.Fatal(err)
			}
			fsck(t, img)
			s := wantStat(t, img, "/f", 0o644, 70000, 70001)
			if s.hasCrtime != c.extras {
				t.Errorf("crtime shown: %v, want %v", s.hasCrtime, c.extras)
			}
			in, err := w.inode(lookupT(t, w, "/f"))
			if err != nil {
				t.Fatal(err)
			}
			if c.extras && (in.raw.MtimeExtra == 0 || in.raw.Crtime == 0 || in.raw.ExtraIsize != newExtraIsize) {
				t.Errorf("extra fields: mtime extra %#x, crtime %d, extra isize %d", in.raw.MtimeExtra, in.raw.Crtime, in.raw.ExtraIsize)
			}
			if in.raw.Generation == 0 && in.raw.Mtime == 0 {
				t.Errorf("generation and mtime not set")
			}
		})
	}
}

// TestWriteOpenNeedsWriter: Options.Writable over a plain io.ReaderAt is
// refused at Open.
func TestWriteOpenNeedsWriter(t *testing.T) {
	img := mkfs(t, "", 8, "-t", "ext4")
	b := fileBytes(t, img)
	_, err := Open(bytes.NewReader(b), int64(len(b)), &Options{Writable: true})
	if !errors.Is(err, vfs.ErrReadOnly) {
		t.Fatalf("writable open of a bytes.Reader: %v", err)
	}
}

// TestWriteThroughFace: the vfs.FS methods of *FS reach the engine.
func TestWriteThroughFace(t *testing.T) {
	img := mkfs(t, "", 16, "-t", "ext4")
	var fsys vfs.FS = openW(t, img).FS
	if err := fsys.MakePath("/root/.ssh"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.AppendFile("/root/.ssh/authorized_keys", []byte("k\n")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.ReplaceFile("/meta.js", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SetPermissions("/root/.ssh", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SetOwnership("/meta.js", "0", "0"); err != nil {
		t.Fatal(err)
	}
	fsck(t, img)
	wantStat(t, img, "/root/.ssh", 0o700, 0, 0)
	wantCat(t, img, "/root/.ssh/authorized_keys", []byte("k\n"))
}
