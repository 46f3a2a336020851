package diskimage

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// allocated is the bytes f allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestInspectOSReleaseHugeInode (audit R10): an os-release whose inode
// claims 1 GiB-1 bytes (one real block) is skipped without reading it:
// inspect used to load it whole through ReadFile's 1 GiB cap and only then
// drop it, 1 GiB of memory per such file. /usr/lib/os-release, of normal
// size, is used instead.
func TestInspectOSReleaseHugeInode(t *testing.T) {
	dir := guestTree(t, "Debian")
	if err := os.MkdirAll(filepath.Join(dir, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/lib/os-release"), []byte("ID=fallback\nNAME=\"From usr/lib\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", dir, img, "64M")
	testtool.Run(t, "debugfs", "-w", "-R", "sif /etc/os-release size 0x3fffffff", img)
	if out := testtool.Run(t, "debugfs", "-R", "stat /etc/os-release", img); !contains(out, "Size: 1073741823") {
		t.Fatalf("debugfs did not set the size:\n%s", out)
	}
	var r *Report
	n := allocated(func() {
		var err error
		if r, err = Inspect(img, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	if r.Root == nil || r.Root.OSID != "fallback" || r.Root.OSName != "From usr/lib" {
		t.Fatalf("root %+v (error %q), want the OS of /usr/lib/os-release", r.Root, r.RootError)
	}
	if n > 32<<20 {
		t.Fatalf("inspect allocated %d MiB", n>>20)
	}
	t.Logf("inspect allocated %d KiB", n>>10)
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
