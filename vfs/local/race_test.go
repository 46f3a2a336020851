package local_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// swapTarget is what the race tests swap in: an absolute host path out,
// a relative path out, or a path to another file inside the guest.
func swapTarget(h *host, kind string) string {
	switch kind {
	case "abs-out":
		return h.outside + "/secret"
	case "rel-out":
		return "../../outside/secret"
	}
	return "../etc/passwd"
}

// swapAt makes the hook replace the host object behind guest path p (at
// the moment op is about to touch it) with a symlink to target.
func (h *host) swapAt(t *testing.T, op, p, target string) {
	t.Helper()
	hp := filepath.Join(h.guest, p)
	local.SetHook(h.fsys, func(gotOp, rel string) {
		if gotOp != op {
			return
		}
		local.SetHook(h.fsys, nil)
		if err := os.RemoveAll(hp); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(target, hp); err != nil {
			t.Error(err)
		}
	})
}

func TestRaceLastComponentExistingFile(t *testing.T) {
	writes := map[string]func(vfs.FS) error{
		"append":  func(f vfs.FS) error { return f.AppendFile("/data/file", []byte("pwned")) },
		"replace": func(f vfs.FS) error { return f.ReplaceFile("/data/file", []byte("pwned")) },
		"read":    func(f vfs.FS) error { _, err := f.ReadFile("/data/file"); return err },
	}
	for op, write := range writes {
		for _, name := range []string{"abs-out", "rel-out", "inside"} {
			t.Run(op+"/"+name, func(t *testing.T) {
				h := newHost(t)
				h.swapAt(t, op, "/data/file", swapTarget(h, name))
				err := write(h.fsys)
				if err == nil {
					t.Fatal("the operation went through a symlink swapped in after resolution")
				}
				if name == "inside" && !errors.Is(err, local.ErrChanged) {
					t.Errorf("swap to an inside file: %v, want ErrChanged", err)
				}
				if got := h.hostFile(t, "/etc/passwd"); got != vfstest.Passwd {
					t.Errorf("guest /etc/passwd changed: %q", got)
				}
				h.check(t)
			})
		}
	}
}

func TestRaceLastComponentNewFile(t *testing.T) {
	for _, op := range []string{"append", "replace"} {
		for _, rel := range []bool{false, true} {
			t.Run(op, func(t *testing.T) {
				h := newHost(t)
				target := h.outside + "/created"
				if rel {
					target = "../../outside/created"
				}
				h.swapAt(t, op, "/tmp/new", target)
				var err error
				if op == "append" {
					err = h.fsys.AppendFile("/tmp/new", []byte("pwned"))
				} else {
					err = h.fsys.ReplaceFile("/tmp/new", []byte("pwned"))
				}
				vfstest.WantErr(t, err, fs.ErrExist, "/tmp/new") // O_EXCL met the link
				h.check(t)
			})
		}
	}
}

func TestRaceIntermediateComponent(t *testing.T) {
	for _, target := range []string{"OUT", "../outside", "../../outside"} {
		t.Run(target, func(t *testing.T) {
			h := newHost(t)
			if target == "OUT" {
				target = h.outside
			}
			mustOK(t, os.WriteFile(h.outside+"/file", []byte("outside file"), 0o644))
			h.before = snapshot(t, h.base, h.guest)
			local.SetHook(h.fsys, func(op, rel string) {
				local.SetHook(h.fsys, nil)
				mustOK(t, os.Rename(filepath.Join(h.guest, "data"), filepath.Join(h.guest, "data.moved")))
				mustOK(t, os.Symlink(target, filepath.Join(h.guest, "data")))
			})
			if err := h.fsys.ReplaceFile("/data/file", []byte("pwned")); err == nil {
				t.Fatal("write followed a directory swapped for a symlink out")
			}
			h.check(t)
		})
	}
}

func TestRaceAttributesAndDirectories(t *testing.T) {
	cases := []struct {
		op, p string
		run   func(*local.FS) error
		ok    bool // the operation may succeed (on the swapped-in link itself)
	}{
		{"chmod", "/data/file", func(f *local.FS) error { return f.SetPermissions("/data/file", 0o777) }, false},
		{"chown", "/data/file", func(f *local.FS) error { return f.SetOwnership("/data/file", "", "") }, true},
		{"mkdir", "/data/d", func(f *local.FS) error { return f.MakePath("/data/d") }, false},
		{"symlink", "/data/l", func(f *local.FS) error { return f.Symlink("x", "/data/l") }, false},
		{"remove", "/data/file", func(f *local.FS) error { return f.Remove("/data/file") }, true},
		{"readdir", "/data", func(f *local.FS) error { _, err := f.ReadDir("/data"); return err }, false},
	}
	for _, c := range cases {
		for _, abs := range []bool{false, true} {
			t.Run(c.op, func(t *testing.T) {
				h := newHost(t)
				target := "../../outside/secret"
				switch {
				case c.op == "readdir" && abs:
					target = h.outside
				case c.op == "readdir":
					target = "../outside"
				case abs:
					target = h.outside + "/secret"
				}
				h.swapAt(t, c.op, c.p, target)
				if err := c.run(h.fsys); err == nil && !c.ok {
					t.Fatalf("%s went through a symlink swapped in after resolution", c.op)
				}
				h.check(t)
			})
		}
	}
}

func TestSnapshotSeesChanges(t *testing.T) {
	h := newHost(t)
	before := h.before
	mustOK(t, os.Chmod(h.outside+"/secret", 0o644))
	if snapshot(t, h.base, h.guest) == before {
		t.Fatal("snapshot missed a mode change outside the guest")
	}
	mustOK(t, os.WriteFile(h.base+"/tmp/x/new", nil, 0o644))
	if snapshot(t, h.base, h.guest) == before {
		t.Fatal("snapshot missed a new file outside the guest")
	}
}

// TestRaceHardLinkSwapLoop is R7 in process: another goroutine keeps
// swapping a guest file for a hard link to a host file outside the guest
// and back, while every change of an existing file runs on the guest
// path. The host file must never change (the hook-driven
// AttackHardLinkSwap of vfstest hits the window every time; this checks
// no other window is left: a check of the link count on a descriptor
// opened by name once left one, hit about once in 2000 runs).
func TestRaceHardLinkSwapLoop(t *testing.T) {
	h := newHost(t)
	victim := h.outside + "/victim"
	mustOK(t, os.WriteFile(victim, []byte("host\n"), 0o644))
	mustOK(t, os.Chmod(victim, 0o644))
	if asRootTest {
		mustOK(t, os.Chown(victim, 1234, 1234))
	}
	want := describeHost(t, victim)
	ak := filepath.Join(h.guest, "data/ak")
	tmpLink, tmpReg := filepath.Join(h.guest, "data/.hl"), filepath.Join(h.guest, "data/.rg")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Remove(tmpLink)
			if os.Link(victim, tmpLink) == nil {
				os.Rename(tmpLink, ak)
			}
			if os.WriteFile(tmpReg, []byte("guest\n"), 0o600) == nil {
				os.Rename(tmpReg, ak)
			}
		}
	}()
	runs := 2000
	if testing.Short() {
		runs = 300
	}
	changes := []func(){
		func() { h.fsys.SetPermissions("/data/ak", 0o600) },
		func() { h.fsys.ReplaceFile("/data/ak", []byte("pwned\n")) },
		func() { h.fsys.AppendFile("/data/ak", []byte("pwned\n")) },
		func() { h.fsys.Truncate("/data/ak", 1) },
		func() { h.fsys.SetTimes("/data/ak", time.Unix(1, 0), time.Unix(1, 0)) },
		func() { h.fsys.SetXattr("/data/ak", "user.pwned", []byte("x")) },
	}
	if asRootTest {
		changes = append(changes, func() { h.fsys.SetOwnership("/data/ak", "al", "al") })
	}
	for i := 0; i < runs; i++ {
		changes[i%len(changes)]()
		if got := describeHost(t, victim); got != want {
			close(stop)
			<-done
			t.Fatalf("run %d: the host file outside the guest is now %s, was %s", i, got, want)
		}
	}
	close(stop)
	<-done
	left, err := filepath.Glob(filepath.Join(h.guest, "data", ".guestinject-*"))
	mustOK(t, err)
	if len(left) != 0 {
		for _, d := range left {
			ents, _ := os.ReadDir(d)
			fi, _ := os.Lstat(d)
			t.Logf("%s: %v %v", d, fi.Mode(), ents)
		}
		t.Fatalf("private directories left behind: %q", left)
	}
}

var asRootTest = os.Geteuid() == 0

// describeHost is the mode, owner, content, modification time and
// attribute names of a host file.
func describeHost(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	mustOK(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	data, err := os.ReadFile(p)
	mustOK(t, err)
	attrs := make([]byte, 4096)
	n, err := unix.Listxattr(p, attrs)
	if err != nil {
		n = 0
	}
	return fmt.Sprintf("%v %d:%d %q mtime %v xattrs %q", fi.Mode(), st.Uid, st.Gid, data, fi.ModTime().UnixNano(), attrs[:n])
}
