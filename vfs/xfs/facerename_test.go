package xfs

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
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

// growDirTo creates names in directory dir (for "btree" interleaved with
// names in pad, so that the two directories' blocks fragment) until dir reaches
// form ("short", "block", "leaf", "node" or "btree": a node directory
// whose data fork is a bmap btree), one subdirectory among them; it
// returns the names made.
func growDirTo(t *testing.T, f *FS, dir, pad uint64, form string) map[string]uint64 {
	t.Helper()
	now := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	tr, err := f.begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.abort()
	names := map[string]uint64{}
	reached := func() bool {
		in, err := f.inode(dir)
		if err != nil {
			t.Fatal(err)
		}
		if in.core.Format == layout.FormatLocal {
			return form == "short"
		}
		if form == "btree" {
			return in.core.Format == layout.FormatBtree
		}
		m, err := f.openDir(in)
		if err != nil {
			t.Fatal(err)
		}
		return [...]string{"block", "leaf", "node"}[m.form] == form && in.core.Format == layout.FormatExtents
	}
	for i := 0; i < 3 || !reached(); i++ {
		if i > 20000 {
			t.Fatalf("directory %d never reached %s form", dir, form)
		}
		mode := uint32(vfs.UnixRegular | 0o644)
		if i == 0 {
			mode = vfs.UnixDir | 0o755
		}
		name := dirName(i, 40)
		ino, err := tr.create(dir, name, mode, 0, 0, now)
		if err != nil {
			t.Fatal(err)
		}
		names[name] = ino
		if form == "btree" {
			if _, err := tr.create(pad, name, vfs.UnixRegular|0o644, 0, 0, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tr.commit(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestRenameDirAllForms: a directory in each form (short form, block,
// leaf, node, node with a bmap btree data fork) moves to another parent,
// then over an empty directory in a third: its ".." (in the inode, or in
// its first data block) follows, the parents' link counts follow, its
// entries and its subdirectory's ".." stay; xfs_repair -n is clean (it
// checks every ".." against the entry naming the directory), xfs_db
// lists the moved directory's entries, and the engine reads the result
// back; on v5 and v4, batched and not.
func TestRenameDirAllForms(t *testing.T) {
	forms := []string{"short", "block", "leaf", "node", "btree"}
	for _, c := range []struct {
		name string
		args []string
	}{{"v5", nil}, {"v4", []string{"-m", "crc=0"}}} {
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
				for _, fm := range forms {
					must(f.MakePath("/a/" + fm))
					must(f.MakePath("/c/over-" + fm))
					must(f.MakePath("/pad/" + fm))
				}
				must(f.MakePath("/b"))
				must(f.Flush())
				want := map[string]map[string]uint64{}
				inos := map[string]uint64{}
				for _, fm := range forms {
					inos[fm] = mustIno(t, f, "/a/"+fm)
					want[fm] = growDirTo(t, f, inos[fm], mustIno(t, f, "/pad/"+fm), fm)
				}
				for _, fm := range forms {
					must(f.Rename("/a/"+fm, "/b/"+fm))
				}
				must(f.Flush())
				repairClean(t, img)
				for _, fm := range forms {
					must(f.Rename("/b/"+fm, "/c/over-"+fm))
				}
				must(f.Flush())
				repairClean(t, img)
				g := openImage(t, img, nil)
				aIno, bIno, cIno := mustIno(t, g, "/a"), mustIno(t, g, "/b"), mustIno(t, g, "/c")
				for _, fm := range forms {
					p := "/c/over-" + fm
					if got := mustIno(t, g, p); got != inos[fm] {
						t.Fatalf("%s names inode %d, want the moved %d", p, got, inos[fm])
					}
					if dotdot, err := parentOf(g, inos[fm]); err != nil || dotdot != cIno {
						t.Fatalf("%s (%s form): \"..\" → %d (%v), want %d", p, fm, dotdot, err, cIno)
					}
					got := dbListing(t, img, p)
					if len(got) != len(want[fm]) {
						t.Fatalf("xfs_db lists %d entries in %s, want %d", len(got), p, len(want[fm]))
					}
					for n, ino := range want[fm] {
						if got[n] != ino {
							t.Fatalf("xfs_db: %s/%s → %d, want %d", p, n, got[n], ino)
						}
					}
					if dotdot, err := parentOf(g, want[fm][dirName(0, 40)]); err != nil || dotdot != inos[fm] {
						t.Fatalf("%s's subdirectory: \"..\" → %d (%v), want %d", p, dotdot, err, inos[fm])
					}
					if st, err := g.Stat(p); err != nil || st.Nlink != 3 {
						t.Fatalf("%s: %d links (%v), want 3", p, st.Nlink, err)
					}
				}
				for ino, want := range map[uint64]uint32{aIno: 2, bIno: 2, cIno: 2 + uint32(len(forms))} {
					if st := mustInode(t, g, ino); st.core.Nlink != want {
						t.Fatalf("inode %d: %d links, want %d", ino, st.core.Nlink, want)
					}
				}
				if ok, _ := g.HasFile("/b/" + forms[0]); ok {
					t.Fatal("/b still names a moved directory")
				}
			})
		}
	}
}

// parentOf returns what directory dir's ".." names: the short-form
// header's parent, or the ".." entry found through the hash index.
func parentOf(f *FS, dir uint64) (uint64, error) {
	in, err := f.inode(dir)
	if err != nil {
		return 0, err
	}
	if in.core.Format == layout.FormatLocal {
		return f.shortform(in, func(dirent) error { return nil })
	}
	return f.lookup(in, "..")
}
