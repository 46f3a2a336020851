package formats

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// patternRaw writes a sparse raw disk of size bytes holding random extents
// (and some extents of zeros) and returns its path.
func patternRaw(t testing.TB, dir, name string, size int64, seed int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(seed))
	for i := 0; i < 40; i++ {
		n := 1 + r.Int63n(96<<10)
		off := r.Int63n(size - n)
		b := make([]byte, n)
		if i%5 != 0 {
			r.Read(b)
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func qemuImg(t testing.TB, args ...string) string {
	t.Helper()
	return string(testtool.Run(t, "qemu-img", args...))
}

func qemuIO(t testing.TB, img string, cmds ...string) {
	t.Helper()
	args := []string{}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	testtool.Run(t, "qemu-io", append(args, img)...)
}

// toRaw converts any image qemu can read to raw and returns its bytes.
func toRaw(t testing.TB, img string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ref.raw")
	qemuImg(t, "convert", "-O", "raw", img, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads the whole virtual disk through our implementation.
func readAll(t testing.TB, d Disk) []byte {
	t.Helper()
	b := make([]byte, d.Size())
	// Read in odd-sized pieces to cross cluster boundaries unevenly.
	for off := int64(0); off < d.Size(); {
		n := min(int64(777_777), d.Size()-off)
		if _, err := d.ReadAt(b[off:off+n], off); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		off += n
	}
	return b
}

func mustEqual(t testing.TB, got, want []byte, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: size %d, want %d", what, len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: first difference at byte %#x: got %#x want %#x", what, i, got[i], want[i])
			}
		}
	}
}

// checkClean runs qemu-img check and fails on errors or leaks.
func checkClean(t testing.TB, img string) {
	t.Helper()
	out, rc := testtool.Output(t, "qemu-img", "check", img)
	if rc != 0 || strings.Contains(string(out), "leaked") || strings.Contains(string(out), "ERROR") {
		t.Fatalf("qemu-img check %s: exit %d\n%s", img, rc, out)
	}
}

// compareSame runs qemu-img compare against a raw file.
func compareSame(t testing.TB, img, raw string) {
	t.Helper()
	out, rc := testtool.Output(t, "qemu-img", "compare", "-F", "raw", img, raw)
	if rc != 0 {
		t.Fatalf("qemu-img compare %s %s: exit %d\n%s", img, raw, rc, out)
	}
}
