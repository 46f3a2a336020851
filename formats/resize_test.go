package formats

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/internal/testtool"
)

func sumFile(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func infoVirtualSize(t *testing.T, img string) int64 {
	t.Helper()
	m := regexp.MustCompile(`virtual size: .*\((\d+) bytes\)`).FindStringSubmatch(qemuImg(t, "info", img))
	if m == nil {
		t.Fatalf("qemu-img info %s: no virtual size", img)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestGrowMatchesQemuImgResize grows images in process and compares each
// with a copy grown by qemu-img resize (same virtual size, and
// qemu-img compare finds the same bytes); qcow2 must check clean. The qcow2 cases move the L1 table:
// with 64 KiB clusters from 64 MiB (one L1 entry) to 8 TiB (two clusters
// of L1 entries), and with 512-byte clusters from 64 MiB to 1 GiB, where
// the 512-cluster table also needs new refcount blocks and a larger
// refcount table. Undo then puts each image back byte for byte.
func TestGrowMatchesQemuImgResize(t *testing.T) {
	cases := []struct {
		name    string
		cluster string // "" for raw
		backing bool
		size    int64
	}{
		{"raw", "", false, 1 << 30},
		{"qcow2-64k-8T", "65536", false, 8 << 40},
		{"qcow2-64k-same-L1", "65536", false, 256 << 20},
		{"qcow2-512-1G", "512", false, 1 << 30},
		{"qcow2-overlay", "65536", true, 3 << 40},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img := patternRaw(t, dir, "disk.raw", 64<<20, 7)
			opts := Options{}
			if c.cluster != "" {
				q := filepath.Join(dir, "disk.qcow2")
				qemuImg(t, "convert", "-O", "qcow2", "-o", "cluster_size="+c.cluster, img, q)
				img = q
				if c.backing {
					o := filepath.Join(dir, "top.qcow2")
					qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "disk.qcow2", "-F", "qcow2", o)
					qemuIO(t, o, "write -P 0x5a 1M 200k")
					img = o
				}
			}
			before := sumFile(t, img)
			ref := filepath.Join(dir, "ref"+filepath.Ext(img))
			testtool.Run(t, "cp", "--sparse=always", img, ref)
			qemuImg(t, "resize", "-q", ref, strconv.FormatInt(c.size, 10))
			r, err := Grow(img, c.size, opts, false)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := infoVirtualSize(t, img), infoVirtualSize(t, ref); got != c.size || got != want {
				t.Errorf("virtual size %d, want %d (qemu-img resize: %d)", got, c.size, want)
			}
			if c.cluster != "" {
				checkClean(t, img)
			}
			if out, rc := testtool.Output(t, "qemu-img", "compare", img, ref); rc != 0 {
				t.Errorf("qemu-img compare with qemu-img resize's copy: exit %d\n%s", rc, out)
			}
			if err := r.Undo(); err != nil {
				t.Fatal(err)
			}
			if sumFile(t, img) != before {
				t.Error("Undo did not put the image back byte for byte")
			}
		})
	}
}

// TestGrowRefusals: shrinking, internal snapshots, a dirty qcow2 and an
// L1 table over qemu's 32 MiB limit are refused (in a dry-run check too),
// writing nothing; growing to the same size is a no-op.
func TestGrowRefusals(t *testing.T) {
	dir := t.TempDir()
	raw := patternRaw(t, dir, "disk.raw", 8<<20, 3)
	q := filepath.Join(dir, "snap.qcow2")
	qemuImg(t, "convert", "-O", "qcow2", raw, q)
	qemuImg(t, "snapshot", "-c", "s1", q)
	dirty := filepath.Join(dir, "dirty.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", dirty, "8M")
	f, err := os.OpenFile(dirty, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0, 1}, 0x48) // incompatible_features: dirty
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", small, "8M")
	for _, c := range []struct {
		img   string
		size  int64
		check bool
		want  error
	}{
		{raw, 4 << 20, false, ErrTooSmall},
		{q, 16 << 20, false, ErrUnsupported},
		{q, 16 << 20, true, ErrUnsupported},
		{raw, 16 << 20, true, nil},
		{dirty, 16 << 20, true, ErrDirty},
		{dirty, 16 << 20, false, ErrDirty},
		{small, 1 << 40, true, diskerr.ErrNoSpace}, // 2^25 L1 entries of 32 KiB each
		{raw, 8 << 20, false, nil},
	} {
		sum := sumFile(t, c.img)
		_, err := Grow(c.img, c.size, Options{}, c.check)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("Grow(%s, %d, check %v): %v, want %v", filepath.Base(c.img), c.size, c.check, err, c.want)
		}
		if sumFile(t, c.img) != sum {
			t.Errorf("Grow(%s, %d, check %v) changed the image", filepath.Base(c.img), c.size, c.check)
		}
	}
}

// TestGrowUndoRefusesChangedImage: an image written after the resize is
// not "undone" over the new bytes.
func TestGrowUndoRefusesChangedImage(t *testing.T) {
	dir := t.TempDir()
	raw := patternRaw(t, dir, "disk.raw", 8<<20, 5)
	q := filepath.Join(dir, "disk.qcow2")
	qemuImg(t, "convert", "-O", "qcow2", "-o", "cluster_size=4096", raw, q)
	r, err := Grow(q, 1<<30, Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	qemuIO(t, q, "write -P 0x11 0 64k")
	if err := r.Undo(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Undo after another write: %v, want ErrCorrupt", err)
	}
	checkClean(t, q)
	if got := infoVirtualSize(t, q); got != 1<<30 {
		t.Errorf("virtual size %d after a refused undo", got)
	}
}
