package ext

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// overlay is an image in memory with one patched range, so each fuzz
// iteration replaces one structure without copying the image.
type overlay struct {
	base  []byte
	off   int64
	patch []byte
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(o.base)) {
		return 0, io.EOF
	}
	n := copy(p, o.base[off:])
	// Apply the part of the patch that overlaps [off, off+n).
	lo, hi := max(off, o.off), min(off+int64(n), o.off+int64(len(o.patch)))
	if lo < hi {
		copy(p[lo-off:hi-off], o.patch[lo-o.off:hi-o.off])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fuzzImage is a small image built once per fuzz target.
type fuzzImage struct {
	data []byte
	fs   *FS // the undamaged image, to locate structures
}

var (
	fuzzImagesMu sync.Mutex
	fuzzImages   = map[string]*fuzzImage{}
)

// getFuzzImage builds (once) a small image with the given mke2fs options.
func getFuzzImage(f *testing.F, args ...string) *fuzzImage {
	key := string(bytes.Join(toBytes(args), []byte{0}))
	fuzzImagesMu.Lock()
	defer fuzzImagesMu.Unlock()
	if im, ok := fuzzImages[key]; ok {
		return im
	}
	src := srcTree(f, 60)
	img := mkfs(f, src, 4, args...)
	data, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	fsys, err := Open(bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		f.Fatal(err)
	}
	im := &fuzzImage{data: data, fs: fsys}
	fuzzImages[key] = im
	return im
}

func toBytes(ss []string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

// fuzzWalk opens the patched image and reads everything it can; only a
// panic or a hang fails.
func fuzzWalk(t *testing.T, im *fuzzImage, off int64, patch []byte) {
	if dir := os.Getenv("EXT_FUZZ_HANGDIR"); dir != "" {
		timer := time.AfterFunc(5*time.Second, func() {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("hang-%d-%d.txt", os.Getpid(), time.Now().UnixNano())),
				append([]byte(fmt.Sprintf("off %d patch %x\n", off, patch)), buf[:n]...), 0o644)
		})
		defer timer.Stop()
	}
	o := &overlay{base: im.data, off: off, patch: patch}
	f, err := Open(o, int64(len(im.data)), &Options{AllowDirtyJournal: true, MaxReadFileSize: 64 << 10})
	if err != nil {
		return
	}
	_ = f.Info()
	_, _ = f.Journal()
	walkAll(f, "/", 0)
	for _, p := range []string{"/etc/passwd", "/links/slow", "/links/loop1", "/many/" + manyName(42), "/a/b/c/d/e/f/g/h/deep.txt"} {
		_, _ = f.ReadFile(p)
		_, _ = f.Stat(p)
		_, _ = f.HasFile(p)
	}
}

// walkAll reads every object reachable from p once: a hostile image can
// make directories contain themselves, so each directory inode is listed
// only once and the total work is capped.
func walkAll(f *FS, p string, _ int) {
	seen := map[uint64]bool{}
	budget, dirs := 2000, 64
	var walk func(p string, depth int)
	walk = func(p string, depth int) {
		if depth > 10 || budget <= 0 || dirs <= 0 {
			return
		}
		dirs--
		ents, err := f.ReadDir(p)
		if err != nil {
			return
		}
		for _, e := range ents {
			if budget--; budget <= 0 {
				return
			}
			c := p + e.Name
			if p != "/" {
				c = p + "/" + e.Name
			}
			names, _ := f.ListXattr(c)
			for _, n := range names {
				_, _ = f.GetXattr(c, n)
			}
			switch {
			case e.Mode.IsDir():
				if !seen[e.Ino] {
					seen[e.Ino] = true
					walk(c, depth+1)
				}
			case e.Mode.IsRegular():
				_, _ = f.ReadFile(c)
			default:
				_, _ = f.Readlink(c)
			}
		}
	}
	walk(p, 0)
}

// inodeAt returns the byte offset of inode n's record in im.
func (im *fuzzImage) inodeAt(t testing.TB, n uint32) int64 {
	_, at, err := im.fs.inodeRecord(n)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// pathIno resolves p in the undamaged image.
func (im *fuzzImage) pathIno(t testing.TB, p string) *inode {
	_, in, err := im.fs.resolve("fuzz", p, false)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// firstPblk maps logical block 0 of p.
func (im *fuzzImage) firstPblk(t testing.TB, p string) int64 {
	in := im.pathIno(t, p)
	m, err := im.fs.mapperFor(in)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.mapBlock(0)
	if err != nil {
		t.Fatal(err)
	}
	return int64(r.pblk) * im.fs.geo.blockSize
}

var noCsum1k = []string{"-t", "ext4", "-b", "1024", "-O", "^metadata_csum,^has_journal,^resize_inode", "-N", "256"}

func FuzzSuperblock(f *testing.F) {
	im := getFuzzImage(f, "-t", "ext4", "-b", "1024", "-N", "256")
	f.Add(im.data[1024:2048])
	f.Fuzz(func(t *testing.T, sb []byte) {
		if len(sb) > layout.SuperblockSize {
			sb = sb[:layout.SuperblockSize]
		}
		if len(sb) == layout.SuperblockSize { // keep the checksum valid so fuzzing gets past it
			binary.LittleEndian.PutUint32(sb[layout.SuperblockChecksumOffset:], crc32c(^uint32(0), sb[:layout.SuperblockChecksumOffset]))
		}
		fuzzWalk(t, im, 1024, sb)
	})
}

func FuzzGroupDesc(f *testing.F) {
	im := getFuzzImage(f, noCsum1k...)
	at := int64(im.fs.descBlockLoc(0)) * im.fs.geo.blockSize
	f.Add(im.data[at : at+256])
	f.Fuzz(func(t *testing.T, gd []byte) { fuzzWalk(t, im, at, gd) })
}

func FuzzInode(f *testing.F) {
	im := getFuzzImage(f, noCsum1k...)
	for _, p := range []string{"/", "/etc/passwd", "/links/slow", "/etc/hostname", "/big.bin"} {
		in := im.pathIno(f, p)
		at := im.inodeAt(f, in.num)
		f.Add(in.num, im.data[at:at+int64(im.fs.geo.inodeSize)])
	}
	f.Fuzz(func(t *testing.T, n uint32, rec []byte) {
		n = n%256 + 1
		fuzzWalk(t, im, im.inodeAt(t, n), rec)
	})
}

func FuzzExtentNode(f *testing.F) {
	im := getFuzzImage(f, noCsum1k...)
	in := im.pathIno(f, "/big.bin")
	at := im.inodeAt(f, in.num) + 0x28
	f.Add(im.data[at : at+60])
	f.Fuzz(func(t *testing.T, root []byte) { fuzzWalk(t, im, at, root) })
}

func FuzzExtentLeafBlock(f *testing.F) {
	im := getFuzzImage(f, noCsum1k...)
	in := im.pathIno(f, "/frag.bin")
	if in.raw.Block[1]>>16 != 1 { // eh_depth
		f.Fatalf("frag.bin has extent depth %d, want 1", in.raw.Block[1]>>16)
	}
	blk := int64(in.raw.Block[4]) * im.fs.geo.blockSize // ei_leaf_lo of the first index
	f.Add(im.data[blk : blk+64])
	f.Fuzz(func(t *testing.T, b []byte) { fuzzWalk(t, im, blk, b) })
}

func FuzzBlockMap(f *testing.F) {
	im := getFuzzImage(f, "-t", "ext2", "-b", "1024", "-N", "256")
	in := im.pathIno(f, "/big.bin")
	at := im.inodeAt(f, in.num) + 0x28
	ind := int64(in.raw.Block[layout.IndBlock]) * im.fs.geo.blockSize
	f.Add(im.data[at:at+60], im.data[ind:ind+64])
	f.Fuzz(func(t *testing.T, iblock, indirect []byte) {
		fuzzWalk(t, im, at, iblock)
		fuzzWalk(t, im, ind, indirect)
	})
}

func FuzzDirBlock(f *testing.F) {
	im := getFuzzImage(f, noCsum1k...)
	at := im.firstPblk(f, "/etc")
	f.Add(im.data[at : at+1024])
	f.Fuzz(func(t *testing.T, b []byte) { fuzzWalk(t, im, at, b) })
}

func FuzzHtreeNode(f *testing.F) {
	im := getFuzzImage(f, "-t", "ext4", "-b", "1024", "-O", "^metadata_csum,^has_journal", "-N", "256")
	at := im.firstPblk(f, "/many")
	f.Add(im.data[at : at+1024])
	// A hand-made root: ".", "..", info (half_md4, 0 levels), limit/count, one entry.
	root := make([]byte, 64)
	binary.LittleEndian.PutUint32(root[0:], 2)
	binary.LittleEndian.PutUint16(root[4:], 12)
	root[6], root[8] = 1, '.'
	binary.LittleEndian.PutUint32(root[12:], 2)
	binary.LittleEndian.PutUint16(root[16:], 1012)
	root[18], root[20], root[21] = 2, '.', '.'
	root[0x1C], root[0x1D] = 1, 8
	binary.LittleEndian.PutUint16(root[0x20:], 124)
	binary.LittleEndian.PutUint16(root[0x22:], 2)
	binary.LittleEndian.PutUint32(root[0x24:], 1)
	binary.LittleEndian.PutUint32(root[0x28:], 0x80000000)
	binary.LittleEndian.PutUint32(root[0x2C:], 2)
	f.Add(root)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzWalk(t, im, at, b) })
}

func FuzzXattr(f *testing.F) {
	im := getFuzzImage(f, "-t", "ext4", "-b", "1024", "-I", "256", "-O", "^metadata_csum,^has_journal", "-N", "256")
	in := im.pathIno(f, "/etc/hostname")
	at := im.inodeAt(f, in.num) + layout.InodeBaseSize + int64(in.raw.ExtraIsize)
	f.Add(im.data[at : at+int64(im.fs.geo.inodeSize)-layout.InodeBaseSize-int64(in.raw.ExtraIsize)])
	f.Fuzz(func(t *testing.T, b []byte) { fuzzWalk(t, im, at, b) })
}

func FuzzJournalSuperblock(f *testing.F) {
	im := getFuzzImage(f, "-t", "ext4", "-b", "1024", "-N", "256", "-O", "^metadata_csum", "-J", "size=1")
	j, err := im.fs.inode(layout.JournalIno)
	if err != nil {
		f.Fatal(err)
	}
	m, _ := im.fs.mapperFor(j)
	r, _ := m.mapBlock(0)
	at := int64(r.pblk) * im.fs.geo.blockSize
	f.Add(im.data[at : at+1024])
	f.Fuzz(func(t *testing.T, b []byte) {
		o := &overlay{base: im.data, off: at, patch: b}
		fs, err := Open(o, int64(len(im.data)), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fs.Journal()
	})
}
