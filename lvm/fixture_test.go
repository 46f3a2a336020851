package lvm

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/vfs/ext"
)

// TestAgainstLVM: the volume group lvm2 wrote in the appliance (two PVs
// in partitions 2 and 3) reads back: the linear root grown into a second
// segment and the volume striped over both PVs open as ext4 filesystems
// with the files the appliance wrote, byte for byte; the thin volume and
// its pool are refused.
func TestAgainstLVM(t *testing.T) {
	img := testtool.LVMFixture(t)
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
	var pvs []PVDevice
	var vg *VG
	for _, n := range []int{2, 3} {
		sec, err := tab.Open(f, n)
		if err != nil {
			t.Fatal(err)
		}
		pv, err := ReadPV(sec, sec.Size())
		if err != nil {
			t.Fatalf("partition %d: %v", n, err)
		}
		pvs = append(pvs, PVDevice{PV: pv, Dev: roDev{sec}, Size: sec.Size()})
		if vg, err = ParseVG(pv.Metadata); err != nil {
			t.Fatalf("partition %d metadata: %v", n, err)
		}
	}
	if sec, _ := tab.Open(f, 1); sec != nil {
		if _, err := ReadPV(sec, sec.Size()); !errors.Is(err, ErrNotPV) {
			t.Errorf("the ext4 partition read as a PV: %v", err)
		}
	}
	if vg.Name != "vg0" || len(vg.PVs) != 2 {
		t.Fatalf("VG %s with %d PVs", vg.Name, len(vg.PVs))
	}
	root, err := vg.LV("root")
	if err != nil || len(root.Segments) != 2 || root.Kind() != "linear" || root.Size(vg) != 20<<20 {
		t.Fatalf("root: %+v, %v", root, err)
	}
	stripe, err := vg.LV("stripe")
	if err != nil || stripe.Kind() != "striped" || len(stripe.Segments[0].Stripes) != 2 || stripe.Segments[0].StripeSize != 64<<10 {
		t.Fatalf("stripe: %+v, %v", stripe, err)
	}
	for _, name := range []string{"thin", "pool"} {
		if _, err := vg.Open(name, pvs); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
	readFS := func(name string) *ext.FS {
		v, err := vg.Open(name, pvs)
		if err != nil {
			t.Fatal(err)
		}
		fsys, err := ext.Open(v, v.Size(), nil)
		if err != nil {
			t.Fatalf("%s: %v", v.Name(), err)
		}
		return fsys
	}
	rfs := readFS("root")
	if b, err := rfs.ReadFile("/etc/hostname"); err != nil || string(b) != "on-lvm\n" {
		t.Errorf("root /etc/hostname: %q, %v", b, err)
	}
	checkPattern(t, rfs, "/big", "abcdefghijklmnopqrstuvwxyz0123456789", 3000000)
	sfs := readFS("stripe")
	if b, err := sfs.ReadFile("/hello"); err != nil || string(b) != "striped hello\n" {
		t.Errorf("stripe /hello: %q, %v", b, err)
	}
	checkPattern(t, sfs, "/striped.bin", "STRIPE-0123456789", 9000000)
}

// checkPattern compares a file with guestfish's fill-pattern output.
func checkPattern(t *testing.T, fsys *ext.FS, p, pattern string, n int) {
	t.Helper()
	b, err := fsys.ReadFile(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	want := bytes.Repeat([]byte(pattern), n/len(pattern)+1)[:n]
	if !bytes.Equal(b, want) {
		i := 0
		for i < min(len(b), len(want)) && b[i] == want[i] {
			i++
		}
		t.Errorf("%s: %d bytes, differs from the pattern at byte %d", p, len(b), i)
	}
}

// roDev serves a read-only section as a Device; writes fail.
type roDev struct{ *partition.Section }

func (roDev) WriteAt([]byte, int64) (int, error) {
	return 0, errors.New("read-only test device")
}
