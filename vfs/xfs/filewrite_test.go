package xfs

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// TestAppendExtentsToBtree grows two interleaved files (so their extents
// cannot merge) from empty through an inline extent list to a bmap btree
// fork with several leaves: after every transaction xfs_repair -n is
// clean, xfs_db reports the fork format and extent count, and the
// engine reads back every byte written. Then one file is truncated in
// steps back to an extent list and to nothing, the same checks after each.
func TestAppendExtentsToBtree(t *testing.T) {
	now := time.Unix(1764750000, 0)
	for _, c := range []struct {
		name string
		args []string
	}{{"v5", []string{"-m", "reflink=0"}}, {"v4", []string{"-m", "crc=0"}},
		{"v5-rmapbt", []string{"-m", "rmapbt=1,reflink=0"}}, {"v5-rmapbt-reflink-1k", []string{"-m", "rmapbt=1,reflink=1", "-b", "size=1024"}}} {
		t.Run(c.name, func(t *testing.T) {
			img := emptyImage(t, c.args...)
			f := openRW(t, img)
			bs := int(f.geo.blockSize)
			tr, _ := f.begin()
			var inos [2]uint64
			for i := range inos {
				ino, err := tr.create(f.sb.RootIno, fmt.Sprintf("grow%d", i), vfs.UnixRegular|0o644, 0, 0, now)
				if err != nil {
					t.Fatal(err)
				}
				inos[i] = ino
			}
			if err := tr.commit(); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewSource(3))
			var content [2][]byte
			seen := map[string]bool{}
			for batch := 0; batch < 8; batch++ {
				tr, _ := f.begin()
				steps := 100
				if batch == 0 {
					steps = 6 // still an inline extent list
				}
				for step := 0; step < steps; step++ {
					i := step % 2
					chunk := pattern(bs*(1+rng.Intn(3)), byte(batch*100+step))
					if err := tr.appendData(inos[i], chunk, now); err != nil {
						t.Fatalf("batch %d step %d: %v", batch, step, err)
					}
					content[i] = append(content[i], chunk...)
				}
				if err := tr.commit(); err != nil {
					t.Fatal(err)
				}
				repairClean(t, img)
				g := openImage(t, img, nil)
				for i, ino := range inos {
					out := xfsDB(t, img, fmt.Sprintf("inode %d", ino), "p core.format core.nextents core.size")
					seen[strings.Fields(strings.SplitN(out, "\n", 2)[0])[2]] = true
					in := mustInode(t, g, ino)
					d, err := g.openData(in)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(io.NewSectionReader(d, 0, in.size()))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, content[i]) {
						t.Fatalf("batch %d: file %d reads back %d bytes differing from the %d written", batch, i, len(got), len(content[i]))
					}
					if dbField(t, img, "core.nextents", fmt.Sprintf("inode %d", ino)) != uint64(len(d.exts)) {
						t.Fatalf("xfs_db and the engine disagree on the extent count:\n%s", out)
					}
				}
			}
			if !seen["2"] || !seen["3"] {
				t.Fatalf("fork formats seen %v: want both extents (2) and btree (3)", seen)
			}
			if n := dbField(t, img, "core.nextents", fmt.Sprintf("inode %d", inos[0])); n <= uint64((bs-72)/16) {
				t.Fatalf("%d extents fit one bmap leaf: no multi-leaf tree was tested", n)
			}
			// And back: file 0 truncated in steps, its bmap btree
			// shrinking to one leaf, then to an extent list, then to
			// nothing; file 1 keeps its tree.
			format := func(ino uint64) string {
				return strings.Fields(xfsDB(t, img, fmt.Sprintf("inode %d", ino), "p core.format"))[2]
			}
			formats := map[string]bool{}
			for size := len(content[0]); ; size = size / 3 &^ 7 {
				tr, _ := f.begin()
				if err := tr.truncateData(inos[0], uint64(size), now); err != nil {
					t.Fatalf("truncate to %d: %v", size, err)
				}
				if err := tr.commit(); err != nil {
					t.Fatal(err)
				}
				content[0] = content[0][:size]
				repairClean(t, img)
				g := openImage(t, img, nil)
				in := mustInode(t, g, inos[0])
				d, err := g.openData(in)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(io.NewSectionReader(d, 0, in.size()))
				if err != nil || !bytes.Equal(got, content[0]) {
					t.Fatalf("truncated to %d: reads back %d bytes (%v) differing from the %d kept", size, len(got), err, size)
				}
				formats[format(inos[0])] = true
				if nb := dbField(t, img, "core.nblocks", fmt.Sprintf("inode %d", inos[0])); size == 0 && nb != 0 {
					t.Fatalf("emptied file still counts %d blocks", nb)
				}
				if size == 0 {
					break
				}
			}
			if !formats["3"] || !formats["2"] {
				t.Fatalf("fork formats met while shrinking: %v, want btree (3) then extents (2)", formats)
			}
			if format(inos[1]) != "3" {
				t.Fatal("the untouched file lost its bmap btree")
			}
		})
	}
}
