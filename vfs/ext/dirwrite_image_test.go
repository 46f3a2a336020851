package ext

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext/layout"
)

// openRW opens img for writing.
func openRW(t testing.TB, img string) *FS {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	f, err := Open(fh, st.Size(), &Options{Writable: true})
	if err != nil {
		t.Fatalf("open %s for writing: %v", img, err)
	}
	return f
}

// fsckClean requires e2fsck -fn to find nothing to fix.
func fsckClean(t testing.TB, img string) {
	t.Helper()
	if out, code := testtool.Output(t, "e2fsck", "-fn", img); code != 0 {
		t.Fatalf("e2fsck -fn exit %d:\n%s", code, out)
	}
}

// dirTx runs fn in one transaction on the directory at p.
func dirTx(t testing.TB, f *FS, p string, fn func(tx *tx, dir *inode) error) error {
	t.Helper()
	_, in, err := f.resolve("t", p, true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := f.begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.abort()
	dir, err := tx.inode(in.num)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(tx, dir); err != nil {
		return err
	}
	return tx.commit()
}

// txCreate makes an empty regular file name in dir.
func txCreate(tx *tx, dir *inode, name string) (uint32, error) {
	in, err := tx.allocInode(dir.num, false)
	if err != nil {
		return 0, err
	}
	in.raw.Mode = layout.ModeRegular | 0o644
	in.raw.LinksCount = 1
	tx.dirtyInode(in)
	return in.num, tx.addEntry(dir, name, in.num, layout.FTRegular)
}

// txMkdir makes an empty directory name in dir.
func txMkdir(tx *tx, dir *inode, name string) (*inode, error) {
	in, err := tx.allocInode(dir.num, true)
	if err != nil {
		return nil, err
	}
	in.raw.Mode = layout.ModeDir | 0o755
	if err := tx.initDir(in, dir.num); err != nil {
		return nil, err
	}
	return in, tx.addEntry(dir, name, in.num, layout.FTDir)
}

// txRemove removes file name (a regular file with one link) from dir.
func txRemove(tx *tx, dir *inode, name string) error {
	ino, err := tx.removeEntry(dir, name)
	if err != nil {
		return err
	}
	in, err := tx.inode(ino)
	if err != nil {
		return err
	}
	return tx.freeInode(in)
}

// txRmdir removes the empty directory name from dir.
func txRmdir(tx *tx, dir *inode, name string) error {
	_, sub, err := tx.f.resolve("t", "/", true) // placeholder to keep resolve's cache warm
	_ = sub
	if err != nil {
		return err
	}
	ino, err := tx.f.lookup(dir, name)
	if err != nil {
		return err
	}
	in, err := tx.inode(ino)
	if err != nil {
		return err
	}
	if empty, err := tx.dirIsEmpty(in); err != nil || !empty {
		return fmt.Errorf("rmdir %s: empty %v, %v", name, empty, err)
	}
	if _, err := tx.removeEntry(dir, name); err != nil {
		return err
	}
	tx.decDirLinks(dir)
	return tx.freeInode(in)
}

// debugfsLs returns the names debugfs lists in directory p.
func debugfsLs(t testing.TB, img, p string) map[string]bool {
	t.Helper()
	out := testtool.Run(t, "debugfs", "-R", "ls -p "+p, img) // unused entries show as inode 0
	names := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		// /ino/mode/uid/gid/name/size/
		if parts := strings.Split(line, "/"); len(parts) >= 7 && parts[1] != "0" {
			names[parts[5]] = true
		}
	}
	return names
}

func manyNames(prefix string, n, pad int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d-%s", prefix, i, strings.Repeat("z", i%pad))
	}
	return out
}

// emptyTree makes a source tree with dir holding n empty files.
func emptyTree(t testing.TB, dir string, n int) string {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range manyNames("old", n, 30) {
		if err := os.WriteFile(filepath.Join(src, dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func TestDirWriteLinear(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-t", "ext2", "-b", "1024", "-O", "^dir_index"},
		{"-t", "ext4", "-b", "1024", "-O", "^dir_index"},
		{"-t", "ext3", "-b", "4096", "-O", "^dir_index,^filetype"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, emptyTree(t, "d", 10), 16, args...)
			f := openRW(t, img)
			names := manyNames("new", 300, 60)
			err := dirTx(t, f, "/d", func(tx *tx, dir *inode) error {
				for _, n := range names {
					if _, err := txCreate(tx, dir, n); err != nil {
						return err
					}
				}
				if _, err := txMkdir(tx, dir, "sub"); err != nil {
					return err
				}
				if err := tx.addEntry(dir, names[3], dir.num, layout.FTDir); !errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("duplicate name: %v", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			fsckClean(t, img)
			err = dirTx(t, f, "/d", func(tx *tx, dir *inode) error {
				for _, n := range names[:150] {
					if err := txRemove(tx, dir, n); err != nil {
						return err
					}
				}
				return txRmdir(tx, dir, "sub")
			})
			if err != nil {
				t.Fatal(err)
			}
			fsckClean(t, img)
			ls := debugfsLs(t, img, "/d")
			for i, n := range names {
				if ls[n] != (i >= 150) {
					t.Fatalf("debugfs ls: %q listed %v", n, ls[n])
				}
			}
			if ls["sub"] {
				t.Fatal("sub still listed")
			}
			g := mustOpen(t, img)
			for _, n := range names[150:] {
				if ok, err := g.HasFile("/d/" + n); !ok || err != nil {
					t.Fatalf("lookup %s: %v %v", n, ok, err)
				}
			}
		})
	}
}

// TestDirWriteHtreeSplits adds thousands of names to directories that
// e2fsck -D indexed (one of 20,000 entries on the checksummed 1 KiB
// layout, smaller ones for the other hash and layout variants) until
// many leaves split, then removes some; e2fsck must stay clean and every
// name be found through the index.
func TestDirWriteHtreeSplits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		old  int
		args []string
		ssv  []string
	}{
		{20000, []string{"-t", "ext4", "-b", "1024", "-N", "30000"}, nil},
		{2000, []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum"}, []string{"flags 2"}},
		{2000, []string{"-t", "ext3", "-b", "1024"}, []string{"def_hash_version tea"}},
		{2000, []string{"-t", "ext4", "-b", "2048"}, []string{"def_hash_version legacy", "flags 1"}},
	} {
		t.Run(fmt.Sprint(c.old, c.args, c.ssv), func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, emptyTree(t, "many", c.old), 64, c.args...)
			for _, v := range c.ssv {
				testtool.Run(t, "debugfs", "-w", "-R", "ssv "+v, img)
			}
			if out, code := testtool.Output(t, "e2fsck", "-fyD", img); code > 1 {
				t.Fatalf("e2fsck -fyD: exit %d\n%s", code, out)
			}
			addAndCheck(t, img, "/many", c.old, 3000)
		})
	}
}

// addAndCheck adds n new files to the indexed directory p of img (which
// holds old names), removes a third of them, and checks the result.
func addAndCheck(t *testing.T, img, p string, old, n int) {
	f := openRW(t, img)
	if !f.indexed(mustInode(t, f, p)) {
		t.Fatalf("%s is not indexed", p)
	}
	before := f.dirBlocks(mustInode(t, f, p))
	names := manyNames("new", n, 200)
	for at := 0; at < len(names); at += 1000 {
		err := dirTx(t, f, p, func(tx *tx, dir *inode) error {
			for _, name := range names[at:min(at+1000, n)] {
				if _, err := txCreate(tx, dir, name); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fsckClean(t, img)
	g := mustOpen(t, img)
	after := g.dirBlocks(mustInode(t, g, p))
	if after < before+10 {
		t.Fatalf("directory grew from %d to %d blocks: too few splits", before, after)
	}
	for i, name := range names {
		if i%7 == 0 {
			if ok, err := g.HasFile(p + "/" + name); !ok || err != nil {
				t.Fatalf("lookup %s: %v %v", name, ok, err)
			}
		}
	}
	if ls := debugfsLs(t, img, p); len(ls) != old+n+2 {
		t.Fatalf("debugfs lists %d names, want %d", len(ls), old+n+2)
	}
	err := dirTx(t, f, p, func(tx *tx, dir *inode) error {
		for _, name := range names[:n/3] {
			if err := txRemove(tx, dir, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fsckClean(t, img)
	ls := debugfsLs(t, img, p)
	for i, name := range names {
		if ls[name] != (i >= n/3) {
			t.Fatalf("after removing: %q listed %v", name, ls[name])
		}
	}
	t.Logf("%s: %d -> %d blocks", p, before, after)
}
