package ext

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// compareTree walks src and checks every object against the image.
func compareTree(t *testing.T, f *FS, src string) {
	t.Helper()
	n := 0
	err := filepath.Walk(src, func(p string, hi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, src)
		if rel == "" {
			rel = "/"
		}
		compareObject(t, f, p, rel, hi)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("walked only %d objects", n)
	}
}

func compareObject(t *testing.T, f *FS, host, guest string, hi os.FileInfo) {
	t.Helper()
	fi, err := f.Lstat(guest)
	if err != nil {
		t.Errorf("lstat %s: %v", guest, err)
		return
	}
	st := hi.Sys().(*syscall.Stat_t)
	if guest != "/" && (fi.UID != st.Uid || fi.GID != st.Gid) {
		t.Errorf("%s: owner %d:%d, want %d:%d", guest, fi.UID, fi.GID, st.Uid, st.Gid)
	}
	if fi.Mode != vfs.ModeFromUnix(st.Mode) && guest != "/" {
		t.Errorf("%s: mode %v, want %v", guest, fi.Mode, vfs.ModeFromUnix(st.Mode))
	}
	if fi.ModTime.Unix() != hi.ModTime().Unix() && guest != "/" {
		t.Errorf("%s: mtime %v, want %v", guest, fi.ModTime, hi.ModTime())
	}
	switch {
	case hi.Mode().IsRegular():
		want, _ := os.ReadFile(host)
		got, err := f.ReadFile(guest)
		if err != nil || !bytes.Equal(got, want) || fi.Size != int64(len(want)) {
			t.Errorf("%s: content %d bytes (size %d), want %d: %v", guest, len(got), fi.Size, len(want), err)
		}
		if fi.Nlink != uint32(st.Nlink) {
			t.Errorf("%s: nlink %d, want %d", guest, fi.Nlink, st.Nlink)
		}
	case hi.Mode()&os.ModeSymlink != 0:
		want, _ := os.Readlink(host)
		got, err := f.Readlink(guest)
		if err != nil || got != want || fi.Target != want {
			t.Errorf("%s: target %q (%q), want %q: %v", guest, got, fi.Target, want, err)
		}
	case hi.IsDir():
		compareDir(t, f, host, guest)
	case hi.Mode()&os.ModeDevice != 0:
		if fi.Rdev != uint64(st.Rdev) {
			t.Errorf("%s: rdev %#x, want %#x", guest, fi.Rdev, st.Rdev)
		}
	}
}

func compareDir(t *testing.T, f *FS, host, guest string) {
	t.Helper()
	want, _ := os.ReadDir(host)
	got, err := f.ReadDir(guest)
	if err != nil {
		t.Errorf("readdir %s: %v", guest, err)
		return
	}
	var wn, gn []string
	for _, e := range want {
		wn = append(wn, e.Name())
	}
	for _, e := range got {
		if e.Name != "lost+found" || guest != "/" {
			gn = append(gn, e.Name)
		}
	}
	if strings.Join(wn, "/") != strings.Join(gn, "/") {
		t.Errorf("readdir %s: %d names, want %d", guest, len(gn), len(wn))
	}
}

// TestMatrix builds images across block sizes and features from one
// source tree and compares every object.
func TestMatrix(t *testing.T) {
	src := srcTree(t, 300)
	for _, c := range []struct {
		name string
		mb   int
		args []string
	}{
		{"ext2-1k", 64, []string{"-t", "ext2", "-b", "1024"}},
		{"ext2-4k", 64, []string{"-t", "ext2", "-b", "4096"}},
		{"ext3-1k-128", 64, []string{"-t", "ext3", "-b", "1024", "-I", "128"}},
		{"ext3-4k", 64, []string{"-t", "ext3"}},
		{"ext4", 64, []string{"-t", "ext4"}},
		{"ext4-2k", 64, []string{"-t", "ext4", "-b", "2048"}},
		{"ext4-64k", 128, []string{"-t", "ext4", "-b", "65536"}},
		{"ext4-no64bit", 64, []string{"-t", "ext4", "-O", "^64bit"}},
		{"ext4-nocsum", 64, []string{"-t", "ext4", "-O", "^metadata_csum"}},
		{"ext4-noflex", 64, []string{"-t", "ext4", "-O", "^flex_bg"}},
		{"ext4-inline", 64, []string{"-t", "ext4", "-O", "inline_data"}},
		{"ext4-metabg", 64, []string{"-t", "ext4", "-O", "meta_bg,^resize_inode"}},
		{"ext4-nojournal", 64, []string{"-t", "ext4", "-O", "^has_journal"}},
		{"ext4-bigalloc", 128, []string{"-t", "ext4", "-O", "bigalloc", "-C", "16384"}},
		{"ext4-csumseed", 64, []string{"-t", "ext4", "-O", "metadata_csum_seed"}},
		{"ext4-sparse2", 64, []string{"-t", "ext4", "-O", "sparse_super2"}},
		{"ext4-1k", 64, []string{"-t", "ext4", "-b", "1024"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, src, c.mb, c.args...)
			f := mustOpen(t, img)
			compareTree(t, f, src)
			checkResolve(t, f)
		})
	}
}

// checkResolve covers symlink semantics through vfs.Resolve.
func checkResolve(t *testing.T, f *FS) {
	t.Helper()
	if b, err := f.ReadFile("/links/abs"); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Errorf("read through absolute link: %q %v", b, err)
	}
	if b, err := f.ReadFile("/links/slow"); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Errorf("read through slow link: %q %v", b, err)
	}
	if b, err := f.ReadFile("/links/dir/d/e/f/g/h/deep.txt"); err != nil || string(b) != "deep\n" {
		t.Errorf("read through dir link: %q %v", b, err)
	}
	if _, err := f.Stat("/links/loop1"); !errors.Is(err, vfs.ErrTooManyLinks) {
		t.Errorf("stat loop: %v", err)
	}
	if ok, err := f.HasFile("/links/dangling"); ok || err != nil {
		t.Errorf("dangling: %v %v", ok, err)
	}
	if ok, err := f.HasFile("/etc/passwd"); !ok || err != nil {
		t.Errorf("has /etc/passwd: %v %v", ok, err)
	}
	if _, err := f.ReadFile("/etc/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := f.ReadFile("/etc"); !errors.Is(err, vfs.ErrIsDir) {
		t.Errorf("read dir: %v", err)
	}
	if _, err := f.ReadFile("/fifo"); !errors.Is(err, vfs.ErrNotRegular) {
		t.Errorf("read fifo: %v", err)
	}
	if err := f.MakePath("/x"); !errors.Is(err, vfs.ErrReadOnly) {
		t.Errorf("makepath: %v", err)
	}
}
