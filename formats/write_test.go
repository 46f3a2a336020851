package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// randomWrites applies the same random writes to d and to the raw file ref:
// small and large, inside one cluster and spanning several.
func randomWrites(t testing.TB, d Disk, ref string, seed int64, n int) {
	t.Helper()
	f, err := os.OpenFile(ref, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewSource(seed))
	size := d.Size()
	for i := 0; i < n; i++ {
		l := 1 + r.Int63n(min(int64([]int{512, 8 << 10, 200 << 10}[i%3]), size/2))
		off := r.Int63n(size - l)
		if i%4 == 0 {
			off = size - l // the tail of the disk
		}
		b := make([]byte, l)
		r.Read(b)
		if _, err := d.WriteAt(b, off); err != nil {
			t.Fatalf("write %d (%d bytes at %#x): %v", i, l, off, err)
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

// writeAndCheck writes into img, then checks it with qemu-img against a raw
// file that got the same writes.
func writeAndCheck(t *testing.T, img string, opts Options, seed int64) {
	t.Helper()
	ref := filepath.Join(t.TempDir(), "expect.raw")
	if err := os.WriteFile(ref, toRaw(t, img), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	randomWrites(t, d, ref, seed, 40)
	want, _ := os.ReadFile(ref)
	mustEqual(t, readAll(t, d), want, "read back before close")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkClean(t, img)
	compareSame(t, img, ref)
}

func TestWriteVariants(t *testing.T) {
	dir := t.TempDir()
	for i, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			_, img := buildVariant(t, dir, v)
			writeAndCheck(t, img, Options{}, int64(i))
		})
	}
}

// TestWriteZeroClusters covers v3 zero clusters (with and without a
// preallocated host cluster) and zeroed subclusters.
func TestWriteZeroClusters(t *testing.T) {
	for _, opts := range []string{"compat=1.1", "compat=0.10", "extended_l2=on"} {
		t.Run(opts, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			raw := patternRaw(t, dir, "p.raw", 4<<20, 7)
			img := filepath.Join(dir, "z.qcow2")
			qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-o", opts, raw, img)
			qemuIO(t, img, "write -z 0 256k", "write -z -u 1m 128k", "write -z 2052k 2k", "write -P 0x33 3m 6k")
			d, err := Open(img, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, readAll(t, d), toRaw(t, img), "zero clusters")
			d.Close()
			writeAndCheck(t, img, Options{}, 11)
		})
	}
}

// TestBackingChain builds raw <- qcow2 <- qcow2 (extended L2) <- qcow2 with
// writes at each level, reads the top and writes into it.
func TestBackingChain(t *testing.T) {
	dir := t.TempDir()
	base := patternRaw(t, dir, "base.raw", 6<<20, 3)
	mid := filepath.Join(dir, "mid.qcow2")
	mid2 := filepath.Join(dir, "mid2.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid)
	qemuIO(t, mid, "write -P 0x11 64k 200k", "write -z 1m 64k")
	qemuImg(t, "create", "-f", "qcow2", "-o", "extended_l2=on", "-b", "mid.qcow2", "-F", "qcow2", mid2)
	qemuIO(t, mid2, "write -P 0x22 100k 3k", "write -z 1100k 2k", "write -P 0x23 2m 64k")
	qemuImg(t, "create", "-f", "qcow2", "-b", "mid2.qcow2", "-F", "qcow2", top, "8M")
	qemuIO(t, top, "write -P 0x44 7m 100k", "write -P 0x45 90k 20k")
	d, err := Open(top, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	chain := d.Info().BackingChain
	if len(chain) != 3 || chain[0].Format != "qcow2" || chain[2].Format != "raw" || chain[2].Name != "base.raw" {
		t.Fatalf("backing chain %+v", chain)
	}
	mustEqual(t, readAll(t, d), toRaw(t, top), "chain")
	d.Close()
	midBefore, baseBefore := toRaw(t, mid), toRaw(t, base)
	writeAndCheck(t, top, Options{}, 5)
	writeAndCheck(t, mid2, Options{}, 6) // extended L2 over a backing file
	mustEqual(t, toRaw(t, mid), midBefore, "backing file after writes above it")
	mustEqual(t, toRaw(t, base), baseBefore, "base after writes above it")
	checkClean(t, mid)
}

// TestWriteSnapshotShared writes into clusters shared with an internal
// snapshot, then checks the snapshot still holds the old data.
func TestWriteSnapshotShared(t *testing.T) {
	for _, v := range []qcow2Variant{
		{name: "snap", opts: "compat=1.1"},
		{name: "snap-v2", opts: "compat=0.10"},
		{name: "snap-compressed", opts: "compat=1.1", extra: []string{"-c"}},
		{name: "snap-refcount64", opts: "refcount_bits=64"},
		{name: "snap-extl2", opts: "extended_l2=on"},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, img := buildVariant(t, dir, v)
			before := toRaw(t, img)
			qemuImg(t, "snapshot", "-c", "s1", img)
			writeAndCheck(t, img, Options{}, 9)
			snap := filepath.Join(dir, "snap.raw")
			qemuImg(t, "convert", "-O", "raw", "-l", "snapshot.name=s1", img, snap)
			got, _ := os.ReadFile(snap)
			mustEqual(t, got, before, "snapshot content after writes")
		})
	}
}

// TestRefcountTableGrowth fills an image whose refcount table covers little
// (512-byte clusters, 64-bit refcounts: a block counts 32 clusters), so the
// table must move several times and new blocks must count themselves.
func TestRefcountTableGrowth(t *testing.T) {
	for _, opts := range []string{"cluster_size=512,refcount_bits=64", "cluster_size=512,refcount_bits=1", "cluster_size=1024,refcount_bits=16"} {
		t.Run(opts, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "grow.qcow2")
			qemuImg(t, "create", "-f", "qcow2", "-o", opts, img, "3M")
			ref := filepath.Join(dir, "grow.raw")
			qemuImg(t, "create", "-f", "raw", ref, "3M")
			d, err := Open(img, Options{})
			if err != nil {
				t.Fatal(err)
			}
			rf, _ := os.OpenFile(ref, os.O_RDWR, 0)
			r := rand.New(rand.NewSource(1))
			chunk := make([]byte, 96<<10)
			for off := int64(0); off < d.Size(); off += int64(len(chunk)) {
				r.Read(chunk)
				n := min(int64(len(chunk)), d.Size()-off)
				if _, err := d.WriteAt(chunk[:n], off); err != nil {
					t.Fatal(err)
				}
				rf.WriteAt(chunk[:n], off)
			}
			rf.Close()
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			checkClean(t, img)
			compareSame(t, img, ref)
		})
	}
}

// TestWriteDropsBitmaps: persistent dirty bitmaps we cannot maintain are
// removed (autoclear bit, extension, clusters) before our first write, so
// qemu never trusts a stale bitmap and qemu-img check finds no leaks.
func TestWriteDropsBitmaps(t *testing.T) {
	img := smallImage(t, t.TempDir())
	qemuImg(t, "bitmap", "--add", img, "b0")
	qemuImg(t, "bitmap", "--add", "-g", "512k", img, "b1")
	qemuIO(t, img, "write -P 1 1m 300k", "write -P 2 3m 64k")
	if !strings.Contains(qemuImg(t, "info", img), "name: b1") {
		t.Fatal("setup: no bitmaps")
	}
	d, err := Open(img, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Info().Bitmaps {
		t.Fatal("Info.Bitmaps false")
	}
	d.Close()
	writeAndCheck(t, img, Options{}, 3)
	if info := qemuImg(t, "info", img); strings.Contains(info, "bitmaps") {
		t.Fatalf("bitmaps survived our write:\n%s", info)
	}
}

// TestWriteSubclusters aims writes at each subcluster state of an extended
// L2 overlay: allocated (in place), unallocated in an allocated cluster
// (backing data must be kept), zeroed, and a cluster of mixed states.
func TestWriteSubclusters(t *testing.T) {
	dir := t.TempDir()
	patternRaw(t, dir, "base.raw", 2<<20, 8)
	img := filepath.Join(dir, "ov.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "-b", "base.raw", "-F", "raw", img)
	// 64 KiB clusters, 2 KiB subclusters.
	qemuIO(t, img, "write -P 0x11 4k 2k", "write -z 8k 4k", "write -P 0x12 70k 1k", "write -z 200k 64k")
	ref := filepath.Join(dir, "expect.raw")
	os.WriteFile(ref, toRaw(t, img), 0o644)
	d, err := Open(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rf, _ := os.OpenFile(ref, os.O_RDWR, 0)
	for i, w := range []struct{ off, n int64 }{
		{4<<10 + 100, 10}, // allocated subcluster: in place
		{20 << 10, 10},    // unallocated subcluster of the allocated cluster 0
		{9 << 10, 3000},   // zeroed subclusters
		{69 << 10, 4096},  // spans unallocated and allocated subclusters
		{210 << 10, 100},  // zero cluster
		{127<<10 + 1000, 2048},
	} {
		b := make([]byte, w.n)
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		if _, err := d.WriteAt(b, w.off); err != nil {
			t.Fatal(err)
		}
		rf.WriteAt(b, w.off)
	}
	rf.Close()
	want, _ := os.ReadFile(ref)
	mustEqual(t, readAll(t, d), want, "subclusters")
	d.Close()
	checkClean(t, img)
	compareSame(t, img, ref)
}

// TestHostileRefcounts: refcount metadata that lies is refused on write,
// without writing anything.
func TestHostileRefcounts(t *testing.T) {
	t.Run("refcount-block-past-eof", func(t *testing.T) {
		img := smallImage(t, t.TempDir())
		b, _ := os.ReadFile(img)
		rt := int64(binary.BigEndian.Uint64(b[0x30:]))
		patch(t, img, rt, 8, 1<<40)
		d, err := Open(img, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if _, err := d.WriteAt([]byte{1}, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("write: %v, want ErrCorrupt", err)
		}
	})
	t.Run("referenced-cluster-refcount-zero", func(t *testing.T) {
		img := smallImage(t, t.TempDir())
		b, _ := os.ReadFile(img)
		rt := int64(binary.BigEndian.Uint64(b[0x30:]))
		rb := int64(binary.BigEndian.Uint64(b[rt:]))
		host := l2EntryOffset(t, img) // the L2 table itself
		patch(t, img, rb+2*(host>>16), 2, 0)
		before, _ := os.ReadFile(img)
		d, err := Open(img, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.WriteAt([]byte{1}, 0); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("write: %v, want ErrCorrupt", err)
		}
		d.Close()
		after, _ := os.ReadFile(img)
		mustEqual(t, after, before, "image after a refused write")
	})
}

// TestCrashBeforeFlush copies the image file in the middle of a write
// session (as a crash would leave it, before Flush) and checks that qemu-img
// finds leaked clusters in the copy (the allocations made so far) and never
// an error.
func TestCrashBeforeFlush(t *testing.T) {
	for _, v := range []qcow2Variant{
		{name: "crash-plain", opts: "compat=1.1"},
		{name: "crash-compressed", opts: "compat=1.1", extra: []string{"-c"}},
		{name: "crash-extl2", opts: "extended_l2=on"},
		{name: "crash-small-clusters", opts: "cluster_size=512,refcount_bits=2", size: 3 << 20},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, img := buildVariant(t, dir, v)
			qemuImg(t, "snapshot", "-c", "s1", img)
			ref := filepath.Join(dir, "ref.raw")
			os.WriteFile(ref, toRaw(t, img), 0o644)
			d, err := Open(img, Options{})
			if err != nil {
				t.Fatal(err)
			}
			randomWrites(t, d, ref, 21, 30)
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			crashed := filepath.Join(dir, "crashed.qcow2")
			os.WriteFile(crashed, b, 0o644)
			out, rc := testtool.Output(t, "qemu-img", "check", crashed)
			if rc != 3 || strings.Contains(string(out), "ERROR") {
				t.Fatalf("crashed copy: qemu-img check exit %d\n%s", rc, out)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			checkClean(t, img)
			compareSame(t, img, ref)
		})
	}
}

// TestWriteCorruptBitmapDirectory: a bitmap directory we cannot parse is
// not trusted: the autoclear bit is cleared (its clusters stay leaked), the
// write proceeds, and qemu-img finds no error.
func TestWriteCorruptBitmapDirectory(t *testing.T) {
	img := smallImage(t, t.TempDir())
	qemuImg(t, "bitmap", "--add", img, "b0")
	b, _ := os.ReadFile(img)
	ext := int64(bytes.Index(b[:4096], []byte{0x23, 0x85, 0x28, 0x75}))
	if ext < 0 {
		t.Fatal("no bitmaps extension")
	}
	patch(t, img, ext+8+16, 8, 1<<40) // directory offset past the end
	d, err := Open(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("hello"), 4096); err != nil {
		t.Fatal(err)
	}
	d.Close()
	b, _ = os.ReadFile(img)
	if binary.BigEndian.Uint64(b[0x58:]) != 0 {
		t.Fatal("autoclear bits not cleared")
	}
	leaked(t, img) // fails on any error
}
