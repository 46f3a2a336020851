//go:build linux

package formats

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/internal/testtool"
)

// TestLockQemuHolds starts qemu-io on an image (it waits for commands on
// stdin while holding qemu's write locks) and checks that we refuse it.
func TestLockQemuHolds(t *testing.T) {
	img := smallImage(t, t.TempDir())
	cmd := exec.Command(testtool.Need(t, "qemu-io")[0], img)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	waitLocked(t, img, lockPermBase+1)
	for _, ro := range []bool{false, true} {
		d, err := Open(img, Options{ReadOnly: ro})
		if err == nil {
			d.Close()
			t.Fatalf("opened an image qemu-io holds (read-only %v)", ro)
		}
		if !errors.Is(err, ErrInUse) {
			t.Fatalf("read-only %v: %v, want ErrInUse", ro, err)
		}
		t.Logf("refused: %v", err)
	}
	// NoLock is the caller's explicit override (e.g. inspecting a live image).
	d, err := Open(img, Options{ReadOnly: true, NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

// waitLocked polls until another process locks byte off of path.
func waitLocked(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !heldByOther(f, off) {
		if time.Now().After(deadline) {
			t.Fatalf("qemu-io never locked byte %d", off)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLockQemuSeesOurs checks that qemu-img refuses an image we hold, for
// writing and for reading, and accepts it once we close it.
func TestLockQemuSeesOurs(t *testing.T) {
	img := smallImage(t, t.TempDir())
	d, err := Open(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, rc := testtool.Output(t, "qemu-img", "info", img)
	if rc == 0 || !strings.Contains(string(out), `lock`) {
		t.Fatalf("qemu-img info while we write: exit %d\n%s", rc, out)
	}
	d.Close()
	qemuImg(t, "info", img)

	d, err = Open(img, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	out, rc = testtool.Output(t, "qemu-io", "-c", "write 0 512", img)
	if !strings.Contains(string(out), `"write" lock`) {
		t.Fatalf("qemu-io wrote an image we read:\n%s", out)
	}
	qemuImg(t, "info", img) // a second reader is fine
	d.Close()
}

// TestLockOurselves: two opens for writing exclude each other; readers share.
func TestLockOurselves(t *testing.T) {
	img := smallImage(t, t.TempDir())
	r1, err := Open(img, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(img, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	if _, err := Open(img, Options{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("writer beside readers: %v", err)
	}
	r1.Close()
	r2.Close()
	w, err := Open(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := Open(img, Options{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second writer: %v", err)
	}
	if _, err := Open(img, Options{ReadOnly: true}); !errors.Is(err, ErrInUse) {
		t.Fatalf("reader beside a writer: %v", err)
	}
}

// TestLockSharedBase is the nova flow: a running VM (qemu-io) writes its
// overlay on a shared base; we can still create and write another overlay
// on the same base, but not open the base for writing.
func TestLockSharedBase(t *testing.T) {
	dir := t.TempDir()
	base := patternRaw(t, dir, "base.raw", 2<<20, 4)
	vm := filepath.Join(dir, "vm.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", vm)
	cmd := exec.Command(testtool.Need(t, "qemu-io")[0], vm)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	waitLocked(t, vm, lockPermBase+1)
	waitLocked(t, base, lockPermBase)
	if _, err := Open(base, Options{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("opened for writing a base a VM reads: %v", err)
	}
	ov := filepath.Join(dir, "new.qcow2")
	if err := CreateOverlay(ov, base, OverlayOptions{}); err != nil {
		t.Fatal(err)
	}
	d, err := Open(ov, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("instance"), 1000); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
