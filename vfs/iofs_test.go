package vfs_test

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/memfs"
)

// TestIOFSMemfs: the io/fs view over a backend without piecewise reads
// (memfs, through ReadFile) passes testing/fstest, keeps symlinks inside
// the guest, and names errors by io/fs name.
func TestIOFSMemfs(t *testing.T) {
	m := memfs.New()
	for p, data := range map[string]string{"/etc/passwd": "root:x:0:0::/root:/bin/sh\n", "/srv/a/b.txt": "b\n", "/empty": ""} {
		if err := m.MakePath(dirOf(p)); err != nil {
			t.Fatal(err)
		}
		if err := m.ReplaceFile(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Symlink("/etc/passwd", "/srv/pw"); err != nil {
		t.Fatal(err)
	}
	if err := m.Symlink("../../../../etc", "/srv/up"); err != nil {
		t.Fatal(err)
	}
	view := vfs.IOFS(m)
	if err := fstest.TestFS(view, "etc/passwd", "srv/a/b.txt", "empty", "srv/pw", "srv/up"); err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(view, "srv/up/passwd"); err != nil || string(got) != "root:x:0:0::/root:/bin/sh\n" {
		t.Fatalf("srv/up/passwd: %q, %v (.. at the guest root stays there)", got, err)
	}
	_, err := fs.ReadFile(view, "srv/missing")
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != "srv/missing" {
		t.Fatalf("missing file: %v", err)
	}
	if target, err := fs.ReadLink(view, "srv/pw"); err != nil || target != "/etc/passwd" {
		t.Fatalf("ReadLink: %q, %v", target, err)
	}
}

func dirOf(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}
