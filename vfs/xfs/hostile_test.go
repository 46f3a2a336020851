package xfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// walkAll reads everything reachable from "/" through the vfs face, and
// returns the errors met. It is bounded in objects and depth.
func walkAll(f *FS) (int, []error) {
	var errs []error
	n := 0
	var walk func(p string, depth int)
	walk = func(p string, depth int) {
		if n > 20000 || depth > 64 {
			return
		}
		n++
		fi, err := f.Lstat(p)
		if err != nil {
			errs = append(errs, err)
			return
		}
		if names, err := f.ListXattr(p); err != nil {
			errs = append(errs, err)
		} else {
			for _, x := range names {
				if _, err := f.GetXattr(p, x); err != nil {
					errs = append(errs, err)
				}
			}
		}
		switch {
		case fi.Mode.IsDir():
			ents, err := f.ReadDir(p)
			if err != nil {
				errs = append(errs, err)
			}
			for _, e := range ents {
				walk(path.Join(p, e.Name), depth+1)
			}
		case fi.Mode.IsRegular():
			if _, err := f.ReadFile(p); err != nil {
				errs = append(errs, err)
			}
		case fi.Mode&fs.ModeSymlink != 0:
			if _, err := f.Readlink(p); err != nil {
				errs = append(errs, err)
			}
			if _, err := f.Stat(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	walk("/", 0)
	return n, errs
}

// allowedErr reports whether err belongs to a class a hostile image may
// produce: corrupt (checksums included), unsupported, a missing name
// (a corrupted entry points elsewhere), not a directory, a symlink loop, a
// log needing recovery.
func allowedErr(err error) bool {
	for _, target := range []error{vfs.ErrCorrupt, vfs.ErrUnsupported, fs.ErrNotExist, vfs.ErrNotDir,
		vfs.ErrTooManyLinks, ErrNeedsRecovery, ErrNotXFS, vfs.ErrNotRegular, vfs.ErrIsDir} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// rawEdit rewrites bytes of the block xfs_db's locate commands leave as
// "current daddr", then recomputes its CRC32c (crcOff < 0: none) so the
// field checks, not the checksum, must catch the damage.
type rawEdit struct {
	locate []string
	size   int // bytes of the structure (CRC range)
	crcOff int
	off    int // negative: from the end
	val    []byte
}

type hostileCase struct {
	name string
	v4   bool
	db   []string // xfs_db -x commands
	raw  *rawEdit
	// openFails: the damage must be refused at Open.
	openFails bool
	// quiet: reads need not see the damage (structures Open never reads).
	quiet bool
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// leafDblock is the directory block of the first leaf (32 GiB / 4 KiB).
const leafDblock = "dblock 8388608"

func hostileCases() []hostileCase {
	sb := func(name, cmd string) hostileCase {
		return hostileCase{name: "sb-" + name, db: []string{"sb 0", cmd}, openFails: true}
	}
	ino := func(name, p, cmd string) hostileCase {
		return hostileCase{name: "inode-" + name, db: []string{"path " + p, cmd}}
	}
	return []hostileCase{
		sb("agcount", "write -d agcount 1000"),
		sb("agcount0", "write -d agcount 0"),
		sb("blocksize", "write -d blocksize 3000"),
		sb("blocklog", "write -d blocklog 16"),
		sb("inodesize", "write -d inodesize 4096"),
		sb("inopblock", "write -d inopblock 3"),
		sb("dblocks", "write -d dblocks 99999999999"),
		sb("agblocks", "write -d agblocks 10"),
		sb("agblklog", "write -d agblklog 40"),
		sb("logstart", "write -d logstart 99999999"),
		sb("rootino", "write -d rootino 0xffffffffffff"),
		sb("dirblklog", "write -d dirblklog 9"),
		sb("sectsize", "write -d sectsize 1000"),
		sb("version", "write -d versionnum 0xb4a7"),
		sb("inprogress", "write -d inprogress 1"),
		sb("crc", "write -c imax_pct 30"),
		{name: "sb-logblocks0", db: []string{"sb 0", "write -d logblocks 0"}, openFails: true},
		// Open reads no AG header: damage there must not break reads.
		{name: "agf-length", db: []string{"agf 0", "write -d length 5"}, quiet: true},
		{name: "agi-root", db: []string{"agi 0", "write -d root 9999999"}, quiet: true},
		{name: "agi-crc", db: []string{"agi 1", "write -c level 9"}, quiet: true},
		ino("format", "/files/big3m", "write -d core.format 7"),
		ino("format-local", "/files/big3m", "write -d core.format 1"),
		ino("forkoff", "/files/big3m", "write -d core.forkoff 200"),
		ino("nextents", "/files/big3m", "write -d core.nextents 5000"),
		ino("nextents-huge", "/files/big3m", "write -d core.nextents 0xffffffff"),
		ino("size", "/files/big3m", "write -d core.size 0x7fffffffffffffff"),
		ino("mode0", "/files/big3m", "write -d core.mode 0"),
		ino("mode-bad", "/files/big3m", "write -d core.mode 0170644"),
		ino("magic", "/files/tiny", "write -d core.magic 0"),
		ino("crc", "/files/tiny", "write -c core.uid 5"),
		ino("inumber", "/files/tiny", "write -d v3.inumber 7"),
		ino("startblock", "/files/big3m", "write -d u3.bmx[0].startblock 0xfffffffff"),
		ino("blockcount0", "/files/big3m", "write -d u3.bmx[0].blockcount 0"),
		ino("startoff", "/files/big3m", "write -d u3.bmx[0].startoff 0x3fffffffffffff"),
		ino("root-format", "/", "write -d core.format 2"),
		ino("root-size", "/", "write -d core.size 2"),
		ino("sfdir-size", "/dirs/sf", "write -d core.size 4000"),
		ino("sfdir-count", "/dirs/sf", "write -d u3.sfdir3.hdr.count 200"),
		ino("sfdir-i8", "/dirs/sf", "write -d u3.sfdir3.hdr.i8count 9"),
		ino("dir-nextents", "/dirs/leaf", "write -d core.nextents 0"),
		ino("symlink-size", "/links/abs", "write -d core.size 3000"),
		ino("remote-symlink-size", "/links/remote600", "write -d core.size 1"),
		ino("attr-forkoff", "/files/tiny", "write -d core.forkoff 1"),
		// Directory blocks: raw edits with a recomputed CRC.
		{name: "block-tail-count", raw: &rawEdit{locate: []string{"path /dirs/block", "dblock 0"}, crcOff: 4, off: -8, val: be32(0xFFFFFFF)}},
		{name: "block-namelen", raw: &rawEdit{locate: []string{"path /dirs/block", "dblock 0"}, crcOff: 4, off: 64 + 8, val: []byte{0xFF}}},
		{name: "block-tag", raw: &rawEdit{locate: []string{"path /dirs/block", "dblock 0"}, crcOff: 4, off: 64 + 14, val: be16(3)}},
		{name: "block-crc", raw: &rawEdit{locate: []string{"path /dirs/block", "dblock 0"}, crcOff: -1, off: 100, val: []byte{0x55}}},
		{name: "data-freetag", raw: &rawEdit{locate: []string{"path /dirs/leaf", "dblock 0"}, crcOff: 4, off: 64, val: []byte{0xFF, 0xFF, 0, 0}}},
		{name: "data-magic", raw: &rawEdit{locate: []string{"path /dirs/leaf", "dblock 0"}, crcOff: 4, off: 0, val: be32(0x58444233)}},
		{name: "data-owner", raw: &rawEdit{locate: []string{"path /dirs/leaf", "dblock 0"}, crcOff: 4, off: 0x28, val: be32(77)}},
		{name: "leaf-count", raw: &rawEdit{locate: []string{"path /dirs/leaf", leafDblock}, crcOff: 12, off: 56, val: be16(0xFFFF)}},
		{name: "leaf-address", raw: &rawEdit{locate: []string{"path /dirs/leaf", leafDblock}, crcOff: 12, off: 64 + 8*5 + 4, val: be32(0xFFFFFFF)}}, // entry 5: past "." and ".."
		{name: "leaf-hash", raw: &rawEdit{locate: []string{"path /dirs/leaf", leafDblock}, crcOff: 12, off: 64 + 40, val: be32(0xFFFFFFFF)}},
		{name: "node-level", raw: &rawEdit{locate: []string{"path /dirs/node", leafDblock}, crcOff: 12, off: 58, val: be16(9)}},
		{name: "node-count", raw: &rawEdit{locate: []string{"path /dirs/node", leafDblock}, crcOff: 12, off: 56, val: be16(0xFFFF)}},
		{name: "node-self", raw: &rawEdit{locate: []string{"path /dirs/node", leafDblock}, crcOff: 12, off: 64 + 4, val: be32(8388608)}},
		{name: "node-before-far", raw: &rawEdit{locate: []string{"path /dirs/node", leafDblock}, crcOff: 12, off: 64 + 4, val: be32(0xFFFFFFF0)}},
		{name: "symlink-bytes", raw: &rawEdit{locate: []string{"path /links/remote600", "dblock 0"}, size: 4096, crcOff: 12, off: 8, val: be32(4000)}},
		// v4: no checksums, the bmap btree of a node directory.
		{name: "v4-bmbt-root-level", v4: true, db: []string{"path /dirs/node", "write -d u.bmbt.level 20"}},
		{name: "v4-bmbt-root-numrecs", v4: true, db: []string{"path /dirs/node", "write -d u.bmbt.numrecs 500"}},
		{name: "v4-bmbt-root-ptr", v4: true, db: []string{"path /dirs/node", "write -d u.bmbt.ptrs[1] 0xffffffffff"}},
		{name: "v4-bmbt-root-ptr-sb", v4: true, db: []string{"path /dirs/node", "write -d u.bmbt.ptrs[1] 0"}},
		{name: "v4-bmbt-leaf-numrecs", v4: true, raw: &rawEdit{locate: []string{"path /dirs/node", "addr u.bmbt.ptrs[1]"}, size: 4096, crcOff: -1, off: 6, val: be16(0xFFFF)}},
		{name: "v4-bmbt-leaf-level", v4: true, raw: &rawEdit{locate: []string{"path /dirs/node", "addr u.bmbt.ptrs[1]"}, size: 4096, crcOff: -1, off: 4, val: be16(1)}},
		{name: "v4-bmbt-leaf-rec", v4: true, raw: &rawEdit{locate: []string{"path /dirs/node", "addr u.bmbt.ptrs[1]"}, size: 4096, crcOff: -1, off: 24 + 16*3, val: []byte{0, 0, 0, 0, 0, 0, 0, 0}}},
		{name: "v4-leaf-count", v4: true, raw: &rawEdit{locate: []string{"path /dirs/leaf", leafDblock}, crcOff: -1, off: 12, val: be16(0x7FFF)}},
		{name: "v4-data-namelen", v4: true, raw: &rawEdit{locate: []string{"path /dirs/leaf", "dblock 0"}, crcOff: -1, off: 16 + 8, val: []byte{0}}},
	}
}

// TestHostileImages damages one field of a real image per case (with
// xfs_db -x write, or a raw edit with a recomputed CRC) and reads the whole
// tree: every error must be of a known class, nothing may panic or hang.
func TestHostileImages(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	buildSource(t, src, treeOpts{nodeEntries: 1500})
	bases := map[bool]string{false: filepath.Join(dir, "v5.img"), true: filepath.Join(dir, "v4.img")}
	mkfsTree(t, bases[false], src, 512<<20)
	fixRemoteSymlinks(t, bases[false], []string{"/links/remote600", "/links/remote1000"})
	mkfsTree(t, bases[true], src, 512<<20, "-m", "crc=0")
	// The undamaged images read with only the errors the tree itself
	// holds (ListXattr through dangling symlinks).
	baseline := map[bool]map[string]bool{}
	for v4, img := range bases {
		_, errs := walkAll(openImage(t, img, nil))
		baseline[v4] = map[string]bool{}
		for _, err := range errs {
			baseline[v4][err.Error()] = true
		}
	}
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "h.img")
			run(t, "cp", "--sparse=always", bases[c.v4], img)
			if len(c.db) > 0 {
				xfsDBWrite(t, img, c.db...)
			}
			if c.raw != nil {
				applyRaw(t, img, c.raw)
			}
			done := make(chan struct{})
			var n int
			var errs []error
			var openErr error
			go func() {
				defer close(done)
				defer func() {
					if r := recover(); r != nil {
						openErr = fmt.Errorf("panic: %v", r)
					}
				}()
				fh, err := os.Open(img)
				if err != nil {
					openErr = err
					return
				}
				defer fh.Close()
				st, _ := fh.Stat()
				f, err := Open(fh, st.Size(), &Options{MaxReadFileSize: 8 << 20})
				if err != nil {
					openErr = err
					return
				}
				n, errs = walkAll(f)
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("walk did not finish in 60 s")
			}
			if openErr != nil {
				if strings.HasPrefix(openErr.Error(), "panic") || !allowedErr(openErr) {
					t.Fatalf("Open: %v", openErr)
				}
				if !c.openFails {
					t.Fatalf("Open refused an image whose damage reads need not see: %v", openErr)
				}
				return
			}
			if c.openFails {
				t.Fatalf("Open accepted the damaged superblock")
			}
			for _, err := range errs {
				if !allowedErr(err) {
					t.Errorf("error of no known class: %v", err)
				}
			}
			fresh := 0
			for _, err := range errs {
				if !baseline[c.v4][err.Error()] {
					fresh++
				}
			}
			if !c.quiet && fresh == 0 {
				t.Errorf("the damage went unnoticed: no error beyond the %d the undamaged image gives", len(baseline[c.v4]))
			}
			t.Logf("%d objects, %d errors; first: %v", n, len(errs), first(errs))
		})
	}
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// applyRaw performs a rawEdit.
func applyRaw(t *testing.T, img string, e *rawEdit) {
	t.Helper()
	out := xfsDB(t, img, append(e.locate, "daddr")...)
	i := strings.Index(out, "current daddr is ")
	if i < 0 {
		t.Fatalf("xfs_db did not locate the block: %s", out)
	}
	var daddr int64
	fmt.Sscan(out[i+len("current daddr is "):], &daddr)
	f := openImage(t, img, nil)
	size := e.size
	if size == 0 {
		size = int(f.geo.dirBlkSize)
	}
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, size)
	if _, err := fh.ReadAt(b, daddr*512); err != nil {
		t.Fatal(err)
	}
	off := e.off
	if off < 0 {
		off += size
	}
	copy(b[off:], e.val)
	if e.crcOff >= 0 {
		putCRC(b, e.crcOff)
	}
	if _, err := fh.WriteAt(b, daddr*512); err != nil {
		t.Fatal(err)
	}
}
