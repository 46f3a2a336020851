package ext

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// writeSparse makes /name in the root through a raw transaction holding
// one block of content at each logical block in lblks.
func writeSparse(t *testing.T, w wfs, name string, lblks []uint64) []byte {
	t.Helper()
	bs := uint64(w.BlockSize())
	want := make([]byte, (lblks[len(lblks)-1]+1)*bs)
	err := w.inTx(func(tx *tx) error {
		root, err := tx.inode(layout.RootIno)
		if err != nil {
			return err
		}
		in, err := tx.newInode(root, false, newFileMode)
		if err != nil {
			return err
		}
		for _, l := range lblks {
			p, isNew, err := tx.mapBlock(in, l, true)
			if err != nil {
				return err
			}
			if !isNew {
				return fmt.Errorf("block %d was not new", l)
			}
			b := tx.newBlock(p, kindData)
			copy(b, fmt.Sprintf("block %d at %d", l, p))
			copy(want[l*bs:], b)
		}
		tx.setSize(in, int64(len(want)))
		tx.dirtyInode(in)
		return tx.addEntry(root, name, in.num, layout.FTRegular)
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func everyOther(n int) []uint64 {
	l := make([]uint64, n)
	for i := range l {
		l[i] = uint64(2 * i)
	}
	return l
}

// TestWriteExtentTreeGrows writes every other block so each block is an
// extent of its own: the tree grows leaves, then index levels; shrinking
// collapses it back into the inode.
func TestWriteExtentTreeGrows(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int
		args []string
	}{
		{"4k-depth2", 1500, []string{"-t", "ext4"}},
		{"1k-depth2", 400, []string{"-t", "ext4", "-b", "1024"}},
		{"1k-depth3", 29000, []string{"-t", "ext4", "-b", "1024", "-O", "^metadata_csum"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, "", 96, c.args...)
			w := openW(t, img)
			want := writeSparse(t, w, "sparse", everyOther(c.n))
			fsck(t, img)
			wantCat(t, img, "/sparse", want)
			got, err := mustOpen(t, img).ReadFile("/sparse")
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back: %d bytes, %v", len(got), err)
			}
			// Append across the holes' end, then shrink to 3 extents.
			if err := w.AppendFile("/sparse", []byte("appended")); err != nil {
				t.Fatal(err)
			}
			fsck(t, img)
			wantCat(t, img, "/sparse", append(want, "appended"...))
			bs := int64(w.BlockSize())
			if err := w.inTx(func(tx *tx) error {
				in, err := tx.inode(lookupT(t, w, "/sparse"))
				if err != nil {
					return err
				}
				return tx.truncate(in, 5*bs-7)
			}); err != nil {
				t.Fatal(err)
			}
			fsck(t, img)
			wantCat(t, img, "/sparse", want[:5*bs-7])
		})
	}
}

// lookupT returns the inode number at p.
func lookupT(t *testing.T, w wfs, p string) uint32 {
	t.Helper()
	fi, err := w.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(fi.Ino)
}

// TestWriteBlockMapLevels covers ext2/ext3 files reaching double and
// triple indirect blocks, then shrinking (indirect blocks freed).
func TestWriteBlockMapLevels(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		size int
	}{
		{"ext2-1k-dind", []string{"-t", "ext2", "-b", "1024"}, 400 << 10},
		{"ext3-4k-dind", []string{"-t", "ext3"}, 5 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, "", 64, c.args...)
			w := openW(t, img)
			data := make([]byte, c.size)
			for i := range data {
				data[i] = byte(i*7 + i>>10)
			}
			if err := w.ReplaceFile("/f", data); err != nil {
				t.Fatal(err)
			}
			fsck(t, img)
			wantCat(t, img, "/f", data)
			if err := w.ReplaceFile("/f", data[:20000]); err != nil {
				t.Fatal(err)
			}
			fsck(t, img)
			wantCat(t, img, "/f", data[:20000])
			if err := w.AppendFile("/f", data[20000:]); err != nil {
				t.Fatal(err)
			}
			fsck(t, img)
			wantCat(t, img, "/f", data)
		})
	}
	t.Run("ext2-1k-tind", func(t *testing.T) {
		t.Parallel()
		img := mkfs(t, "", 96, "-t", "ext2", "-b", "1024")
		w := openW(t, img)
		tind := uint64(12 + 256 + 256*256)
		want := writeSparse(t, w, "far", []uint64{0, 12, 300, tind + 3, tind + 70000})
		fsck(t, img)
		wantCat(t, img, "/far", want)
		if err := w.Remove("/far"); err != nil {
			t.Fatal(err)
		}
		fsck(t, img)
	})
}

// TestWriteNoSpace fills a small filesystem: the failing write reports
// ErrNoSpace and leaves the image byte for byte unchanged.
func TestWriteNoSpace(t *testing.T) {
	for _, k := range []struct {
		name string
		args []string
	}{{"ext4", []string{"-t", "ext4"}}, {"ext2", []string{"-t", "ext2"}}} {
		t.Run(k.name+"-blocks", func(t *testing.T) {
			img := mkfs(t, "", 8, k.args...)
			w := openW(t, img)
			if err := w.ReplaceFile("/fill", make([]byte, 5<<20)); err != nil {
				t.Fatal(err)
			}
			before := fileBytes(t, img)
			err := w.ReplaceFile("/more", make([]byte, 4<<20))
			if !errors.Is(err, vfs.ErrNoSpace) {
				t.Fatalf("writing past the end: %v", err)
			}
			if !bytes.Equal(before, fileBytes(t, img)) {
				t.Fatal("a failed write changed the image")
			}
			err = w.AppendFile("/fill", make([]byte, 4<<20))
			if !errors.Is(err, vfs.ErrNoSpace) || !bytes.Equal(before, fileBytes(t, img)) {
				t.Fatalf("append past the end: %v (image changed: %v)", err, !bytes.Equal(before, fileBytes(t, img)))
			}
			fsck(t, img)
		})
		t.Run(k.name+"-inodes", func(t *testing.T) {
			img := mkfs(t, "", 8, append(k.args, "-N", "32")...)
			w := openW(t, img)
			var err error
			var before []byte
			for i := 0; i < 200; i++ {
				before = fileBytes(t, img)
				if err = w.AppendFile(fmt.Sprintf("/f%d", i), []byte("x")); err != nil {
					break
				}
			}
			if !errors.Is(err, vfs.ErrNoSpace) {
				t.Fatalf("creating files until no inode is left: %v", err)
			}
			if !bytes.Equal(before, fileBytes(t, img)) {
				t.Fatal("a failed create changed the image")
			}
			fsck(t, img)
		})
	}
}

// TestWriteUninitGroups allocates into groups still flagged BLOCK_UNINIT
// and INODE_UNINIT (a big file, and top-level directories spread over
// groups), on flex_bg, non-flex_bg and gdt_csum layouts.
func TestWriteUninitGroups(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"flexbg", []string{"-t", "ext4", "-b", "1024"}},
		{"noflexbg", []string{"-t", "ext4", "-b", "1024", "-O", "^flex_bg"}},
		{"gdtcsum", []string{"-t", "ext4", "-b", "1024", "-O", "^metadata_csum,uninit_bg"}},
		{"metabg", []string{"-t", "ext4", "-b", "1024", "-O", "meta_bg,^resize_inode"}},
		{"sparse_super2", []string{"-t", "ext4", "-b", "1024", "-O", "sparse_super2"}},
		{"nosparse", []string{"-t", "ext4", "-b", "1024", "-O", "^sparse_super,^resize_inode"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, "", 64, c.args...)
			w := openW(t, img)
			uninit := countUninit(t, w.FS)
			if uninit == 0 {
				t.Fatal("mke2fs left no uninitialised group to test")
			}
			big := bytes.Repeat([]byte("uninit!\n"), 3<<20) // 24 MiB: several 8 MiB groups
			if err := w.ReplaceFile("/big", big); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 12; i++ {
				d := fmt.Sprintf("/top%d", i)
				if err := w.MakePath(d + "/sub"); err != nil {
					t.Fatal(err)
				}
				if err := w.ReplaceFile(d+"/sub/f", []byte(d)); err != nil {
					t.Fatal(err)
				}
			}
			if after := countUninit(t, w.FS); after >= uninit {
				t.Errorf("uninitialised groups: %d before, %d after", uninit, after)
			}
			fsck(t, img)
			wantCat(t, img, "/big", big)
			wantCat(t, img, "/top7/sub/f", []byte("/top7"))
		})
	}
}

// countUninit counts the groups flagged BLOCK_UNINIT or INODE_UNINIT.
func countUninit(t *testing.T, f *FS) int {
	n := 0
	for g := uint32(0); g < f.geo.groups; g++ {
		d, err := f.groupDesc(g)
		if err != nil {
			t.Fatal(err)
		}
		if d.Flags&(layout.GroupBlockUninit|layout.GroupInodeUninit) != 0 {
			n++
		}
	}
	return n
}

// TestWriteInlineGrows grows inline-data files: within i_block, into the
// system.data attribute, then out to extents; and shrinks one back.
func TestWriteInlineGrows(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "small"), []byte("tiny\n"), 0o644)
	os.WriteFile(filepath.Join(src, "mid"), bytes.Repeat([]byte("m"), 90), 0o644)
	img := mkfs(t, src, 32, "-t", "ext4", "-O", "inline_data")
	w := openW(t, img)
	in, _ := w.inode(lookupT(t, w, "/small"))
	if !in.flag(layout.FlagInlineData) {
		t.Fatal("mke2fs did not make /small inline")
	}
	small := []byte("tiny\n")
	for _, more := range [][]byte{bytes.Repeat([]byte("a"), 40), bytes.Repeat([]byte("b"), 50), bytes.Repeat([]byte("c"), 5000)} {
		if err := w.AppendFile("/small", more); err != nil {
			t.Fatal(err)
		}
		small = append(small, more...)
		fsck(t, img)
		wantInlineCat(t, img, "/small", small)
	}
	if in, _ := w.inode(lookupT(t, w, "/small")); in.flag(layout.FlagInlineData) || !in.flag(layout.FlagExtents) {
		t.Errorf("/small of %d bytes still inline (flags %#x)", len(small), in.raw.Flags)
	}
	if err := w.ReplaceFile("/mid", []byte("short")); err != nil {
		t.Fatal(err)
	}
	fsck(t, img)
	wantInlineCat(t, img, "/mid", []byte("short"))
	if err := w.Remove("/mid"); err != nil {
		t.Fatal(err)
	}
	fsck(t, img)
	// New small files and directories are made inline, as the kernel does.
	if err := w.ReplaceFile("/new", []byte("fits in the inode")); err != nil {
		t.Fatal(err)
	}
	if err := w.MakePath("/idir"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/new", "/idir"} {
		if s := debugfsStat(t, img, p); s.flags&uint32(layout.FlagInlineData) == 0 {
			t.Errorf("new %s is not inline: flags %#x", p, s.flags)
		}
	}
	for i := 0; i < 30; i++ {
		if err := w.ReplaceFile(fmt.Sprintf("/idir/a-longer-file-name-%02d", i), bytes.Repeat([]byte("z"), i*10)); err != nil {
			t.Fatal(err)
		}
	}
	fsck(t, img)
	wantInlineCat(t, img, "/new", []byte("fits in the inode"))
	wantCat(t, img, "/idir/a-longer-file-name-29", bytes.Repeat([]byte("z"), 290))
}

// TestWriteVFSSuite runs the shared vfs suite on writable ext images,
// each checked by e2fsck at the end.
func TestWriteVFSSuite(t *testing.T) {
	for _, k := range []struct {
		name string
		args []string
	}{{"ext4", []string{"-t", "ext4"}}, {"ext2", []string{"-t", "ext2"}}, {"ext4-inline", []string{"-t", "ext4", "-O", "inline_data"}}} {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			vfstest.Run(t, func(t *testing.T) vfs.FS {
				img := mkfs(t, "", 16, k.args...)
				t.Cleanup(func() { fsck(t, img) })
				return openW(t, img)
			})
		})
	}
}

// wantInlineCat is wantCat for a file that may be inline: debugfs reads
// all of i_block (60 bytes) for a shorter inline file, so zeros past the
// size are accepted; the engine's own read must match exactly.
func wantInlineCat(t *testing.T, img, p string, want []byte) {
	t.Helper()
	got := debugfsCat(t, img, p)
	if len(got) > len(want) && len(got) <= layout.InodeBlockSize && allZero(got[len(want):]) {
		got = got[:len(want)]
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("debugfs cat %s: %q, want %q", p, got, want)
	}
	if r, err := mustOpen(t, img).ReadFile(p); err != nil || !bytes.Equal(r, want) {
		t.Fatalf("ReadFile %s: %q, %v", p, r, err)
	}
}
