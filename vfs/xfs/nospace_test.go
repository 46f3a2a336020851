package xfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// TestNearlyFull: on a filesystem mkfs.xfs filled (one file taking all
// but a few hundred blocks), new files are written until one does not
// fit; that one, and then every operation that needs more space than is
// left (an append, a new file, a remote symlink, a directory growing out
// of its inode, a replacement larger than the space left plus the old
// content's blocks), fails with ErrNoSpace (vfs.ErrNoSpace) and leaves the
// image byte for byte unchanged; a batch of operations loses only the one
// that failed. xfs_repair -n is clean after, and the engine reads back
// what landed.
func TestNearlyFull(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{{"v5", nil}, {"v4", []string{"-m", "crc=0"}}} {
		t.Run(c.name, func(t *testing.T) {
			if testing.Short() && c.name != "v5" {
				t.Skip("-short: v5 only (each case writes 250 MiB)")
			}
			dir := t.TempDir()
			// One file per AG, each leaving 60 blocks of the AG's
			// longest free extent (mkfs.xfs -p writes a file larger
			// than an AG wrongly), written in full: mkfs.xfs keeps
			// the holes of a sparse source.
			// The engine, like the kernel, keeps its reserve free
			// (globalReserve: the reserve pool, the free-list set-aside,
			// the per-AG btree reservations): each AG also leaves its
			// share of that, so about 60 blocks per AG stay usable.
			probe := filepath.Join(dir, "probe.img")
			mkfs(t, probe, 320<<20, c.args...)
			bs := dbField(t, probe, "blocksize", "sb 0")
			agCount := dbField(t, probe, "agcount", "sb 0")
			reserve := openImage(t, probe, nil).globalReserve()
			leave := 60 + (reserve+agCount-1)/agCount
			var sizes []uint64
			for ag := uint64(0); ag < agCount; ag++ {
				if n := dbField(t, probe, "longest", fmt.Sprintf("agf %d", ag)); n > leave {
					sizes = append(sizes, n-leave)
				}
			}
			os.Remove(probe)
			slices.Sort(sizes)
			slices.Reverse(sizes)
			src := filepath.Join(dir, "src")
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			chunk := pattern(1<<20, 0xA5)
			for i, n := range sizes {
				fh, err := os.Create(filepath.Join(src, fmt.Sprintf("big%d", i)))
				if err != nil {
					t.Fatal(err)
				}
				for left := int64(n * bs); left > 0; left -= int64(len(chunk)) {
					if _, err := fh.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
						t.Fatal(err)
					}
				}
				if err := fh.Close(); err != nil {
					t.Fatal(err)
				}
			}
			img := filepath.Join(dir, "fs.img")
			mkfsTree(t, img, src, 320<<20, c.args...)
			os.RemoveAll(src)
			repairClean(t, img)
			left := dbField(t, img, "fdblocks", "sb 0") - reserve // usable
			const spare = 400
			if left > spare {
				t.Fatalf("%d usable blocks free after mkfs (%d kept in reserve), want at most %d", left, reserve, spare)
			}
			f := openRW(t, img)
			refused := func(what string, op func() error) {
				t.Helper()
				before := fileSum(t, img)
				if err := op(); !errors.Is(err, vfs.ErrNoSpace) || !errors.Is(err, ErrNoSpace) {
					t.Fatalf("%s on a full filesystem: %v, want ErrNoSpace", what, err)
				}
				if fileSum(t, img) != before {
					t.Fatalf("%s: the refused operation changed the image", what)
				}
			}
			// Fill with files of 16 blocks until one does not fit.
			written := map[string][]byte{}
			for i := 0; ; i++ {
				if i > 2*spare/16+4 {
					t.Fatalf("%d files of 16 blocks fit in %d free blocks", i, left)
				}
				p, data := fmt.Sprintf("/f%d", i), pattern(16*int(bs), byte(i))
				before := fileSum(t, img)
				err := f.ReplaceFile(p, data)
				if err == nil {
					written[p] = data
					continue
				}
				if !errors.Is(err, vfs.ErrNoSpace) {
					t.Fatalf("write %s: %v", p, err)
				}
				if fileSum(t, img) != before {
					t.Fatalf("write %s: the refused write changed the image", p)
				}
				t.Logf("%d files of 16 blocks written in %d free blocks, the next refused: %v", len(written), left, err)
				break
			}
			if len(written) == 0 {
				t.Fatal("no file fitted: the test filled the filesystem too far")
			}
			refused("append", func() error { return f.AppendFile("/f0", pattern(64*int(bs), 1)) })
			refused("new file", func() error { return f.ReplaceFile("/huge", pattern(64*int(bs), 2)) })
			// Replacing the content of a file with a hole (not
			// rewritten in place: truncated, then written) by more
			// than the space left and its own blocks: refused before
			// the truncation that would free them commits.
			if err := f.Truncate("/f1", int64(40*bs)); err != nil {
				t.Fatal(err)
			}
			written["/f1"] = append(written["/f1"], make([]byte, 24*int(bs))...)
			refused("replace", func() error { return f.ReplaceFile("/f1", pattern(80*int(bs), 4)) })
			// What fits in the last blocks, then the remote symlinks and
			// a directory growing out of its inode once nothing does.
			for i := 0; ; i++ {
				p := fmt.Sprintf("/small%d", i)
				if err := f.ReplaceFile(p, []byte("x")); err != nil {
					if !errors.Is(err, vfs.ErrNoSpace) {
						t.Fatal(err)
					}
					break
				}
				written[p] = []byte("x")
				if i > 4*spare {
					t.Fatal("small files never ran out of space")
				}
			}
			refused("remote symlink", func() error { return f.Symlink(strings.Repeat("t", 1000), "/long") })
			// Names of half the inode's data fork: one fits in /d's
			// inode, the second needs a directory block.
			fork := int(f.geo.inodeSize) - layout.InodeCoreV2Size
			if f.geo.crc {
				fork = int(f.geo.inodeSize) - layout.InodeCoreV3Size
			}
			if err := f.MakePath("/d/" + strings.Repeat("e", fork/2)); err != nil {
				t.Fatal(err) // in the inodes: no block needed
			}
			refused("directory growth", func() error { return f.MakePath("/d/" + strings.Repeat("g", fork/2)) })
			// A batch keeps the operations before the one that failed.
			b := openRWOpts(t, img, &Options{Batch: true})
			if err := b.Truncate("/f0", 0); err != nil {
				t.Fatal(err)
			}
			written["/f0"] = []byte{}
			if err := b.ReplaceFile("/f0", pattern(8*int(bs), 7)); err != nil {
				t.Fatal(err)
			}
			written["/f0"] = pattern(8*int(bs), 7)
			if err := b.ReplaceFile("/later", pattern(64*int(bs), 3)); !errors.Is(err, vfs.ErrNoSpace) {
				t.Fatalf("a batched write larger than the space left: %v, want ErrNoSpace", err)
			}
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			repairClean(t, img)
			g := openImage(t, img, nil)
			for p, want := range written {
				if got, err := g.ReadFile(p); err != nil || string(got) != string(want) {
					t.Fatalf("%s: %d bytes, %v; want %d", p, len(got), err, len(want))
				}
			}
			for _, p := range []string{"/huge", "/long", "/later", "/d/" + strings.Repeat("g", fork/2)} {
				if ok, _ := g.HasFile(p); ok {
					t.Fatalf("%s exists after its refusal", p)
				}
			}
		})
	}
}
