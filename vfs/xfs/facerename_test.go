package xfs

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// TestRename: rename(2)'s cases — a file to a new name in another
// directory, over an existing file (whose inode is freed), a directory
// in short form to another parent (its ".." and both parents' link
// counts follow), over an empty directory — and its refusals (a
// directory into its own subtree, a directory over a file, over a
// non-empty directory); xfs_repair -n is clean (it checks every ".."
// against the parent naming the directory) and the engine reads the
// result back, on v5 and v4, batched and not.
func TestRename(t *testing.T) {
	for _, c := range faceFormats {
		for _, batch := range []bool{false, true} {
			name := c.name
			if batch {
				name += "-batch"
			}
			t.Run(name, func(t *testing.T) {
				img := emptyImage(t, c.args...)
				f := openRWOpts(t, img, &Options{Batch: batch})
				must := func(err error) {
					t.Helper()
					if err != nil {
						t.Fatal(err)
					}
				}
				must(f.MakePath("/a/sub/deep"))
				must(f.MakePath("/b/empty"))
				must(f.ReplaceFile("/a/f1", []byte("one\n")))
				must(f.ReplaceFile("/b/f2", pattern(3*f.BlockSize(), 2)))
				must(f.ReplaceFile("/a/sub/keep", []byte("keep\n")))
				must(f.Flush())
				f2Ino := mustIno(t, f, "/b/f2")
				for what, c := range map[string]struct {
					from, to string
					want     error
				}{
					"into its own subtree": {"/a", "/a/sub/deep/x", fs.ErrInvalid},
					"directory over file":  {"/a/sub", "/b/f2", vfs.ErrNotDir},
					"file over directory":  {"/a/f1", "/b/empty", vfs.ErrIsDir},
					"over non-empty dir":   {"/b/empty", "/a/sub", fs.ErrExist},
					"missing":              {"/nope", "/x", fs.ErrNotExist},
				} {
					if err := f.Rename(c.from, c.to); !errors.Is(err, c.want) {
						t.Fatalf("%s: %v, want %v", what, err, c.want)
					}
				}
				must(f.Rename("/a/f1", "/b/moved"))
				must(f.Rename("/b/moved", "/b/f2")) // over f2: its inode is freed
				must(f.Rename("/a/sub", "/b/sub"))  // a directory to another parent
				must(f.Rename("/b/sub/deep", "/b/empty"))
				must(f.Flush())
				repairClean(t, img)
				g := openImage(t, img, nil)
				if got, err := g.ReadFile("/b/f2"); err != nil || string(got) != "one\n" {
					t.Fatalf("/b/f2: %q %v", got, err)
				}
				if got, err := g.ReadFile("/b/sub/keep"); err != nil || string(got) != "keep\n" {
					t.Fatalf("/b/sub/keep: %q %v", got, err)
				}
				for _, p := range []string{"/a/f1", "/b/moved", "/a/sub", "/b/sub/deep"} {
					if ok, _ := g.HasFile(p); ok {
						t.Fatalf("%s still exists", p)
					}
				}
				if mustIno(t, g, "/b/f2") == f2Ino {
					t.Fatal("/b/f2 still names the replaced inode")
				}
				for p, want := range map[string]uint32{"/a": 2, "/b": 4, "/b/sub": 2, "/b/empty": 2} {
					if st, err := g.Stat(p); err != nil || st.Nlink != want {
						t.Fatalf("%s: %d links (%v), want %d", p, st.Nlink, err, want)
					}
				}
			})
		}
	}
}
