//go:build linux

package formats

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within runs open and fails t if it has not returned after a second (the
// bug: open(2) of a FIFO blocks until a writer appears). unblock, when the
// open hangs, opens the FIFO for writing so the goroutine can end.
func within(t *testing.T, fifo string, open func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- open() }()
	select {
	case err := <-done:
		t.Logf("returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(time.Second):
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("open blocked for more than a second")
		return nil
	}
}

func wantNotRegular(t *testing.T, err error) {
	t.Helper()
	if err == nil || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("error %v, want ErrUnsupported saying \"not a regular file\"", err)
	}
}

// TestOpenFifoBackingFailsFast is R5: a qcow2 whose backing file (allowed:
// relative, in the image's directory) is a FIFO. Every open used to block
// forever in open(2).
func TestOpenFifoBackingFailsFast(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", "fifo", "-F", "raw", top, "1M")
	for _, o := range []Options{{ReadOnly: true}, {}, {ReadOnly: true, Backing: BackingAllow}} {
		wantNotRegular(t, within(t, fifo, func() error {
			d, err := Open(top, o)
			if err == nil {
				d.Close()
			}
			return err
		}))
	}
	// Under --backing allow an absolute path to a FIFO elsewhere.
	abs := filepath.Join(dir, "abs.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", fifo, "-F", "raw", abs, "1M")
	wantNotRegular(t, within(t, fifo, func() error {
		_, err := Open(abs, Options{ReadOnly: true, Backing: BackingAllow})
		return err
	}))
	// The image itself, and DetectFile.
	wantNotRegular(t, within(t, fifo, func() error { _, err := Open(fifo, Options{ReadOnly: true}); return err }))
	wantNotRegular(t, within(t, fifo, func() error { _, err := DetectFile(fifo); return err }))
}

// TestOpenRefusesNonRegular: a character device, a socket and a directory
// are refused as images and as backing files, before they are opened.
func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, p := range []string{"/dev/null", sock, dir} {
		_, err := Open(p, Options{ReadOnly: true})
		wantNotRegular(t, err)
		_, err = DetectFile(p)
		wantNotRegular(t, err)
		top := filepath.Join(dir, "top.qcow2")
		os.Remove(top)
		qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", p, "-F", "raw", top, "1M")
		_, err = Open(top, Options{ReadOnly: true, Backing: BackingAllow})
		wantNotRegular(t, err)
	}
}

// TestOpenFifoSwappedInAfterCheck: the file passes the type check, then a
// FIFO takes its name before the open. The open must neither block nor
// use the FIFO.
func TestOpenFifoSwappedInAfterCheck(t *testing.T) {
	dir := t.TempDir()
	img := patternRaw(t, dir, "disk.raw", 1<<20, 1)
	testHook = func(stage, p string) {
		if stage != "open" {
			return
		}
		if err := os.Remove(p); err != nil {
			t.Error(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHook = nil }()
	for _, ro := range []bool{true, false} {
		os.Remove(img)
		patternRaw(t, dir, "disk.raw", 1<<20, 1)
		wantNotRegular(t, within(t, img, func() error {
			_, err := Open(img, Options{ReadOnly: ro})
			return err
		}))
	}
}

// TestOpenBackingDirSwappedAfterCheck: the backing path passes the
// default policy (beside the image), then a directory on it is swapped
// for a symlink to a directory outside before the open. The open goes
// beneath the image's directory and cannot follow it out.
func TestOpenBackingDirSwappedAfterCheck(t *testing.T) {
	base := t.TempDir()
	dir, out := filepath.Join(base, "images"), filepath.Join(base, "outside")
	for _, d := range []string{dir + "/sub", out + "/sub"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	patternRaw(t, dir+"/sub", "base.raw", 1<<20, 1)
	patternRaw(t, out+"/sub", "base.raw", 1<<20, 2)
	top := filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", "sub/base.raw", "-F", "raw", top, "1M")
	swapped := false
	testHook = func(stage, p string) {
		if stage != "check" || filepath.Base(p) != "base.raw" || swapped {
			return
		}
		swapped = true
		if err := os.Rename(dir+"/sub", dir+"/sub.moved"); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(out+"/sub", dir+"/sub"); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHook = nil }()
	d, err := Open(top, Options{ReadOnly: true})
	if !swapped {
		t.Fatal("the hook never ran")
	}
	if err == nil {
		d.Close()
		t.Fatal("opened a backing file through a directory swapped for a symlink out of the image's directory")
	}
	t.Logf("refused: %v", err)
}
