package ext

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/guestinject/guestinject/vfs"
)

// TestIOFS: the io/fs view of an ext image passes testing/fstest (every
// file, directory and symlink consistent across Open, Stat, ReadDir,
// ReadLink, Seek and ReadAt), and every regular file of the source tree
// reads back through fs.ReadFile; a symlink to an absolute path resolves
// inside the guest.
func TestIOFS(t *testing.T) {
	src := srcTree(t, 40)
	// Open of the dangling and looping links fails, as it should; the 12 MiB
	// sparse file only slows fstest's byte-wise reads down.
	for _, p := range []string{"links/dangling", "links/loop1", "links/loop2", "sparse.img"} {
		if err := os.Remove(filepath.Join(src, p)); err != nil {
			t.Fatal(err)
		}
	}
	f := mustOpen(t, mkfs(t, src, 64))
	view := vfs.IOFS(f)
	if err := fstest.TestFS(view, "etc/passwd", "big.bin", "a/b/c/d/e/f/g/h/deep.txt", "links/abs", "links/dir", "many/"+manyName(7)); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := fs.ReadFile(view, filepath.ToSlash(rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes read back, want %d", rel, len(got), len(want))
		}
		n++
		return nil
	})
	if err != nil || n < 40 {
		t.Fatalf("walked %d files: %v", n, err)
	}
	if got, err := fs.ReadFile(view, "links/abs"); err != nil || !bytes.HasPrefix(got, []byte("root:x:0:0")) {
		t.Fatalf("links/abs (-> /etc/passwd in the guest): %q, %v", got, err)
	}
	if _, err := fs.ReadFile(view, "../etc/passwd"); err == nil {
		t.Fatal("an invalid io/fs name was served")
	}
}
