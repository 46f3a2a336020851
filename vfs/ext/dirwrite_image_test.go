package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// unsynced serves a file without its Sync: the write-order barriers
// (fsyncs) are skipped. The directory tests make thousands of operations,
// several fsyncs each; the barriers have their own crash tests
// (inject/diskimage TestCrashAtEveryWrite).
type unsynced struct {
	io.ReaderAt
	io.WriterAt
}

// openRW opens img for writing.
func openRW(t testing.TB, img string) *FS {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	f, err := Open(unsynced{fh, fh}, st.Size(), &Options{Writable: true})
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
		{"-t", "ext4", "-b", "65536", "-N", "1000"}, // rec_len of a whole 64 KiB block
		{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum,^64bit"},
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
			// One more name in a directory with room: one directory block
			// written, not every block the scan read.
			err = dirTx(t, f, "/d", func(tx *tx, dir *inode) error {
				if _, err := txCreate(tx, dir, "one-more"); err != nil {
					return err
				}
				n := 0
				for _, b := range tx.blocks {
					if b.kind == kindDir {
						n++
					}
				}
				if n != 1 {
					return fmt.Errorf("%d directory blocks to write", n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			fsckClean(t, img)
			ls := debugfsLs(t, img, "/d")
			if !ls["one-more"] {
				t.Fatal("one-more not listed")
			}
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

// dxLevels returns the index levels of directory p (0: not indexed).
func dxLevels(t *testing.T, f *FS, p string) int {
	t.Helper()
	levels := 0
	err := dirTx(t, f, p, func(tx *tx, dir *inode) error {
		w, err := tx.dirWriter(dir)
		if err != nil || !w.indexed {
			return err
		}
		_, info, err := w.dxRoot()
		levels = int(info.IndirectLevels) + 1
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return levels
}

// TestDirWriteIndexLevels grows an empty directory with long names: it
// becomes indexed when its first block fills, gains a second index level,
// and then either refuses (no large_dir: the index is full at two levels)
// or gains a third (large_dir). e2fsck stays clean throughout.
func TestDirWriteIndexLevels(t *testing.T) {
	t.Parallel()
	for _, large := range []bool{false, true} {
		t.Run(fmt.Sprint("large_dir=", large), func(t *testing.T) {
			t.Parallel()
			src := filepath.Join(t.TempDir(), "src")
			os.MkdirAll(filepath.Join(src, "big"), 0o755)
			args := []string{"-t", "ext4", "-b", "1024", "-N", "34000", "-I", "128"}
			if large {
				args = append(args, "-O", "large_dir")
			}
			img := mkfs(t, src, 80, args...)
			f := openRW(t, img)
			const batch = 4000
			var err error
			n, levels := 0, 0
			for n < 40000 && err == nil {
				err = dirTx(t, f, "/big", func(tx *tx, dir *inode) error {
					for i := 0; i < batch; i++ {
						if _, err := txCreate(tx, dir, longName(n+i)); err != nil {
							return err
						}
					}
					return nil
				})
				if err == nil {
					n += batch
				}
				if levels = dxLevels(t, f, "/big"); large && levels == 3 {
					break
				}
			}
			switch {
			case !large && (!errors.Is(err, vfs.ErrNoSpace) || levels != 2):
				t.Fatalf("without large_dir: %d names, %d levels, then %v", n, levels, err)
			case large && (err != nil || levels != 3):
				t.Fatalf("with large_dir: %d names, %d levels, then %v", n, levels, err)
			}
			if large { // past the third level: the node under the root splits
				err = dirTx(t, f, "/big", func(tx *tx, dir *inode) error {
					for i := 0; i < 2500; i++ {
						if _, err := txCreate(tx, dir, longName(n+i)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				n += 2500
			}
			fsckClean(t, img)
			g := mustOpen(t, img)
			for i := 0; i < n; i += 97 {
				if ok, err := g.HasFile("/big/" + longName(i)); !ok || err != nil {
					t.Fatalf("lookup %d: %v %v", i, ok, err)
				}
			}
			t.Logf("%d names, %d index levels, last batch: %v", n, levels, err)
		})
	}
}

// TestDirWriteInline fills an inline-data directory: entries go into
// i_block, then into a growing system.data value, then the directory
// moves out to a block, which later becomes an index. e2fsck checks
// every stage.
func TestDirWriteInline(t *testing.T) {
	t.Parallel()
	for _, isize := range []string{"256", "512"} {
		t.Run("inode size "+isize, func(t *testing.T) {
			t.Parallel()
			testInlineDir(t, isize)
		})
	}
}

func testInlineDir(t *testing.T, isize string) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "small"), 0o755)
	os.MkdirAll(filepath.Join(src, "empty"), 0o755)
	os.WriteFile(filepath.Join(src, "small", "a"), []byte("x"), 0o644)
	img := mkfs(t, src, 16, "-t", "ext4", "-b", "1024", "-I", isize, "-O", "inline_data")
	f := openRW(t, img)
	if !mustInode(t, f, "/small").flag(layout.FlagInlineData) {
		t.Fatal("/small is not inline")
	}
	var added []string
	add := func(k int) {
		t.Helper()
		err := dirTx(t, f, "/small", func(tx *tx, dir *inode) error {
			for i := 0; i < k; i++ {
				name := fmt.Sprintf("file-%03d", len(added))
				if _, err := txCreate(tx, dir, name); err != nil {
					return err
				}
				added = append(added, name)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fsckClean(t, img)
	}
	add(1) // i_block
	if in := mustInode(t, f, "/small"); !in.flag(layout.FlagInlineData) || in.size != 60 {
		t.Fatalf("after 1 entry: flags %#x size %d", in.raw.Flags, in.size)
	}
	add(5) // system.data grows
	if in := mustInode(t, f, "/small"); !in.flag(layout.FlagInlineData) || in.size <= 60 {
		t.Fatalf("after 6 entries: flags %#x size %d", in.raw.Flags, in.size)
	}
	for mustInode(t, f, "/small").flag(layout.FlagInlineData) {
		if len(added) > 100 {
			t.Fatal("never moved out of the inode")
		}
		add(1)
	}
	t.Logf("moved out after %d entries", len(added))
	add(100) // a block, then an index
	if in := mustInode(t, f, "/small"); !f.indexed(in) {
		t.Fatalf("not indexed after %d entries (flags %#x, size %d)", len(added), in.raw.Flags, in.size)
	}
	ls := debugfsLs(t, img, "/small")
	for _, n := range append(added, "a") {
		if !ls[n] {
			t.Fatalf("debugfs does not list %s", n)
		}
	}
	// A new inline directory (as the kernel makes them on inline_data).
	err := dirTx(t, f, "/", func(tx *tx, root *inode) error {
		in, err := tx.allocInode(root.num, true)
		if err != nil {
			return err
		}
		in.raw.Mode = layout.ModeDir | 0o755
		in.raw.Flags |= layout.FlagInlineData
		if err := tx.initDir(in, root.num); err != nil {
			return err
		}
		if err := tx.addEntry(root, "newinline", in.num, layout.FTDir); err != nil {
			return err
		}
		for i := 0; i < 3; i++ {
			if _, err := txCreate(tx, in, fmt.Sprint("f", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fsckClean(t, img)
	if in := mustInode(t, f, "/newinline"); !in.flag(layout.FlagInlineData) || in.raw.LinksCount != 2 {
		t.Fatalf("new inline directory: flags %#x, %d links", in.raw.Flags, in.raw.LinksCount)
	}
	if ls := debugfsLs(t, img, "/newinline"); !ls["f0"] || !ls["f2"] || !ls[".."] {
		t.Fatalf("debugfs lists %v", ls)
	}
	// Removing from and emptying an inline directory.
	err = dirTx(t, f, "/empty", func(tx *tx, dir *inode) error {
		if _, err := txCreate(tx, dir, "x"); err != nil {
			return err
		}
		if empty, err := tx.dirIsEmpty(dir); empty || err != nil {
			return fmt.Errorf("after adding: empty %v, %v", empty, err)
		}
		if err := txRemove(tx, dir, "x"); err != nil {
			return err
		}
		if empty, err := tx.dirIsEmpty(dir); !empty || err != nil {
			return fmt.Errorf("after removing: empty %v, %v", empty, err)
		}
		_, err := tx.removeEntry(dir, "x")
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("second remove: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fsckClean(t, img)
}

// TestDirWriteCasefold adds names to a casefold directory, linear then
// indexed: names are stored as given, hashed folded, found under any
// case, and a name differing only in case is refused as existing.
func TestDirWriteCasefold(t *testing.T) {
	t.Parallel()
	img := mkfs(t, "", 32, "-t", "ext4", "-b", "1024", "-O", "casefold")
	testtool.Run(t, "debugfs", "-w", "-R", "mkdir cf", img)
	testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field cf flags 0x40080000", img)
	f := openRW(t, img)
	name := func(i int) string { return fmt.Sprintf("Straße-%03d-ÉCOLE", i) }
	err := dirTx(t, f, "/cf", func(tx *tx, dir *inode) error {
		for i := 0; i < 400; i++ {
			if _, err := txCreate(tx, dir, name(i)); err != nil {
				return err
			}
		}
		if err := tx.addEntry(dir, "STRASSE-007-école", dir.num, layout.FTDir); !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("name differing in case: %v", err)
		}
		return txRemove(tx, dir, "strasse-010-ÉCOLE")
	})
	if err != nil {
		t.Fatal(err)
	}
	fsckClean(t, img)
	g := mustOpen(t, img)
	if !g.indexed(mustInode(t, g, "/cf")) {
		t.Fatal("/cf did not become indexed")
	}
	ls := debugfsLs(t, img, "/cf")
	for i := 0; i < 400; i++ {
		if ls[name(i)] != (i != 10) {
			t.Fatalf("debugfs: %s listed %v", name(i), ls[name(i)])
		}
		if ok, err := g.HasFile("/cf/" + strings.ToUpper(fmt.Sprintf("strasse-%03d-école", i))); ok != (i != 10) || err != nil {
			t.Fatalf("lookup %d: %v %v", i, ok, err)
		}
	}
}

// TestDirWriteRefusals: encrypted directories and bad names are refused
// before anything changes.
func TestDirWriteRefusals(t *testing.T) {
	t.Parallel()
	img := mkfs(t, "", 16, "-t", "ext4", "-b", "1024", "-O", "encrypt")
	testtool.Run(t, "debugfs", "-w", "-R", "mkdir enc", img)
	testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field enc flags 0x80800", img)
	before, _ := os.ReadFile(img)
	f := openRW(t, img)
	err := dirTx(t, f, "/enc", func(tx *tx, dir *inode) error {
		return tx.addEntry(dir, "x", layout.RootIno, layout.FTDir)
	})
	if !errors.Is(err, vfs.ErrUnsupported) {
		t.Fatalf("encrypted directory: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00b", strings.Repeat("n", 256)} {
		err := dirTx(t, f, "/", func(tx *tx, dir *inode) error {
			return tx.addEntry(dir, bad, layout.RootIno, layout.FTDir)
		})
		if !errors.Is(err, vfs.ErrInvalidPath) {
			t.Fatalf("name %q: %v", bad, err)
		}
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Fatal("a refused operation changed the image")
	}
	// A damaged entry (rec_len 0 on the "..": a walk would never end).
	src := emptyTree(t, "d", 5)
	img = mkfs(t, src, 16, "-t", "ext4", "-b", "1024", "-O", "^metadata_csum")
	patch(t, img, firstBlock(t, img, "/d")*1024+12+4, []byte{0, 0})
	before, _ = os.ReadFile(img)
	f = openRW(t, img)
	for _, op := range []func(tx *tx, dir *inode) error{
		func(tx *tx, dir *inode) error { return tx.addEntry(dir, "y", layout.RootIno, layout.FTDir) },
		func(tx *tx, dir *inode) error { _, err := tx.removeEntry(dir, "old-00001-z"); return err },
		func(tx *tx, dir *inode) error { _, err := tx.dirIsEmpty(dir); return err },
	} {
		if err := dirTx(t, f, "/d", op); !errors.Is(err, vfs.ErrCorrupt) {
			t.Fatalf("rec_len 0: %v", err)
		}
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Fatal("a refused operation changed the image")
	}
	// An index flag without dir_index: linear writes would reuse the
	// root's ".." slack, where the index lives.
	img = mkfs(t, "", 16, "-t", "ext4", "-b", "1024", "-O", "^dir_index")
	testtool.Run(t, "debugfs", "-w", "-R", "mkdir x", img)
	testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field x flags 0x81000", img)
	before, _ = os.ReadFile(img)
	f = openRW(t, img)
	err = dirTx(t, f, "/x", func(tx *tx, dir *inode) error {
		return tx.addEntry(dir, "y", layout.RootIno, layout.FTDir)
	})
	if !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("index flag without dir_index: %v", err)
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Fatal("a refused operation changed the image")
	}
}

// TestDirLinkCounts checks the kernel's subdirectory counting rules: past
// 65,000 an indexed directory on a dir_nlink filesystem reads 1, other
// directories refuse another subdirectory; rmdir keeps 1 and 2.
func TestDirLinkCounts(t *testing.T) {
	t.Parallel()
	for _, dirNlink := range []bool{true, false} {
		args := []string{"-t", "ext4", "-b", "1024"}
		if !dirNlink {
			args = append(args, "-O", "^dir_nlink")
		}
		img := mkfs(t, "", 16, args...)
		f := openRW(t, img)
		tx, err := f.begin()
		if err != nil {
			t.Fatal(err)
		}
		dir, err := tx.inode(layout.RootIno)
		if err != nil {
			t.Fatal(err)
		}
		inc := func(indexed bool, from uint16) (uint16, error) {
			dir.raw.Flags &^= layout.FlagIndex
			if indexed {
				dir.raw.Flags |= layout.FlagIndex
			}
			dir.raw.LinksCount = from
			err := tx.incDirLinks(dir)
			return dir.raw.LinksCount, err
		}
		for _, c := range []struct {
			indexed bool
			from    uint16
			want    uint16
			tooMany bool
		}{
			{false, 2, 3, false},
			{false, 64999, 65000, false},
			{false, 65000, 65000, true},
			{true, 64999, 65000, false},
			{true, 65000, 1, !dirNlink},
			{true, 1, 1, !dirNlink},
		} {
			if c.tooMany && !dirNlink && c.from == 1 {
				c.tooMany, c.want = false, 2 // without dir_nlink a count of 1 is just 1
			}
			got, err := inc(c.indexed, c.from)
			if c.tooMany {
				if !errors.Is(err, vfs.ErrTooManyLinks) {
					t.Errorf("dir_nlink=%v indexed=%v from %d: %d, %v (want EMLINK)", dirNlink, c.indexed, c.from, got, err)
				}
				continue
			}
			if err != nil || got != c.want {
				t.Errorf("dir_nlink=%v indexed=%v from %d: %d, %v (want %d)", dirNlink, c.indexed, c.from, got, err, c.want)
			}
		}
		for _, c := range [][2]uint16{{1, 1}, {2, 2}, {3, 2}, {100, 99}} {
			dir.raw.LinksCount = c[0]
			if tx.decDirLinks(dir); dir.raw.LinksCount != c[1] {
				t.Errorf("dec from %d: %d, want %d", c[0], dir.raw.LinksCount, c[1])
			}
		}
		tx.abort()
	}
}

// TestDirWriteGrowToIndex grows an empty directory through our writer
// alone until its first block fills (it becomes indexed) and leaves split,
// on the smallest and the largest block size.
func TestDirWriteGrowToIndex(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n    int
		args []string
	}{
		{600, []string{"-t", "ext4", "-b", "1024"}},
		{7000, []string{"-t", "ext4", "-b", "65536", "-N", "8000"}},
	} {
		t.Run(c.args[3], func(t *testing.T) {
			t.Parallel()
			src := filepath.Join(t.TempDir(), "src")
			os.MkdirAll(filepath.Join(src, "d"), 0o755)
			img := mkfs(t, src, 64, c.args...)
			f := openRW(t, img)
			names := manyNames("g", c.n, 20)
			err := dirTx(t, f, "/d", func(tx *tx, dir *inode) error {
				for _, n := range names {
					if _, err := txCreate(tx, dir, n); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			fsckClean(t, img)
			g := mustOpen(t, img)
			d := mustInode(t, g, "/d")
			if !g.indexed(d) || g.dirBlocks(d) < 4 {
				t.Fatalf("indexed %v, %d blocks", g.indexed(d), g.dirBlocks(d))
			}
			for _, n := range names {
				if ok, err := g.HasFile("/d/" + n); !ok || err != nil {
					t.Fatalf("lookup %s: %v %v", n, ok, err)
				}
			}
			out := string(testtool.Run(t, "debugfs", "-R", "htree /d", img))
			if !strings.Contains(out, "Root node dump") || !strings.Contains(out, names[c.n-1]) {
				t.Fatalf("debugfs htree /d:\n%.2000s", out)
			}
		})
	}
}

// TestDirWriteEmptiedLeafLookup empties most leaves of an indexed
// directory without checksums: an emptied leaf (one unused entry over the
// block) has the shape of an index node, and lookups through the index
// must still treat it as the empty leaf it is.
func TestDirWriteEmptiedLeafLookup(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	img := mkfs(t, src, 32, "-t", "ext4", "-b", "1024", "-O", "^metadata_csum")
	f := openRW(t, img)
	names := manyNames("g", 400, 20)
	step := func(fn func(tx *tx, dir *inode, n string) error, ns []string) {
		t.Helper()
		err := dirTx(t, f, "/d", func(tx *tx, dir *inode) error {
			for _, n := range ns {
				if err := fn(tx, dir, n); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	step(func(tx *tx, dir *inode, n string) error { _, err := txCreate(tx, dir, n); return err }, names)
	step(txRemove, names[:395])
	fsckClean(t, img)
	g := mustOpen(t, img)
	if !g.indexed(mustInode(t, g, "/d")) {
		t.Fatal("/d is not indexed")
	}
	for i, n := range names {
		if ok, err := g.HasFile("/d/" + n); err != nil || ok != (i >= 395) {
			t.Fatalf("lookup %s: %v %v", n, ok, err)
		}
	}
}
