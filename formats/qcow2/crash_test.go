package qcow2

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	extfs "github.com/guestinject/guestinject/vfs/ext"
)

// crashFile is a host file in memory that records every write and sync in
// order, so the file as a crash at any point would leave it can be rebuilt.
type crashFile struct {
	memFile
	events []crashEvent
}

type crashEvent struct {
	off  int64
	data []byte // nil: a sync
}

func (c *crashFile) WriteAt(p []byte, off int64) (int, error) {
	c.events = append(c.events, crashEvent{off, bytes.Clone(p)})
	return c.memFile.WriteAt(p, off)
}

func (c *crashFile) Sync() error {
	c.events = append(c.events, crashEvent{})
	return nil
}

// crashExtForbidden are what e2fsck must never find in the filesystem
// inside the image after a crash: an inode or directory whose blocks the
// guest cannot see yet (read as zeros: invalid extent nodes, garbage
// inodes, corrupt directory blocks), or blocks claimed twice. Leaked
// blocks and inodes and stale counts are what the ext write order allows
// (vfs/ext/writeorder.go).
var crashExtForbidden = regexp.MustCompile(`(?i)invalid extent|extent tree|i_blocks is|i_size is|seems to contain garbage|directory corrupted|has no checksum|checksum does not match|multiply-claimed|shared with|illegal block|bad block|overlaps fs metadata`)

// TestCrashKeepsGuestWriteOrder (audit R8): the ext engine writes through
// a qcow2 image (no overlay: the ordered, synced path); the host writes
// are recorded and the image is rebuilt as a crash after each one would
// leave it. Every such image must pass qemu-img check with at most leaked
// clusters, and the ext filesystem inside e2fsck -fn with at most leaks
// and counts to fix: the guest's write order (data, extent nodes, inodes,
// directories, bitmaps) holds through the container. Without the write
// barrier, writes in place became visible before earlier writes into new
// clusters, and e2fsck found inodes with invalid extent nodes.
func TestCrashKeepsGuestWriteOrder(t *testing.T) {
	guest := testtool.DemoGuest(t)
	for _, cb := range []int{12, 16} {
		t.Run(fmt.Sprintf("cluster-%d", 1<<cb), func(t *testing.T) {
			dir := t.TempDir()
			raw := filepath.Join(dir, "fs.raw")
			testtool.Run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-E", "lazy_itable_init=1,root_owner=0:0", "-d", guest, raw, "16M")
			qc := filepath.Join(dir, "fs.qcow2")
			testtool.Run(t, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", fmt.Sprintf("cluster_size=%d", 1<<cb), raw, qc)
			base, err := os.ReadFile(qc)
			if err != nil {
				t.Fatal(err)
			}
			cf := &crashFile{memFile: memFile{b: bytes.Clone(base)}}
			injectThroughQcow2(t, cf)
			checkCrashPoints(t, dir, base, cf.events)
		})
	}
}

// injectThroughQcow2 runs a few ext operations on the image in f and
// closes it: new directories and files (new clusters), changes in place.
func injectThroughQcow2(t *testing.T, f *crashFile) {
	t.Helper()
	img, err := Open(f, int64(len(f.b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := extfs.Open(img, img.Size(), &extfs.Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 700<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	steps := []func() error{
		func() error { return fsys.MakePath("/root/.ssh") },
		func() error { return fsys.ReplaceFile("/root/.ssh/authorized_keys", []byte("ssh-ed25519 AAAA test\n")) },
		func() error { return fsys.ReplaceFile("/big", big) },
		func() error { return fsys.ReplaceFile("/etc/hostname", []byte("vm-1\n")) },
		func() error { return fsys.MakePath("/srv/a/b") },
		func() error { return fsys.AppendFile("/big", big[:300<<10]) },
		func() error { return fsys.ReplaceFile("/srv/a/b/notes", bytes.Repeat([]byte("notes\n"), 3000)) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkCrashPoints rebuilds the host file after each recorded write (every
// fourth with -short, plus every sync point and the end) and checks it.
func checkCrashPoints(t *testing.T, dir string, base []byte, events []crashEvent) {
	writes := 0
	for _, e := range events {
		if e.data != nil {
			writes++
		}
	}
	t.Logf("%d host writes, %d syncs", writes, len(events)-writes)
	host := &memFile{b: bytes.Clone(base)}
	qc, raw := filepath.Join(dir, "crash.qcow2"), filepath.Join(dir, "crash.raw")
	n, checked := 0, 0
	for i, e := range events {
		if e.data == nil {
			continue
		}
		host.WriteAt(e.data, e.off)
		n++
		atSync := i+1 < len(events) && events[i+1].data == nil
		every := 1
		if testing.Short() {
			every = 4
		}
		if !atSync && n%every != 0 && n != writes {
			continue
		}
		checked++
		// qemu-img check costs as much as e2fsck: at every sync point,
		// every 8th write and the end.
		qcheck := atSync || n%8 == 0 || n == writes
		if !checkCrashImage(t, host.b, qc, raw, qcheck, fmt.Sprintf("crash after host write %d of %d (%d bytes at %#x)", n, writes, len(e.data), e.off)) {
			return
		}
	}
	t.Logf("checked %d crash points", checked)
}

// checkCrashImage checks one rebuilt host file: qemu-img check finds at
// most leaks, and the filesystem inside at most what the ext order allows.
func checkCrashImage(t *testing.T, b []byte, qc, raw string, qcheck bool, what string) bool {
	t.Helper()
	if qcheck {
		if err := os.WriteFile(qc, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, code := testtool.Output(t, "qemu-img", "check", qc); code != 0 && code != 3 {
			t.Errorf("%s: qemu-img check exit %d (0 or 3, leaks only, allowed):\n%s", what, code, out)
			return false
		}
	}
	img, err := Open(&memFile{b: b}, int64(len(b)), Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("%s: open: %v", what, err)
	}
	disk := make([]byte, img.Size())
	if _, err := img.ReadAt(disk, 0); err != nil {
		t.Fatalf("%s: read: %v", what, err)
	}
	if err := os.WriteFile(raw, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := testtool.Output(t, "e2fsck", "-fn", raw)
	if m := crashExtForbidden.Find(out); m != nil || code > 4 {
		t.Errorf("%s: e2fsck -fn exit %d finds %q:\n%s", what, code, m, out)
		return false
	}
	return true
}
