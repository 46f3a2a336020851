package local

import (
	"os"
	"path/filepath"
	"testing"
)

// TestProcChmodThroughPathHandle: the chmod fallback for kernels without
// fchmodat2 changes the object a path-only handle names, even after its
// name was given to another file.
func TestProcChmodThroughPathHandle(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p, other := filepath.Join(dir, "f"), filepath.Join(dir, "g")
	for _, f := range []string{p, other} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := l.openHandle("f")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := os.Rename(p, p+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	if err := withFd(h, func(fd int) error { return procChmod(fd, 0o600) }); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]os.FileMode{p + ".moved": 0o600, p: 0o644} {
		fi, err := os.Lstat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", f, fi.Mode(), want)
		}
	}
}
