package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/internal/testtool"
)

func openPath(t testing.TB, p string) (*Disk, error) {
	t.Helper()
	open, closeAll, err := DirOpener(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAll() })
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	return Open(f, fi.Size(), open)
}

// TestReadMatchesQemu: every subformat qemu-img writes reads byte for
// byte as qemu-img convert -O raw does, with data at odd offsets.
func TestReadMatchesQemu(t *testing.T) {
	size := int64(5<<20 + 3*512)
	if testing.Short() {
		size = 3<<20 + 512
	}
	for _, sub := range []string{"monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			src := testtool.OddRaw(t, dir, size, 11)
			p := filepath.Join(dir, "d.vmdk")
			testtool.Convert(t, src, p, "vmdk", "subformat="+sub)
			want, wsize := testtool.QemuRawSHA256(t, p, "vmdk")
			d, err := openPath(t, p)
			if err != nil {
				t.Fatal(err)
			}
			if d.Size() != wsize {
				t.Fatalf("size %d, qemu-img says %d", d.Size(), wsize)
			}
			if d.CreateType() != sub {
				t.Errorf("createType %q, want %q", d.CreateType(), sub)
			}
			for _, chunk := range []int{0, 4093} {
				if got := testtool.ReaderSHA256(t, d, d.Size(), chunk); got != want {
					t.Fatalf("chunk %d: sha256 %s, qemu-img convert gives %s", chunk, got, want)
				}
			}
		})
	}
}

// TestExtentOutsideDirectoryRefused: a descriptor naming an absolute
// path or a ../ path is refused before anything is opened, and so is a
// symlink leading out of the directory.
func TestExtentOutsideDirectoryRefused(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret-flat.vmdk")
	if err := os.WriteFile(outside, make([]byte, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link-flat.vmdk")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{outside, "../" + filepath.Base(filepath.Dir(outside)) + "/secret-flat.vmdk", "a/../../x", "link-flat.vmdk"} {
		desc := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2 FLAT \"" + name + "\" 0\n"
		p := filepath.Join(dir, "d.vmdk")
		if err := os.WriteFile(p, []byte(desc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := openPath(t, p)
		if err == nil {
			t.Fatalf("extent %q: opened", name)
		}
		if !strings.Contains(err.Error(), "extent") {
			t.Errorf("extent %q: error does not name the extent: %v", name, err)
		}
	}
}

// TestParentRefused: a differencing VMDK (parentCID set) is refused as
// unsupported.
func TestParentRefused(t *testing.T) {
	desc := "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=12345678\ncreateType=\"monolithicFlat\"\nRW 2 ZERO\n"
	p := filepath.Join(t.TempDir(), "d.vmdk")
	os.WriteFile(p, []byte(desc), 0o644)
	if _, err := openPath(t, p); !errors.Is(err, diskerr.ErrUnsupported) {
		t.Fatalf("err %v, want ErrUnsupported", err)
	}
}

// TestSeveralExtentsMatchQemu: a hand-written descriptor joining two flat
// extents (one at an offset into its file), a zero extent and a sparse
// extent reads as qemu-img reads it. (qemu skips ZERO extents, which
// VMware's specification reads as zeros, so a ZERO extent is checked on
// its own below.)
func TestSeveralExtentsMatchQemu(t *testing.T) {
	dir := t.TempDir()
	src := testtool.OddRaw(t, dir, 3<<20, 5)
	testtool.Convert(t, src, filepath.Join(dir, "s.vmdk"), "vmdk", "subformat=monolithicSparse")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a-flat.vmdk"), b[:1<<20], 0o644)
	os.WriteFile(filepath.Join(dir, "b-flat.vmdk"), b[1<<20:], 0o644)
	desc := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentFlat\"\n" +
		"RW 2048 FLAT \"a-flat.vmdk\" 0\nRW 1024 FLAT \"b-flat.vmdk\" 7\nRW 6144 SPARSE \"s.vmdk\"\n"
	p := filepath.Join(dir, "d.vmdk")
	os.WriteFile(p, []byte(desc), 0o644)
	want, wsize := testtool.QemuRawSHA256(t, p, "vmdk")
	d, err := openPath(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size() != wsize {
		t.Fatalf("size %d, qemu-img says %d", d.Size(), wsize)
	}
	for _, chunk := range []int{0, 4093} {
		if got := testtool.ReaderSHA256(t, d, d.Size(), chunk); got != want {
			t.Fatalf("chunk %d: sha256 %s, qemu-img convert gives %s", chunk, got, want)
		}
	}
}

// TestZeroExtent: a ZERO extent between two flat ones reads as zeros and
// shifts what follows by its size.
func TestZeroExtent(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a-flat.vmdk"), bytes.Repeat([]byte{0xaa}, 512), 0o644)
	desc := "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a-flat.vmdk\" 0\nRW 2 ZERO\nRW 1 FLAT \"a-flat.vmdk\"\n"
	p := filepath.Join(dir, "d.vmdk")
	os.WriteFile(p, []byte(desc), 0o644)
	d, err := openPath(t, p)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := append(append(bytes.Repeat([]byte{0xaa}, 512), make([]byte, 1024)...), bytes.Repeat([]byte{0xaa}, 512)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes not equal to flat, zeros, flat", len(got))
	}
}

// TestGrainDirectoryBudget: the grain directories of all the sparse
// extents a descriptor names count against one bound, so 4096 extents
// naming one sparse file with a large directory cannot multiply it.
func TestGrainDirectoryBudget(t *testing.T) {
	dir := t.TempDir()
	// a sparse extent of 256 GiB: a 32 KiB directory (8192 tables of 512
	// grains of 64 KiB); 514 of them pass 16 MiB
	p := filepath.Join(dir, "s.vmdk")
	testtool.Run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse", p, "256G")
	fi, _ := os.Stat(p)
	f, _ := os.Open(p)
	defer f.Close()
	h := make([]byte, HeaderSize)
	f.ReadAt(h, 0)
	hd := DecodeHeader(h)
	per := int64(hd.NumGTEsPerGT) * int64(hd.GrainSize)
	gdBytes := (int64(hd.Capacity) + per - 1) / per * 4
	var desc strings.Builder
	desc.WriteString("# Disk DescriptorFile\ncreateType=\"twoGbMaxExtentSparse\"\n")
	n := int(MaxGDBytes/gdBytes) + 2
	if n > 1000 {
		t.Fatalf("the extent's directory (%d bytes) is too small for the test", gdBytes)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&desc, "RW %d SPARSE \"s.vmdk\"\n", hd.Capacity)
	}
	d := filepath.Join(dir, "d.vmdk")
	os.WriteFile(d, []byte(desc.String()), 0o644)
	if _, err := openPath(t, d); !errors.Is(err, diskerr.ErrUnsupported) || !strings.Contains(err.Error(), "grain directories") {
		t.Fatalf("%d extents of a %d-byte directory (file %d bytes): %v, want the budget refusal", n, gdBytes, fi.Size(), err)
	}
}
