//go:build linux

package formats

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
	out, _ = testtool.Output(t, "qemu-io", "-c", "write 0 512", img)
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

// TestLockReleasedAtCloseDespiteForks: Close must drop the locks even when
// another goroutine forks at that moment. A forked child shares the open
// file description until it execs, and an OFD lock lives as long as the
// description, so closing our descriptor alone left the image locked for
// a while (other opens, qemu's included, then failed with "Failed to get
// consistent read lock"). Four goroutines keep running /bin/true while a
// loop opens and closes an image for writing; right after each Close a
// second open file description probes every lock byte.
func TestLockReleasedAtCloseDespiteForks(t *testing.T) {
	img := patternRaw(t, t.TempDir(), "disk.raw", 1<<20, 1)
	probe, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := exec.Command("/bin/true").Run(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	const iterations = 200
	held := 0
	for i := range iterations {
		d, err := Open(img, Options{Format: FormatRaw})
		if err != nil {
			t.Fatalf("iteration %d: the previous Close left the image locked: %v", i, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{lockPermBase, lockPermBase + 1, lockPermBase + 3, lockSharedBase, lockSharedBase + 1, lockSharedBase + 3} {
			if heldByOther(probe, off) {
				held++
				break
			}
		}
	}
	if held > 0 {
		t.Fatalf("%d of %d closes left a lock held", held, iterations)
	}
}

// TestImageFilesCloseOnExec: no file of a chain may be inherited by a
// child process (it would carry the image locks with it).
func TestImageFilesCloseOnExec(t *testing.T) {
	dir := t.TempDir()
	patternRaw(t, dir, "base.raw", 1<<20, 1)
	top := filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top)
	d, err := Open(top, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(d.files) != 2 {
		t.Fatalf("%d files open, want the image and its backing file", len(d.files))
	}
	for _, f := range d.files {
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: descriptor without FD_CLOEXEC", f.Name())
		}
	}
}
