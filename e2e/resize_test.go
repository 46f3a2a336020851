package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// virtualSize is qemu-img info's virtual size in bytes.
func virtualSize(t *testing.T, img string) string {
	t.Helper()
	out := string(testtool.Run(t, "qemu-img", "info", img))
	m := regexp.MustCompile(`virtual size: .*\((\d+) bytes\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("qemu-img info %s:\n%s", img, out)
	}
	return m[1]
}

// TestGrowInPlaceWithSize is nova's extend done in process on images
// written in place: --size grows the disk (raw: sparse extension; qcow2:
// header and, from 2 GiB to 2 TiB with 64 KiB clusters, a new L1 table),
// --grow the partition and ext4 inside it. A dry run and a failed
// injection leave every byte as it was.
func TestGrowInPlaceWithSize(t *testing.T) {
	for _, c := range []struct{ format, size, bytes string }{
		{"raw", "3G", "3221225472"},
		{"qcow2", "2T", "2199023255552"},
	} {
		t.Run(c.format, func(t *testing.T) {
			dir := t.TempDir()
			img := growBase(t, dir, false)
			if c.format == "qcow2" {
				q := filepath.Join(dir, "disk.qcow2")
				testtool.Run(t, "qemu-img", "convert", "-O", "qcow2", "-o", "cluster_size=65536", img, q)
				img = q
			}
			sum := fileSum(t, img)
			p := newPayload(t)
			mustCLI(t, append(p.args, "--dry-run", "--size", c.size, "--grow", img)...)
			r := cli(t, "--size", c.size, "--grow", "--key", demoKey, "--key-user", "nosuchuser", img)
			if r.code != 1 || !strings.Contains(r.stderr, "was undone") {
				t.Fatalf("injection for a missing user: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if fileSum(t, img) != sum {
				t.Fatal("a dry run or a failed injection changed the image (the resize was not undone)")
			}
			out := mustCLI(t, append(p.args, "--size", c.size, "--grow", img)...)
			if !strings.Contains(out, "grew partition 1") {
				t.Errorf("report:\n%s", out)
			}
			if got := virtualSize(t, img); got != c.bytes {
				t.Errorf("virtual size %s, want %s", got, c.bytes)
			}
			flat := img
			if c.format == "qcow2" {
				qemuCheckClean(t, img)
				flat = toRaw(t, img)
			}
			if out, code := testtool.Output(t, "sgdisk", "-v", flat); code != 0 || !strings.Contains(string(out), "No problems found") {
				t.Errorf("sgdisk -v: exit %d\n%s", code, out)
			}
			start, size := gptPart(t, flat, 1)
			e2fsckClean(t, flat, start)
			bs := dumpe2fsField(t, fsAt(flat, start), "Block size")
			if blocks := dumpe2fsField(t, fsAt(flat, start), "Block count"); blocks != size/bs {
				t.Errorf("filesystem has %d blocks of %d, the partition holds %d", blocks, bs, size/bs)
			}
			payloadLanded(t, p, flat, start)
		})
	}
}

// TestSizeInPlaceRefusals: shrinking, and a qcow2 with an internal
// snapshot, are refused with nothing written.
func TestSizeInPlaceRefusals(t *testing.T) {
	dir := t.TempDir()
	raw := growBase(t, dir, false)
	q := filepath.Join(dir, "snap.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-O", "qcow2", raw, q)
	testtool.Run(t, "qemu-img", "snapshot", "-c", "s1", q)
	for _, c := range []struct{ img, size, want string }{
		{raw, "1G", "shrinking is refused"},
		{q, "4G", "internal snapshots"},
	} {
		sum := fileSum(t, c.img)
		r := cli(t, "--size", c.size, "--grow", "--key", demoKey, c.img)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("--size %s on %s: exit %d, want a refusal naming %q\n%s", c.size, c.img, r.code, c.want, r.stderr)
		}
		if fileSum(t, c.img) != sum {
			t.Errorf("a refused resize changed %s", c.img)
		}
	}
	if _, err := os.Stat(raw); err != nil {
		t.Fatal(err)
	}
}
