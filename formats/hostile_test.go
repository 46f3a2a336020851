package formats

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// patch writes a big-endian integer of n bytes at off in the file.
func patch(t testing.TB, path string, off int64, n int, v uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	if _, err := f.WriteAt(b[8-n:], off); err != nil {
		t.Fatal(err)
	}
}

// smallImage is a 4 MiB qcow2 with data in its first clusters.
func smallImage(t testing.TB, dir string) string {
	t.Helper()
	img := filepath.Join(dir, "small.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", img, "4M")
	qemuIO(t, img, "write -P 0x5a 0 192k")
	return img
}

func wantOpenErr(t *testing.T, img string, opts Options, class error) {
	t.Helper()
	d, err := Open(img, opts)
	if err == nil {
		d.Close()
		t.Fatalf("Open(%s) succeeded, want %v", img, class)
	}
	if !errors.Is(err, class) {
		t.Fatalf("Open(%s): %v, want class %v", img, err, class)
	}
	t.Logf("refused as expected: %v", err)
}

func TestHostileHeaders(t *testing.T) {
	cases := []struct {
		name string
		off  int64
		n    int
		v    uint64
		err  error
	}{
		{"l1-size-larger-than-file", 0x24, 4, 1 << 20, ErrCorrupt},
		{"l1-size-too-small-for-virtual-size", 0x24, 4, 0, ErrCorrupt},
		{"l1-offset-past-eof", 0x28, 8, 1 << 40, ErrCorrupt},
		{"l1-offset-unaligned", 0x28, 8, 0x30200, ErrCorrupt},
		{"refcount-table-larger-than-file", 0x38, 4, 100000, ErrCorrupt},
		{"refcount-table-past-eof", 0x30, 8, 1 << 50, ErrCorrupt},
		{"cluster-bits-8", 0x14, 4, 8, ErrCorrupt},
		{"cluster-bits-22", 0x14, 4, 22, ErrCorrupt},
		{"cluster-bits-63", 0x14, 4, 63, ErrCorrupt},
		{"refcount-order-7", 0x60, 4, 7, ErrCorrupt},
		{"snapshots-huge", 0x3c, 4, 1 << 31, ErrCorrupt},
		{"snapshots-past-eof", 0x3c, 4, 60000, ErrCorrupt},
		{"version-4", 0x04, 4, 4, ErrUnsupported},
		{"encryption-aes", 0x20, 4, 1, ErrUnsupported},
		{"encryption-luks", 0x20, 4, 2, ErrUnsupported},
		{"unknown-incompatible-bit", 0x48, 8, 1 << 10, ErrUnsupported},
		{"external-data-file", 0x48, 8, 1 << 2, ErrUnsupported},
		{"header-length-unaligned", 0x64, 4, 105, ErrCorrupt},
		{"header-length-huge", 0x64, 4, 1 << 30, ErrCorrupt},
		{"virtual-size-absurd", 0x18, 8, 1 << 63, ErrCorrupt},
		{"backing-name-too-long", 0x08, 8, 0x200, ErrCorrupt}, // size field 0 → invalid
		{"compression-type-without-bit", 0x68, 1, 1, ErrCorrupt},
		{"extension-overruns-cluster", 0x70 + 4, 4, 1 << 20, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img := smallImage(t, t.TempDir())
			patch(t, img, c.off, c.n, c.v)
			wantOpenErr(t, img, Options{ReadOnly: true}, c.err)
		})
	}
}

// l2EntryOffset finds the file offset of the L2 entry for virtual cluster 0.
func l2EntryOffset(t testing.TB, img string) int64 {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	l1 := binary.BigEndian.Uint64(b[0x28:])
	return int64(binary.BigEndian.Uint64(b[l1:]) & 0x00fffffffffffe00)
}

func TestHostileL2EntryPastEOF(t *testing.T) {
	img := smallImage(t, t.TempDir())
	patch(t, img, l2EntryOffset(t, img), 8, 1<<63|1<<40)
	d, err := Open(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 4096)
	if _, err := d.ReadAt(buf, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read: %v, want ErrCorrupt", err)
	}
	if _, err := d.WriteAt(buf, 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("write: %v, want ErrCorrupt", err)
	}
	// The rest of the disk still reads.
	if _, err := d.ReadAt(buf, 128<<10); err != nil {
		t.Fatal(err)
	}
}

func TestHostileL2TablePastEOF(t *testing.T) {
	img := smallImage(t, t.TempDir())
	b, _ := os.ReadFile(img)
	l1 := int64(binary.BigEndian.Uint64(b[0x28:]))
	patch(t, img, l1, 8, 1<<63|1<<45)
	d, err := Open(img, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.ReadAt(make([]byte, 512), 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read: %v, want ErrCorrupt", err)
	}
}

func TestHostileCompressedPastEOF(t *testing.T) {
	dir := t.TempDir()
	raw := patternRaw(t, dir, "p.raw", 1<<20, 1)
	img := filepath.Join(dir, "c.qcow2")
	qemuImg(t, "convert", "-c", "-O", "qcow2", raw, img)
	off := l2EntryOffset(t, img)
	for i := int64(0); i < 16; i++ { // every entry of the first table
		patch(t, img, off+i*8, 8, 1<<62|1<<40)
	}
	d, err := Open(img, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.ReadAt(make([]byte, 512), 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read: %v, want ErrCorrupt", err)
	}
}

func TestHostileBackingLoop(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.qcow2"), filepath.Join(dir, "b.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", a, "1M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", b, "1M")
	wantOpenErr(t, a, Options{ReadOnly: true}, ErrBackingChain)
	self := filepath.Join(dir, "self.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", "self.qcow2", "-F", "qcow2", self, "1M")
	wantOpenErr(t, self, Options{ReadOnly: true}, ErrBackingChain)
	// The loop is found through a symlink too.
	os.Symlink("c.qcow2", filepath.Join(dir, "link.qcow2"))
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", "link.qcow2", "-F", "qcow2", filepath.Join(dir, "c.qcow2"), "1M")
	wantOpenErr(t, filepath.Join(dir, "c.qcow2"), Options{ReadOnly: true}, ErrBackingChain)
}

func TestHostileBackingDepth(t *testing.T) {
	dir := t.TempDir()
	qemuImg(t, "create", "-q", "-f", "raw", filepath.Join(dir, "l0.img"), "1M")
	prev, prevFmt := "l0.img", "raw"
	for i := 1; i <= DefaultMaxDepth+1; i++ {
		name := "l" + string(rune('a'+i)) + ".qcow2"
		qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", prev, "-F", prevFmt, filepath.Join(dir, name), "1M")
		prev, prevFmt = name, "qcow2"
	}
	wantOpenErr(t, filepath.Join(dir, prev), Options{ReadOnly: true}, ErrBackingChain)
	d, err := Open(filepath.Join(dir, prev), Options{ReadOnly: true, MaxDepth: 32})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

func TestHostileBackingPaths(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "images")
	os.Mkdir(sub, 0o755)
	outside := patternRaw(t, dir, "outside.raw", 1<<20, 1)
	os.Symlink(outside, filepath.Join(sub, "sneaky.raw"))
	patternRaw(t, sub, "inside.raw", 1<<20, 1)
	mk := func(name, backing string) string {
		p := filepath.Join(sub, name)
		qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "raw", p, "1M")
		return p
	}
	shadow := mk("shadow.qcow2", "/etc/shadow")
	wantOpenErr(t, shadow, Options{ReadOnly: true}, ErrBackingDenied)
	wantOpenErr(t, mk("escape.qcow2", "../outside.raw"), Options{ReadOnly: true}, ErrBackingDenied)
	wantOpenErr(t, mk("symlink.qcow2", "sneaky.raw"), Options{ReadOnly: true}, ErrBackingDenied)
	wantOpenErr(t, mk("abs.qcow2", outside), Options{ReadOnly: true}, ErrBackingDenied)
	wantOpenErr(t, mk("nbd.qcow2", "nbd://example.org/x"), Options{ReadOnly: true, Backing: BackingAllow}, ErrUnsupported)
	wantOpenErr(t, mk("json.qcow2", `json:{"driver":"raw"}`), Options{ReadOnly: true, Backing: BackingAllow}, ErrUnsupported)
	inside := mk("inside.qcow2", "inside.raw")
	wantOpenErr(t, inside, Options{ReadOnly: true, Backing: BackingDeny}, ErrBackingDenied)
	for _, p := range []string{inside, mk("escape-ok.qcow2", "../outside.raw")} {
		opts := Options{ReadOnly: true}
		if p != inside {
			opts.Backing = BackingAllow
		}
		d, err := Open(p, opts)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		d.Close()
	}
}

func TestDirtyAndCorruptBits(t *testing.T) {
	for _, c := range []struct {
		bit uint64
		err error
	}{{1, ErrDirty}, {2, ErrCorrupt}} {
		img := smallImage(t, t.TempDir())
		want := toRaw(t, img)
		patch(t, img, 0x48, 8, c.bit)
		d, err := Open(img, Options{})
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, readAll(t, d), want, "read of a flagged image")
		if _, err := d.WriteAt([]byte{1}, 0); !errors.Is(err, c.err) {
			t.Fatalf("write with incompatible bit %d: %v, want %v", c.bit, err, c.err)
		}
		d.Close()
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	img := smallImage(t, dir)
	raw := patternRaw(t, dir, "r.raw", 1<<20, 1)
	for _, p := range []string{img, raw} {
		d, err := Open(p, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.WriteAt([]byte{1}, 0); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("%s: %v", p, err)
		}
		if _, err := d.WriteAt([]byte{1}, d.Size()); !errors.Is(err, ErrReadOnly) && !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("%s: %v", p, err)
		}
		d.Close()
	}
}
