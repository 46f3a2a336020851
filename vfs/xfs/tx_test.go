package xfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// openRW opens img for writing through the engine's internal API.
func openRW(t testing.TB, img string) *FS {
	t.Helper()
	f, err := openRWErr(t, img)
	if err != nil {
		t.Fatalf("openWritable %s: %v", filepath.Base(img), err)
	}
	return f
}

func openRWErr(t testing.TB, img string) (*FS, error) {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return openWritable(fh, st.Size(), nil)
}

// repairClean fails the test unless xfs_repair -n exits 0 on img.
func repairClean(t testing.TB, img string) {
	t.Helper()
	needTool(t, "xfs_repair")
	out, err := exec.Command("xfs_repair", "-n", "-f", img).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_repair -n %s: %v\n%s", filepath.Base(img), err, out)
	}
}

// dbField reads one numeric field printed by xfs_db -r ("name = value").
func dbField(t testing.TB, img, field string, cmds ...string) uint64 {
	t.Helper()
	out := xfsDB(t, img, append(cmds, "p "+field)...)
	for _, line := range strings.Split(out, "\n") {
		name, val, ok := strings.Cut(line, " = ")
		if ok && strings.TrimSpace(name) == field {
			v, err := strconv.ParseUint(strings.TrimSpace(val), 0, 64)
			if err != nil {
				t.Fatalf("xfs_db %v: %s = %q: %v", cmds, field, val, err)
			}
			return v
		}
	}
	t.Fatalf("xfs_db %v printed no %s:\n%s", cmds, field, out)
	return 0
}

func fileSum(t testing.TB, img string) [32]byte {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// patchSB32 rewrites the big-endian word at off in the primary
// superblock and its CRC.
func patchSB32(t testing.TB, img string, off int, fn func(uint32) uint32) {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sect := make([]byte, 512)
	if _, err := fh.ReadAt(sect, 0); err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(sect[off:], fn(binary.BigEndian.Uint32(sect[off:])))
	binary.LittleEndian.PutUint32(sect[layout.SuperblockCRCOffset:], layout.Checksum(sect, layout.SuperblockCRCOffset))
	if _, err := fh.WriteAt(sect, 0); err != nil {
		t.Fatal(err)
	}
}

// emptyImage makes a 320 MiB sparse image with mkfs.xfs args.
func emptyImage(t testing.TB, args ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	mkfs(t, img, 320<<20, args...)
	return img
}

// TestWritableRefusals: everything the engine cannot write safely is
// refused by openWritable with the matching error class, and the image
// keeps every byte.
func TestWritableRefusals(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		want  error
	}{
		{"nrext64", func(t *testing.T) string { return emptyImage(t, "-i", "nrext64=1") }, ErrUnsupportedFeature},
		{"dirty log", func(t *testing.T) string { img := emptyImage(t); dirtyLog(t, img); return img }, ErrNeedsRecovery},
		{"realtime", func(t *testing.T) string {
			rt := filepath.Join(t.TempDir(), "rt.img")
			if err := os.WriteFile(rt, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(rt, 64<<20); err != nil {
				t.Fatal(err)
			}
			return emptyImage(t, "-m", "reflink=0", "-r", "rtdev="+rt)
		}, ErrUnsupportedFeature},
		{"quota accounting", func(t *testing.T) string {
			img := emptyImage(t)
			xfsDBWrite(t, img, "sb 0", "write qflags 1")
			return img
		}, ErrUnsupportedFeature},
		{"unknown ro-compat bit", func(t *testing.T) string {
			img := emptyImage(t)
			patchSB32(t, img, 0xD4, func(v uint32) uint32 { return v | 0x80 }) // xfs_db refuses to write it
			return img
		}, ErrUnsupportedFeature},
		{"log-incompat bit", func(t *testing.T) string {
			img := emptyImage(t)
			xfsDBWrite(t, img, "sb 0", "write features_log_incompat 1")
			return img
		}, ErrUnsupportedFeature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := c.setup(t)
			before := fileSum(t, img)
			_, err := openRWErr(t, img)
			if !errors.Is(err, c.want) {
				t.Fatalf("openWritable: %v, want %v", err, c.want)
			}
			if fileSum(t, img) != before {
				t.Fatal("a refused open changed the image")
			}
		})
	}
	// rmapbt is written now (rmap.go), not refused.
	img := emptyImage(t, "-m", "rmapbt=1")
	if _, err := openRWErr(t, img); err != nil {
		t.Fatalf("openWritable on rmapbt: %v", err)
	}
}

// TestTxReadModifyWrite: a transaction changes the superblock label and
// the root inode's owner; reads through the engine see the change before
// commit, abort leaves the image unchanged, and commit writes buffers
// whose CRCs and LSNs xfs_repair -n and xfs_db accept, on v5 and v4.
func TestTxReadModifyWrite(t *testing.T) {
	for _, v := range []struct {
		name string
		args []string
	}{{"v5", nil}, {"v4", []string{"-m", "crc=0"}}} {
		t.Run(v.name, func(t *testing.T) {
			img := emptyImage(t, v.args...)
			before := fileSum(t, img)
			f := openRW(t, img)
			root := f.sb.RootIno
			change := func() *tx {
				t.Helper()
				tr, err := f.begin()
				if err != nil {
					t.Fatal(err)
				}
				sb, err := tr.buf(0, int(f.geo.sectSize), kindSuper, classSuper, at("superblock", 0))
				if err != nil {
					t.Fatal(err)
				}
				copy(sb.data[0x6C:0x78], "written\x00\x00\x00\x00\x00") // sb_fname
				tr.markDirty(sb)
				off := f.geo.inoAddr(root)
				ib, err := tr.buf(off, int(f.geo.inodeSize), kindInode, classOwner, at("inode", root))
				if err != nil {
					t.Fatal(err)
				}
				binary.BigEndian.PutUint32(ib.data[0x08:], 4242) // di_uid
				tr.markDirty(ib)
				return tr
			}
			tr := change()
			in, err := f.inode(root)
			if err != nil {
				t.Fatal(err)
			}
			if in.core.UID != 4242 {
				t.Fatalf("uncommitted uid reads %d, want 4242", in.core.UID)
			}
			tr.abort()
			if in, err = f.inode(root); err != nil || in.core.UID != 0 {
				t.Fatalf("after abort: uid %v, %v; want 0", in.core.UID, err)
			}
			if fileSum(t, img) != before {
				t.Fatal("an aborted transaction changed the image")
			}
			if err := change().commit(); err != nil {
				t.Fatal(err)
			}
			repairClean(t, img)
			if got := dbField(t, img, "core.uid", fmt.Sprintf("inode %d", root)); got != 4242 {
				t.Fatalf("xfs_db reads uid %d, want 4242", got)
			}
			if out := xfsDB(t, img, "sb 0", "p fname"); !strings.Contains(out, `"written\000`) {
				t.Fatalf("xfs_db sb 0 fname: %s", out)
			}
			g := openImage(t, img, nil)
			if g.Label() != "written" {
				t.Fatalf("engine reads label %q", g.Label())
			}
			if in, err := g.inode(root); err != nil || in.core.UID != 4242 {
				t.Fatalf("engine reads uid %v, %v", in.core.UID, err)
			}
			if f.geo.crc {
				if got := dbField(t, img, "lsn", "sb 0"); got != f.log.LastLSN || got == 0 {
					t.Fatalf("superblock LSN %#x, want the log's last LSN %#x", got, f.log.LastLSN)
				}
			}
		})
	}
}

// recorder is a device that logs writes and barriers.
type recorder struct {
	*os.File
	ops []string
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	r.ops = append(r.ops, fmt.Sprintf("w%d+%d", off, len(p)))
	return r.File.WriteAt(p, off)
}

func (r *recorder) Sync() error { r.ops = append(r.ops, "sync"); return nil }

// TestTxCommitOrder: fresh blocks, allocation state, owners, names and
// the superblock are written in that order, barriers between the groups
// {fresh, allocation} {owners} {names, superblock} and none after the
// last; a freeing transaction writes {fresh, names} {owners}
// {allocation, superblock}. Inside a group the buffers go by offset,
// adjacent ones (the AGF and AGI sectors, the superblock before them)
// as one write.
func TestTxCommitOrder(t *testing.T) {
	img := emptyImage(t)
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	rec := &recorder{File: fh}
	f, err := openWritable(rec, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	bs := f.geo.blockSize
	for _, frees := range []bool{false, true} {
		rec.ops = nil
		tr, err := f.begin()
		if err != nil {
			t.Fatal(err)
		}
		tr.frees = frees
		// Buffers dirtied in scrambled class order; contents unchanged
		// but for the stamps, so the image stays valid.
		mk := func(off int64, n int, kind bufKind, class wclass) {
			b, err := tr.buf(off, n, kind, class, at("test", 0))
			if err != nil {
				t.Fatal(err)
			}
			tr.markDirty(b)
		}
		sect := int(f.geo.sectSize)
		mk(0, sect, kindSuper, classSuper)
		mk(f.geo.inoAddr(f.sb.RootIno), int(f.geo.inodeSize), kindInode, classOwner)
		mk(layout.AGFSector*f.geo.sectSize, sect, kindAGF, classAlloc)
		mk(50*bs, int(bs), kindRaw, className)
		mk(layout.AGISector*f.geo.sectSize, sect, kindAGI, classAlloc)
		mk(60*bs, int(bs), kindRaw, classFresh)
		if err := tr.commit(); err != nil {
			t.Fatal(err)
		}
		ino := f.geo.inoAddr(f.sb.RootIno)
		sect64, is := int64(sect), f.geo.inodeSize
		want := fmt.Sprintf("w%d+%d w%d+%d sync w%d+%d sync w0+%d w%d+%d", sect64, 2*sect, 60*bs, bs, ino, is, sect, 50*bs, bs)
		if frees {
			want = fmt.Sprintf("w%d+%d w%d+%d sync w%d+%d sync w0+%d", 50*bs, bs, 60*bs, bs, ino, is, 3*sect)
		}
		if got := strings.Join(rec.ops, " "); got != want {
			t.Fatalf("frees=%v: commit order\n got %s\nwant %s", frees, got, want)
		}
	}
	repairClean(t, img)
}

// TestTxOverlap: a buffer overlapping another of the transaction is
// refused, and a read spanning a held buffer sees its bytes.
func TestTxOverlap(t *testing.T) {
	img := emptyImage(t)
	f := openRW(t, img)
	tr, err := f.begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.abort()
	bs := int(f.geo.blockSize)
	b, err := tr.newBuf(int64(100*bs), bs, kindRaw, at("test", 0))
	if err != nil {
		t.Fatal(err)
	}
	copy(b.data[512:], "held")
	if _, err := tr.buf(int64(100*bs+512), 512, kindRaw, classFresh, at("test", 0)); err == nil {
		t.Fatal("an overlapping buffer was handed out")
	}
	p := make([]byte, 3*bs)
	if err := f.readAt(p, int64(99*bs), at("test", 0)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p[bs+512:bs+516], []byte("held")) {
		t.Fatal("a read does not see the transaction's buffer")
	}
	c, err := f.cached(int64(100*bs), bs, at("test", 0))
	if err != nil || !bytes.Equal(c[512:516], []byte("held")) {
		t.Fatalf("a cached read does not see the transaction's buffer: %v", err)
	}
}

// TestBatchBarriers: a batch whose operations chain (a directory made by
// one, a file made in it by the next, as an injection's key and files
// do) commits as one transaction: one barrier per level of the chain,
// not three groups per link. The image is clean after, and at every cut
// TestCrashOrder makes of the same kind of sequence.
func TestBatchBarriers(t *testing.T) {
	img := emptyImage(t)
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	rec := &recorder{File: fh}
	f, err := openWritable(rec, st.Size(), &Options{Batch: true})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.MakePath("/root/.ssh"))
	must(f.AppendFile("/root/.ssh/authorized_keys", []byte("ssh-ed25519 AAAA k\n")))
	must(f.ReplaceFile("/meta.js", []byte(`{"a": "b"}`)))
	must(f.MakePath("/root/notes/deep"))
	must(f.ReplaceFile("/root/notes/deep/a.txt", pattern(12000, 3)))
	must(f.ReplaceFile("/etc-hostname", []byte("vm-1\n")))
	must(f.Flush())
	syncs := strings.Count(strings.Join(rec.ops, " "), "sync")
	// The deepest chain: a.txt's inode, deep naming it, notes naming
	// deep, /root naming notes (and .ssh), / naming /root: five ranks
	// after the allocation state's, five barriers (ten, and 46 writes
	// for 11 now, when each conflict committed the batch).
	if syncs > 5 {
		t.Errorf("%d barriers for the batch, want at most 5:\n%s", syncs, strings.Join(rec.ops, " "))
	}
	t.Logf("%d writes, %d barriers: %s", len(rec.ops)-syncs, syncs, strings.Join(rec.ops, " "))
	repairClean(t, img)
	g := openImage(t, img, nil)
	for p, want := range map[string][]byte{
		"/root/.ssh/authorized_keys": []byte("ssh-ed25519 AAAA k\n"),
		"/meta.js":                   []byte(`{"a": "b"}`),
		"/root/notes/deep/a.txt":     pattern(12000, 3),
		"/etc-hostname":              []byte("vm-1\n"),
	} {
		if got, err := g.ReadFile(p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v", p, len(got), err)
		}
	}
}
