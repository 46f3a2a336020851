package diskimage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/lvm"
	"github.com/guestinject/guestinject/partition"
)

// copyFixture copies the LVM fixture disk into the test's directory.
func copyFixture(t *testing.T) string {
	t.Helper()
	src := testtool.LVMFixture(t)
	dst := filepath.Join(t.TempDir(), "lvm.img")
	testtool.Run(t, "cp", "--sparse=always", src, dst)
	return dst
}

// lvBytes reads logical volume name of img whole, as lvm maps it.
func lvBytes(t *testing.T, img, name string) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tab, err := partition.Read(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	v, err := openVolume(f, tab, nil, name, func(s *partition.Section) lvm.Device { return readOnlyDev{s} })
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, v.Size())
	if _, err := v.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLVMRoot: root detection finds the guest root on logical volume
// vg0/root (beside an ext4 partition without markers, a striped volume
// and a refused thin one), an injection written there passes e2fsck on
// the volume as LVM maps it and leaves the striped volume's bytes alone,
// and --partition vg0/stripe opens the other volume.
func TestLVMRoot(t *testing.T) {
	img := copyFixture(t)
	cands := func() []Candidate {
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		tab, err := partition.Read(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		return Candidates(f, st.Size(), tab)
	}()
	seen := map[string]Candidate{}
	for _, c := range cands {
		if c.Volume != "" {
			seen[c.Volume] = c
		}
	}
	if !seen["vg0/root"].Root || seen["vg0/stripe"].Root || seen["vg0/stripe"].Kind != "ext4" ||
		!strings.Contains(seen["vg0/thin"].Why, "thin") || len(seen) != 5 {
		t.Fatalf("logical volume candidates: %+v", seen)
	}
	stripeBefore := lvBytes(t, img, "vg0/stripe")
	im, err := Open(img, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if im.Volume != "vg0/root" {
		t.Fatalf("root on %q", im.Volume)
	}
	if err := im.FS.ReplaceFile("/etc/motd", bytes.Repeat([]byte("on LVM\n"), 5000)); err != nil {
		t.Fatal(err)
	}
	if err := im.FS.MakePath("/root/.ssh"); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root.ext4")
	if err := os.WriteFile(root, lvBytes(t, img, "vg0/root"), 0o644); err != nil {
		t.Fatal(err)
	}
	testtool.Run(t, "e2fsck", "-fn", root)
	if got := testtool.Run(t, "debugfs", "-R", "cat /etc/motd", root); !bytes.Contains(got, []byte("on LVM\non LVM\n")) {
		t.Fatalf("debugfs cat /etc/motd: %.40q", got)
	}
	if !bytes.Equal(stripeBefore, lvBytes(t, img, "vg0/stripe")) {
		t.Fatal("writing vg0/root changed vg0/stripe")
	}
	im, err = Open(img, Options{Partition: "vg0/stripe"})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := im.FS.ReadFile("/hello"); err != nil || string(b) != "striped hello\n" {
		t.Fatalf("vg0/stripe /hello: %q, %v", b, err)
	}
	im.Close()
	for sel, want := range map[string]error{"vg0/thin": lvm.ErrUnsupported, "vg0/nope": ErrBadPartition, "vg9/root": ErrBadPartition} {
		if _, err := Open(img, Options{Partition: sel}); !errors.Is(err, want) {
			t.Errorf("--partition %s: %v, want %v", sel, err, want)
		}
	}
	if _, err := Open(img, Options{Writable: true, Grow: "root"}); !errors.Is(err, ErrCannotGrow) {
		t.Errorf("--grow on a logical volume: %v", err)
	}
	r, err := Inspect(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Root == nil || r.Root.Volume != "vg0/root" || r.Root.OSID != "lvmtest" {
		t.Fatalf("inspect root: %+v", r.Root)
	}
}

// TestLVMXFSRoot: on the appliance's lvm-xfs.img, root detection finds the
// XFS root on vgx/root (a linear segment, then one striped over both PVs)
// and nothing else, a write there through the XFS engine passes
// xfs_repair -n on the volume's bytes, reads back with the appliance's
// files (spread over both segments) intact and leaves vgx/gap alone, and
// inspect names the OS on the volume.
func TestLVMXFSRoot(t *testing.T) {
	src := testtool.LVMFixtureImage(t, "lvm-xfs.img")
	img := filepath.Join(t.TempDir(), "lvm-xfs.img")
	testtool.Run(t, "cp", "--sparse=always", src, img)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	tab, err := partition.Read(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	cands := Candidates(f, st.Size(), tab)
	f.Close()
	var roots, vols []string
	for _, c := range cands {
		if c.Root {
			roots = append(roots, c.Volume+"/"+c.Kind)
		}
		if c.Volume != "" {
			vols = append(vols, c.Volume)
		}
	}
	slices.Sort(vols)
	if strings.Join(roots, ",") != "vgx/root/xfs" || strings.Join(vols, ",") != "vgx/gap,vgx/root" {
		t.Fatalf("roots %v among logical volumes %v", roots, vols)
	}
	gapBefore := lvBytes(t, img, "vgx/gap")
	im, err := Open(img, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if im.Volume != "vgx/root" {
		t.Fatalf("root on %q", im.Volume)
	}
	motd := bytes.Repeat([]byte("XFS on LVM\n"), 30000)
	if err := im.FS.ReplaceFile("/etc/motd", motd); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root.xfs")
	if err := os.WriteFile(root, lvBytes(t, img, "vgx/root"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := testtool.Output(t, "xfs_repair", "-n", "-f", root); code != 0 {
		t.Fatalf("xfs_repair -n on vgx/root: exit %d\n%s", code, out)
	}
	if !bytes.Equal(gapBefore, lvBytes(t, img, "vgx/gap")) {
		t.Fatal("writing vgx/root changed vgx/gap")
	}
	im, err = Open(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if b, err := im.FS.ReadFile("/etc/motd"); err != nil || !bytes.Equal(b, motd) {
		t.Fatalf("/etc/motd back: %d bytes, %v", len(b), err)
	}
	for i := 1; i <= 6; i++ {
		pat := fmt.Sprintf("XFS-%d-0123456789", i)
		b, err := im.FS.ReadFile(fmt.Sprintf("/data/d%d/f", i))
		if err != nil || !bytes.Equal(b, bytes.Repeat([]byte(pat), 6<<20/len(pat)+1)[:6<<20]) {
			t.Fatalf("/data/d%d/f: %d bytes, %v", i, len(b), err)
		}
	}
	r, err := Inspect(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Root == nil || r.Root.Volume != "vgx/root" || r.Root.OSID != "lvmxfs" {
		t.Fatalf("inspect root: %+v", r.Root)
	}
}
