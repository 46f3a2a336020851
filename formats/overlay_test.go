package formats

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateOverlay(t *testing.T) {
	dir := t.TempDir()
	for _, baseFmt := range []string{"raw", "qcow2"} {
		t.Run(baseFmt, func(t *testing.T) {
			base := patternRaw(t, dir, "base-"+baseFmt+".raw", 5<<20, 2)
			if baseFmt == "qcow2" {
				q := filepath.Join(dir, "base.qcow2")
				qemuImg(t, "convert", "-O", "qcow2", base, q)
				base = q
			}
			baseBefore := toRaw(t, base)
			ov := filepath.Join(dir, "ov-"+baseFmt+".qcow2")
			if err := CreateOverlay(ov, base, OverlayOptions{Size: 7 << 20}); err != nil {
				t.Fatal(err)
			}
			checkClean(t, ov)
			info := qemuImg(t, "info", ov)
			if !strings.Contains(info, "backing file format: "+baseFmt) || !strings.Contains(info, "virtual size: 7 MiB") {
				t.Fatalf("qemu-img info:\n%s", info)
			}
			want := append(append([]byte(nil), baseBefore...), make([]byte, 2<<20)...)
			d, err := Open(ov, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, readAll(t, d), want, "fresh overlay")
			d.Close()
			writeAndCheck(t, ov, Options{}, 4)
			mustEqual(t, toRaw(t, base), baseBefore, "base after writes to the overlay")
		})
	}
}

func TestCreateOverlayTooSmall(t *testing.T) {
	dir := t.TempDir()
	base := patternRaw(t, dir, "base.raw", 4<<20, 2)
	ov := filepath.Join(dir, "ov.qcow2")
	err := CreateOverlay(ov, base, OverlayOptions{Size: 1 << 20})
	if !errors.Is(err, ErrTooSmall) {
		t.Fatalf("got %v, want ErrTooSmall", err)
	}
	if _, err := os.Stat(ov); !os.IsNotExist(err) {
		t.Fatalf("overlay left behind: %v", err)
	}
}

func TestCreateOverlayAbsoluteBase(t *testing.T) {
	baseDir, ovDir := t.TempDir(), t.TempDir()
	base := patternRaw(t, baseDir, "base.raw", 1<<20, 2)
	ov := filepath.Join(ovDir, "ov.qcow2")
	if err := CreateOverlay(ov, base, OverlayOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ov, Options{}); !errors.Is(err, ErrBackingDenied) {
		t.Fatalf("default policy opened an absolute backing path: %v", err)
	}
	d, err := Open(ov, Options{Backing: BackingAllow})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	checkClean(t, ov)
}

// TestCreateOverlaySizes: odd and huge sizes give images qemu-img accepts.
func TestCreateOverlaySizes(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "odd.raw")
	os.WriteFile(base, []byte("not a whole sector"), 0o644)
	for i, size := range []int64{0, 1000, 1 << 40, 1 << 50} {
		ov := filepath.Join(dir, "ov"+string(rune('a'+i))+".qcow2")
		if err := CreateOverlay(ov, base, OverlayOptions{Size: size}); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		checkClean(t, ov)
		d, err := Open(ov, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 18)
		d.ReadAt(got, 0)
		if string(got) != "not a whole sector" || d.Size()%512 != 0 {
			t.Fatalf("size %d: read %q, virtual size %d", size, got, d.Size())
		}
		if _, err := d.WriteAt([]byte("x"), d.Size()-1); err != nil {
			t.Fatal(err)
		}
		d.Close()
		checkClean(t, ov)
	}
}
