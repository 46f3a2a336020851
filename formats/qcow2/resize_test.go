package qcow2

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// TestGrowCrashSafe grows a qcow2 of 512-byte clusters from 8 MiB to
// 64 MiB: the L1 table moves to 32 new clusters at the end of the file,
// counted before the header names them. The host writes are recorded and the file rebuilt as a crash
// after each one would leave it: qemu-img check finds at most leaks, the
// header names the old or the new size, and the guest's bytes are those of
// the original image.
func TestGrowCrashSafe(t *testing.T) {
	dir := t.TempDir()
	qc := filepath.Join(dir, "src.qcow2")
	testtool.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", qc, "8M")
	testtool.Run(t, "qemu-io", "-c", "write -P 0x33 0 300k", "-c", "write -P 0x44 5M 100k", "-c", "write -P 0x55 8000k 192k", qc)
	base, err := os.ReadFile(qc)
	if err != nil {
		t.Fatal(err)
	}
	want := guestBytes(t, base)
	cf := &crashFile{memFile: memFile{b: bytes.Clone(base)}}
	img, err := Open(cf, int64(len(cf.b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	oldL1 := img.meta.L1TableOffset
	if err := img.Grow(64 << 20); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if img.meta.L1TableOffset == oldL1 || img.meta.L1Size != 2048 {
		t.Fatalf("L1 table at %#x with %d entries: not moved", img.meta.L1TableOffset, img.meta.L1Size)
	}
	host := &memFile{b: bytes.Clone(base)}
	crash := filepath.Join(dir, "crash.qcow2")
	writes, sizes := 0, map[int64]bool{}
	lastData := -1 // -short checks every fourth write and always the last one
	for i, e := range cf.events {
		if e.data != nil {
			lastData = i
		}
	}
	for i, e := range cf.events {
		if e.data == nil {
			continue
		}
		host.WriteAt(e.data, e.off)
		writes++
		if testing.Short() && writes%4 != 0 && i != lastData {
			continue
		}
		what := fmt.Sprintf("crash after host write %d (%d bytes at %#x)", writes, len(e.data), e.off)
		if err := os.WriteFile(crash, host.b, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, code := testtool.Output(t, "qemu-img", "check", crash); code != 0 && code != 3 {
			t.Fatalf("%s: qemu-img check exit %d (leaks only allowed):\n%s", what, code, out)
		}
		got := guestBytes(t, host.b)
		if !bytes.Equal(got[:len(want)], want) || bytes.ContainsFunc(got[len(want):], func(r rune) bool { return r != 0 }) {
			t.Fatalf("%s: the guest's bytes changed", what)
		}
		sizes[int64(len(got))] = true
	}
	if !sizes[8<<20] || !sizes[64<<20] {
		t.Errorf("crash points saw virtual sizes %v, want both the old and the new", sizes)
	}
	testtool.Run(t, "qemu-img", "check", crash)
	t.Logf("%d host writes checked", writes)
}

// guestBytes reads the whole virtual disk of the qcow2 file b.
func guestBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	img, err := Open(&memFile{b: b}, int64(len(b)), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, img.Size())
	if _, err := img.ReadAt(out, 0); err != nil {
		t.Fatal(err)
	}
	return out
}
