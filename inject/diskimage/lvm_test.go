package diskimage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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
