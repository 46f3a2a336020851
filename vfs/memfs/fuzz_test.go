package memfs_test

import (
	"errors"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/memfs"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// FuzzOps runs the write operations on fuzzed paths and link targets over
// the suite's tree: no panic, and whatever a write claims to have made can
// be read back.
func FuzzOps(f *testing.F) {
	for _, s := range [][2]string{{"/links/dir/x", "../a"}, {"/links/dangling", "/"}, {"/a/../../b/", "self"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, target string) {
		fsys := memfs.New()
		vfstest.Populate(t, fsys)
		fsys.Symlink(target, "/links/fuzz")
		if fsys.MakePath(p) == nil {
			if fi, err := fsys.Stat(p); err != nil || !fi.IsDir() {
				t.Fatalf("MakePath(%q) succeeded but Stat = %+v, %v", p, fi, err)
			}
		}
		if fsys.ReplaceFile(p, []byte("r")) == nil {
			if got, err := fsys.ReadFile(p); err != nil || string(got) != "r" {
				t.Fatalf("ReplaceFile(%q) succeeded but ReadFile = %q, %v", p, got, err)
			}
		}
		if _, err := fsys.HasFile(p); err != nil && !errors.Is(err, vfs.ErrTooManyLinks) && !errors.Is(err, vfs.ErrInvalidPath) {
			t.Fatalf("HasFile(%q): %v", p, err)
		}
		fsys.Remove(p)
	})
}
