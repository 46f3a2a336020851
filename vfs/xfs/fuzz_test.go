package xfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// overlay serves base with data laid over it at off: a fuzz input replaces
// one structure of a real image without copying the image.
type overlay struct {
	base io.ReaderAt
	off  int64
	data []byte
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.base.ReadAt(p, off)
	lo, hi := max(off, o.off), min(off+int64(len(p)), o.off+int64(len(o.data)))
	if lo < hi {
		copy(p[lo-off:hi-off], o.data[lo-o.off:hi-o.off])
	}
	return n, err
}

// fuzzImages are the real images the fuzz targets are seeded from: a v5
// image (leaf directory /d, remote symlink, xattrs) and a v4 one whose
// directory /d has a bmap btree.
type fuzzImages struct {
	v5, v4 string
	size   int64
}

var (
	fuzzOnce sync.Once
	fuzzImgs fuzzImages
	fuzzErr  error
	fuzzDir  string // removed by TestMain: the images live for the process
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fuzzDir != "" {
		os.RemoveAll(fuzzDir)
	}
	os.Exit(code)
}

func buildFuzzImages(f *testing.F) fuzzImages {
	f.Helper()
	needTool(f, "mkfs.xfs")
	needTool(f, "xfs_db")
	fuzzOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xfsfuzz")
		fuzzDir = dir
		if err != nil {
			fuzzErr = err
			return
		}
		src := filepath.Join(dir, "src")
		os.MkdirAll(filepath.Join(src, "etc"), 0o755)
		os.MkdirAll(filepath.Join(src, "d"), 0o755)
		os.WriteFile(filepath.Join(src, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
		os.Symlink("/"+strings.Repeat("x/", 300), filepath.Join(src, "remote"))
		for i := 0; i < 1200; i++ {
			os.WriteFile(filepath.Join(src, "d", fmt.Sprintf("f%05d", i)), []byte("x"), 0o644)
		}
		fuzzImgs = fuzzImages{v5: filepath.Join(dir, "v5.img"), v4: filepath.Join(dir, "v4.img"), size: 300 << 20}
	})
	if fuzzErr != nil {
		f.Fatal(fuzzErr)
	}
	if _, err := os.Stat(fuzzImgs.v5); err != nil {
		src := filepath.Join(filepath.Dir(fuzzImgs.v5), "src")
		mkfsTree(f, fuzzImgs.v5, src, fuzzImgs.size)
		xfsDBWrite(f, fuzzImgs.v5, "path /etc/passwd", "attr_set -s -v 20 selinux", "attr_set -v 9000 big")
		mkfsTree(f, fuzzImgs.v4, src, fuzzImgs.size, "-m", "crc=0", "-i", "size=256")
	}
	return fuzzImgs
}

// daddrOf runs xfs_db locate commands and returns the byte offset of the
// current daddr.
func daddrOf(t testing.TB, img string, cmds ...string) int64 {
	t.Helper()
	out := xfsDB(t, img, append(cmds, "daddr")...)
	i := strings.Index(out, "current daddr is ")
	if i < 0 {
		t.Fatalf("xfs_db did not locate: %s", out)
	}
	var d int64
	fmt.Sscan(out[i+len("current daddr is "):], &d)
	return d * 512
}

func readBytes(t testing.TB, img string, off int64, n int) []byte {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, n)
	if _, err := fh.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// fuzzRead opens the image with data laid at off and reads through it:
// errors are fine, panics and hangs are not.
func fuzzRead(t *testing.T, img string, size, off int64, data []byte, paths ...string) {
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := Open(&overlay{base: fh, off: off, data: data}, size, &Options{AllowDirtyLog: true, MaxReadFileSize: 1 << 20})
	if err != nil {
		if !allowedErr(err) {
			t.Fatalf("Open: error of no known class: %v", err)
		}
		return
	}
	for _, p := range paths {
		f.ReadDir(p)
		f.ReadFile(p)
		f.Readlink(p)
		if names, err := f.ListXattr(p); err == nil {
			for _, n := range names {
				f.GetXattr(p, n)
			}
		}
		if _, err := f.Lstat(p); err != nil && !allowedErr(err) {
			t.Fatalf("Lstat(%s): error of no known class: %v", p, err)
		}
	}
}

var fuzzPaths = []string{"/", "/etc/passwd", "/remote", "/d", "/d/f00000", "/d/f00777", "/d/f01199", "/d/missing"}

// FuzzSuperblock lays the input over the primary superblock's sector.
func FuzzSuperblock(f *testing.F) {
	im := buildFuzzImages(f)
	f.Add(readBytes(f, im.v5, 0, 512))
	f.Add(readBytes(f, im.v4, 0, 512))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 512 {
			data = data[:512]
		}
		img := im.v5
		if len(data) >= 0x65 && data[0x64]&0xF == 4 {
			img = im.v4
		}
		fuzzRead(t, img, im.size, 0, data, fuzzPaths...)
	})
}

// FuzzInode lays the input over the inode of /d (a leaf directory on v5,
// a btree-mapped one on v4), with a fresh CRC so the field checks run.
func FuzzInode(f *testing.F) {
	im := buildFuzzImages(f)
	inoOff := func(img string) int64 {
		fh, _ := os.Open(img)
		defer fh.Close()
		st, _ := fh.Stat()
		fs, err := Open(fh, st.Size(), nil)
		if err != nil {
			f.Fatal(err)
		}
		_, in, err := fs.resolve("stat", "/d", true)
		if err != nil {
			f.Fatal(err)
		}
		return fs.geo.inoAddr(in.ino)
	}
	v5off, v4off := inoOff(im.v5), inoOff(im.v4)
	f.Add(readBytes(f, im.v5, v5off, 512), false)
	f.Add(readBytes(f, im.v4, v4off, 256), true)
	f.Fuzz(func(t *testing.T, data []byte, v4 bool) {
		img, off, n := im.v5, v5off, 512
		if v4 {
			img, off, n = im.v4, v4off, 256
		}
		if len(data) > n {
			data = data[:n]
		}
		if !v4 && len(data) >= 0x68 {
			data = append([]byte(nil), data...)
			putCRC(data, 0x64)
		}
		fuzzRead(t, img, im.size, off, data, "/d", "/d/f00000", "/d/f00777", "/d/missing")
	})
}

// FuzzDirBlock lays the input over /d's first data block or its leaf
// block (v5, CRC refreshed).
func FuzzDirBlock(f *testing.F) {
	im := buildFuzzImages(f)
	data0 := daddrOf(f, im.v5, "path /d", "dblock 0")
	leaf := daddrOf(f, im.v5, "path /d", leafDblock)
	f.Add(readBytes(f, im.v5, data0, 4096), false)
	f.Add(readBytes(f, im.v5, leaf, 4096), true)
	f.Fuzz(func(t *testing.T, data []byte, isLeaf bool) {
		off, crc := data0, 4
		if isLeaf {
			off, crc = leaf, 12
		}
		if len(data) > 4096 {
			data = data[:4096]
		}
		if len(data) >= crc+4 {
			data = append([]byte(nil), data...)
			putCRC(data, crc)
		}
		fuzzRead(t, im.v5, im.size, off, data, "/d", "/d/f00000", "/d/f00777", "/d/f01199", "/d/missing")
	})
}

// FuzzBmbt lays the input over the first bmap btree block of /d on the v4
// image (no CRC to get past).
func FuzzBmbt(f *testing.F) {
	im := buildFuzzImages(f)
	out := xfsDB(f, im.v4, "path /d", "p core.format")
	if !strings.Contains(out, "btree") {
		f.Fatalf("the v4 seed directory is not btree-mapped: %s", out)
	}
	off := daddrOf(f, im.v4, "path /d", "addr u.bmbt.ptrs[1]")
	f.Add(readBytes(f, im.v4, off, 4096))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			data = data[:4096]
		}
		fuzzRead(t, im.v4, im.size, off, data, "/d", "/d/f00000", "/d/f01199", "/d/missing")
	})
}
