package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// TestHardLinkAndSpotCheck: protofiles cannot express hard links, so the
// test points /files/tiny's short-form entry at /files/owned-1000's inode
// with xfs_db and sets its link count to 2. xfs_db's own path walk is the
// oracle: both names must lead to the same inode, whose fields xfs_db
// prints and the engine must report alike.
func TestHardLinkAndSpotCheck(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	buildSource(t, src, treeOpts{nodeEntries: 10})
	img := filepath.Join(t.TempDir(), "h.img")
	mkfsTree(t, img, src, 512<<20)
	fixRemoteSymlinks(t, img, []string{"/links/remote600"})
	ino := dbNumber(t, xfsDB(t, img, "path /files/owned-1000", "p v3.inumber"))
	list := xfsDB(t, img, "path /files", "p u3.sfdir3")
	idx := -1
	for i := 0; i < 16; i++ {
		if strings.Contains(list, fmt.Sprintf("u3.sfdir3.list[%d].name = \"tiny\"", i)) {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("/files/tiny not in the short-form list:\n%s", list)
	}
	xfsDBWrite(t, img, "path /files", fmt.Sprintf("write -d u3.sfdir3.list[%d].inumber.i4 %d", idx, ino))
	xfsDBWrite(t, img, "path /files/owned-1000", "write -d core.nlinkv2 2")
	if got := dbNumber(t, xfsDB(t, img, "path /files/tiny", "p v3.inumber")); got != ino {
		t.Fatalf("xfs_db: /files/tiny is inode %d, want %d", got, ino)
	}
	f := openImage(t, img, nil)
	a, errA := f.Lstat("/files/tiny")
	b, errB := f.Lstat("/files/owned-1000")
	if errA != nil || errB != nil || a.Ino != ino || b.Ino != ino || a.Nlink != 2 || a.UID != 1000 {
		t.Fatalf("hard link: %+v %v / %+v %v", a, errA, b, errB)
	}
	if got, err := f.ReadFile("/files/tiny"); err != nil || string(got) != "al\n" {
		t.Fatalf("content through the second name: %q, %v", got, err)
	}
	// Spot check of inode fields against xfs_db's print.
	for _, p := range []string{"/files/owned-4242", "/files/big3m", "/links/remote600", "/dirs/leaf", "/dev/sda1"} {
		fi, err := f.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		out := xfsDB(t, img, "path "+p, "p v3.inumber", "p core.size", "p core.uid", "p core.gid", "p core.nlinkv2", "p core.mode")
		want := fmt.Sprintf("v3.inumber = %d\ncore.size = %d\ncore.uid = %d\ncore.gid = %d\ncore.nlinkv2 = %d\ncore.mode = 0%o\n",
			fi.Ino, fi.Size, fi.UID, fi.GID, fi.Nlink, rawMode(f, p))
		if out != want {
			t.Errorf("%s: xfs_db prints\n%sengine says\n%s", p, out, want)
		}
	}
}

func rawMode(f *FS, p string) uint16 {
	_, in, err := f.resolve("lstat", p, false)
	if err != nil {
		return 0
	}
	return in.core.Mode
}

// TestHolesAndUnwritten: protofiles write files in full, so the test
// remaps /files/big3m with xfs_db into two extents with a 200-block hole
// between them, and marks /files/block4096's extent unwritten. Holes and
// unwritten blocks read as zeros, mapped blocks as the original bytes at
// their new place, through ReadFile and the streaming reader alike.
func TestHolesAndUnwritten(t *testing.T) {
	for _, v := range []struct {
		name string
		args []string
		pfx  string
	}{{"v5", nil, "u3"}, {"v4", []string{"-m", "crc=0"}, "u"}} {
		t.Run(v.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			buildSource(t, src, treeOpts{nodeEntries: 10})
			img := filepath.Join(t.TempDir(), "h.img")
			mkfsTree(t, img, src, 512<<20, v.args...)
			orig, _ := os.ReadFile(filepath.Join(src, "files/big3m"))
			start := dbNumber(t, xfsDB(t, img, "path /files/big3m", "p "+v.pfx+".bmx[0].startblock"))
			bs := 4096
			n := (len(orig) + bs - 1) / bs // 769 blocks
			// Blocks 0-199 stay; 200-399 become a hole; 400..n-1 map the
			// original blocks 300.. (the file's last 100 blocks are dropped
			// past EOF: size stays, so they read as a trailing hole).
			xfsDBWrite(t, img, "path /files/big3m",
				"write -d core.nextents 2",
				"write -d "+v.pfx+".bmx[0].blockcount 200",
				"write -d "+v.pfx+".bmx[1].startoff 400",
				fmt.Sprintf("write -d %s.bmx[1].startblock %d", v.pfx, start+300),
				fmt.Sprintf("write -d %s.bmx[1].blockcount %d", v.pfx, n-400-100),
				"write -d "+v.pfx+".bmx[1].extentflag 0")
			xfsDBWrite(t, img, "path /files/block4096", "write -d "+v.pfx+".bmx[0].extentflag 1")
			bmap := xfsDB(t, img, "path /files/big3m", "bmap")
			if !strings.Contains(bmap, "offset 400 startblock") || strings.Count(bmap, "data offset") != 2 {
				t.Fatalf("xfs_db bmap after the remap:\n%s", bmap)
			}
			want := make([]byte, len(orig))
			copy(want, orig[:200*bs])
			copy(want[400*bs:], orig[300*bs:(300+n-500)*bs])
			f := openImage(t, img, nil)
			got, err := f.ReadFile("/files/big3m")
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("ReadFile of the holed file: %d bytes, %v (equal %v)", len(got), err, bytes.Equal(got, want))
			}
			fl, err := f.OpenFile("/files/big3m")
			if err != nil {
				t.Fatal(err)
			}
			streamed, err := io.ReadAll(fl.Reader())
			if err != nil || !bytes.Equal(streamed, want) {
				t.Fatalf("streamed read differs: %v", err)
			}
			// Reads straddling the hole edges.
			for _, off := range []int64{int64(200*bs) - 5, int64(400*bs) - 5, int64(len(want)) - 7} {
				p := make([]byte, 10)
				k, err := fl.ReadAt(p, off)
				end := min(off+10, int64(len(want)))
				if int64(k) != end-off || !bytes.Equal(p[:k], want[off:end]) || (end < off+10) != (err == io.EOF) {
					t.Errorf("ReadAt(%d): %d, %v: %x want %x", off, k, err, p[:k], want[off:end])
				}
			}
			if got, err := f.ReadFile("/files/block4096"); err != nil || !bytes.Equal(got, make([]byte, 4096)) {
				t.Fatalf("unwritten extent: %v, zero %v", err, bytes.Equal(got, make([]byte, 4096)))
			}
		})
	}
}

// TestRealtimeFileRefused: a file whose data lives on the realtime device
// (which this engine cannot see) is refused as unsupported, not read from
// the data device.
func TestRealtimeFileRefused(t *testing.T) {
	img := smallImage(t)
	xfsDBWrite(t, img, "path /etc/passwd", "write -d core.realtime 1")
	f := openImage(t, img, nil)
	if _, err := f.ReadFile("/etc/passwd"); !errors.Is(err, vfs.ErrUnsupported) {
		t.Fatalf("ReadFile of a realtime file: %v", err)
	}
}
