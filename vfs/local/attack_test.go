package local_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// host is one attack's layout on the host:
//
//	base/guest      the guest root the backend serves
//	base/outside    a sentinel directory that must never change
//	base/tmp/x      a path "../../../tmp/x" from guest/root would reach
type host struct {
	base, guest, outside string
	fsys                 *local.FS
	before               string // snapshot of everything outside the guest
}

func newHost(t *testing.T) *host {
	t.Helper()
	base := t.TempDir()
	h := &host{base: base, guest: filepath.Join(base, "guest"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{h.guest, h.outside + "/etc", h.outside + "/sub", base + "/tmp/x"} {
		mustOK(t, os.MkdirAll(d, 0o755))
	}
	mustOK(t, os.Chmod(h.guest, 0o755))
	mustOK(t, os.WriteFile(h.outside+"/secret", []byte("host secret\n"), 0o600))
	mustOK(t, os.WriteFile(h.outside+"/etc/passwd", []byte("hostroot:x:0:0::/:/bin/sh\n"), 0o644))
	mustOK(t, os.Symlink("secret", h.outside+"/link"))
	fsys, err := local.Open(h.guest)
	mustOK(t, err)
	t.Cleanup(func() { fsys.Close() })
	h.fsys = fsys
	vfstest.Populate(t, fsys)
	h.before = snapshot(t, base, h.guest)
	return h
}

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot describes every object under base except the guest root:
// path, type, permissions, owner, size, mtime, content or link target.
func snapshot(t testing.TB, base, skip string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d %d %d", p, fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().Type() == fs.ModeSymlink:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteByte('\n')
		return nil
	})
	mustOK(t, err)
	return b.String()
}

// check fails t if anything outside the guest root changed.
func (h *host) check(t *testing.T) {
	t.Helper()
	if after := snapshot(t, h.base, h.guest); after != h.before {
		t.Fatalf("the host outside the guest changed:\nbefore:\n%s\nafter:\n%s", h.before, after)
	}
}

// link replaces the guest object at guest path p by a symlink to target.
func (h *host) link(t *testing.T, target, p string) {
	t.Helper()
	hp := filepath.Join(h.guest, p)
	mustOK(t, os.RemoveAll(hp))
	mustOK(t, os.Symlink(target, hp))
}

// hostFile reads a file of the guest through the host, to see where a
// write really landed.
func (h *host) hostFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.guest, p))
	if err != nil {
		t.Fatalf("host view of guest %s: %v", p, err)
	}
	return string(data)
}

// injectKey does what the SSH key injector does.
func injectKey(fsys vfs.FS) error {
	if err := fsys.MakePath("/root/.ssh"); err != nil {
		return err
	}
	if err := fsys.SetPermissions("/root/.ssh", 0o700); err != nil {
		return err
	}
	return fsys.AppendFile("/root/.ssh/authorized_keys", []byte(vfstest.Key))
}

func TestAttackSSHToHostPaths(t *testing.T) {
	for _, target := range []string{"OUT", "OUT/etc", "../../outside", "../../../tmp/x", "../../../../../../../../OUT"} {
		t.Run(target, func(t *testing.T) {
			h := newHost(t)
			target = strings.Replace(target, "OUT", h.outside, 1)
			target = strings.Replace(target, "//", "/", -1)
			mustOK(t, os.Mkdir(filepath.Join(h.guest, "root"), 0o700))
			h.link(t, target, "/root/.ssh")
			err := injectKey(h.fsys)
			vfstest.WantErr(t, err, fs.ErrExist, "/root/.ssh") // dangling inside the guest
			h.check(t)
		})
	}
}

func TestAttackSSHToEtc(t *testing.T) {
	h := newHost(t)
	_, hostErr := os.Lstat("/etc/authorized_keys")
	mustOK(t, os.Mkdir(filepath.Join(h.guest, "root"), 0o700))
	h.link(t, "/etc", "/root/.ssh")
	mustOK(t, injectKey(h.fsys))
	if got := h.hostFile(t, "/etc/authorized_keys"); got != vfstest.Key {
		t.Fatalf("guest /etc/authorized_keys = %q", got)
	}
	if _, err := os.Lstat("/etc/authorized_keys"); !errors.Is(err, fs.ErrNotExist) && hostErr != nil {
		t.Fatal("the host's /etc/authorized_keys was created")
	}
	h.check(t)
}

func TestAttackRootSymlink(t *testing.T) {
	for _, target := range []string{"/", "/../../..", "../../..", "OUT"} {
		t.Run(target, func(t *testing.T) {
			h := newHost(t)
			if target == "OUT" {
				target = h.outside
			}
			h.link(t, target, "/root")
			err := injectKey(h.fsys)
			if target == h.outside {
				vfstest.WantErr(t, err, fs.ErrExist, "/root/.ssh") // mkdir over a dangling link
			} else {
				mustOK(t, err)
				if got := h.hostFile(t, "/.ssh/authorized_keys"); got != vfstest.Key {
					t.Fatalf("guest /.ssh/authorized_keys = %q", got)
				}
			}
			h.check(t)
		})
	}
}

func TestAttackNetworkOut(t *testing.T) {
	for _, target := range []string{"OUT", "OUT/sub", "../../outside/sub", "../outside"} {
		t.Run(target, func(t *testing.T) {
			h := newHost(t)
			target = strings.Replace(target, "OUT", h.outside, 1)
			h.link(t, target, "/etc/network")
			vfstest.WantErr(t, h.fsys.MakePath("/etc/network"), fs.ErrExist, "/etc/network")
			err := h.fsys.ReplaceFile("/etc/network/interfaces", []byte("auto lo\n"))
			vfstest.WantErr(t, err, fs.ErrNotExist, "/etc/network/interfaces")
			_, err = h.fsys.ReadFile("/etc/network/../secret")
			vfstest.WantErr(t, err, fs.ErrNotExist, "/etc/network/../secret")
			h.check(t)
		})
	}
}

func TestAttackLoops(t *testing.T) {
	h := newHost(t)
	h.link(t, "self", "/etc/self")
	h.link(t, "/etc/b", "/etc/a")
	h.link(t, "a", "/etc/b")
	for _, p := range []string{"/etc/self", "/etc/a", "/etc/b/x"} {
		vfstest.WantErr(t, h.fsys.AppendFile(p, []byte("x")), vfs.ErrTooManyLinks, p)
		vfstest.WantErr(t, h.fsys.MakePath(p+"/d"), vfs.ErrTooManyLinks, p+"/d")
		_, err := h.fsys.HasFile(p)
		vfstest.WantErr(t, err, vfs.ErrTooManyLinks, p)
	}
	h.check(t)
}

func TestAttackDotDotPaths(t *testing.T) {
	h := newHost(t)
	for _, p := range []string{"/../outside/secret", "/../../outside/secret", "/etc/../../outside/etc/passwd"} {
		vfstest.WantErr(t, h.fsys.ReplaceFile(p, []byte("pwned")), fs.ErrNotExist, p)
		_, err := h.fsys.ReadFile(p)
		vfstest.WantErr(t, err, fs.ErrNotExist, p)
	}
	mustOK(t, h.fsys.ReplaceFile("/../../../etc/passwd", []byte("guest\n")))
	if got := h.hostFile(t, "/etc/passwd"); got != "guest\n" {
		t.Fatalf("guest /etc/passwd = %q", got)
	}
	mustOK(t, h.fsys.MakePath("/../outside/sub"))
	if fi, err := os.Lstat(filepath.Join(h.guest, "outside/sub")); err != nil || !fi.IsDir() {
		t.Fatalf("/../outside/sub was not made inside the guest: %v", err)
	}
	h.check(t)
}

func TestAttackDanglingOut(t *testing.T) {
	h := newHost(t)
	h.link(t, h.outside+"/new", "/tmp/dl")
	h.link(t, "../../outside/new2", "/tmp/dl2")
	ok, err := h.fsys.HasFile("/tmp/dl")
	if ok || err != nil {
		t.Fatalf("HasFile(dangling) = %v, %v", ok, err)
	}
	for _, p := range []string{"/tmp/dl", "/tmp/dl2"} {
		_, err = h.fsys.ReadFile(p)
		vfstest.WantErr(t, err, fs.ErrNotExist, p)
		vfstest.WantErr(t, h.fsys.AppendFile(p, []byte("x")), fs.ErrNotExist, p)
	}
	h.link(t, "../outside-made", "/tmp/dl3") // resolves to the guest's /outside-made
	mustOK(t, h.fsys.AppendFile("/tmp/dl3", []byte("inside")))
	if got := h.hostFile(t, "/outside-made"); got != "inside" {
		t.Fatalf("write through a dangling link landed wrong: %q", got)
	}
	h.check(t)
}

// ErrorsNameGuestPaths: no error leaks the host directory.
func TestErrorsNameGuestPaths(t *testing.T) {
	h := newHost(t)
	errs := []error{
		h.fsys.AppendFile("/nope/x", nil),
		h.fsys.ReplaceFile("/data", nil),
		h.fsys.MakePath("/data/file/x"),
		h.fsys.SetPermissions("/links/self", 0o644),
		h.fsys.SetOwnership("/nope", "root", ""),
		h.fsys.Remove("/data"),
	}
	_, err := h.fsys.ReadFile("/links/dangling")
	errs = append(errs, err)
	_, err = h.fsys.ReadDir("/data/file")
	errs = append(errs, err)
	for i, err := range errs {
		var pe *fs.PathError
		if err == nil || !errors.As(err, &pe) || !strings.HasPrefix(pe.Path, "/") {
			t.Errorf("error %d = %v, want a *fs.PathError with a guest path", i, err)
		}
		if err != nil && strings.Contains(err.Error(), h.base) {
			t.Errorf("error %d leaks the host path: %v", i, err)
		}
	}
}

func TestOpenMissingDir(t *testing.T) {
	if _, err := local.Open(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestNewObjectsIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	l, dir := openGuest(t)
	mustOK(t, l.MakePath("/a/b"))
	mustOK(t, l.ReplaceFile("/a/b/f", []byte("x")))
	for p, want := range map[string]fs.FileMode{"a": fs.ModeDir | 0o755, "a/b": fs.ModeDir | 0o755, "a/b/f": 0o644} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		mustOK(t, err)
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestReadFileRefusesDevicesAndFifos(t *testing.T) {
	l, dir := openGuest(t)
	mustOK(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	_, err := l.ReadFile("/fifo")
	vfstest.WantErr(t, err, vfs.ErrNotRegular, "/fifo")
	vfstest.WantErr(t, l.AppendFile("/fifo", []byte("x")), vfs.ErrNotRegular, "/fifo")
	fi, err := l.Lstat("/fifo")
	if err != nil || fi.Mode.Type() != fs.ModeNamedPipe {
		t.Fatalf("Lstat fifo = %+v, %v", fi, err)
	}
}

func TestReplaceKeepsInodeAndTruncates(t *testing.T) {
	l, dir := openGuest(t)
	mustOK(t, l.ReplaceFile("/f", bytes.Repeat([]byte("a"), 10000)))
	before, err := os.Lstat(filepath.Join(dir, "f"))
	mustOK(t, err)
	mustOK(t, l.ReplaceFile("/f", []byte("b")))
	after, err := os.Lstat(filepath.Join(dir, "f"))
	mustOK(t, err)
	if !os.SameFile(before, after) || after.Size() != 1 {
		t.Fatalf("replace: same inode %v, size %d", os.SameFile(before, after), after.Size())
	}
}

// A host file hard-linked into the guest: reading it is harmless, but no
// write, chmod or chown may reach it.
func TestAttackHardLinkOut(t *testing.T) {
	h := newHost(t)
	mustOK(t, os.Remove(filepath.Join(h.guest, "data/file")))
	mustOK(t, os.Link(h.outside+"/secret", filepath.Join(h.guest, "data/file")))
	h.before = snapshot(t, h.base, h.guest)
	vfstest.WantErr(t, h.fsys.AppendFile("/data/file", []byte("x")), vfs.ErrUnsupported, "/data/file")
	vfstest.WantErr(t, h.fsys.ReplaceFile("/links/abs", []byte("x")), vfs.ErrUnsupported, "/links/abs")
	vfstest.WantErr(t, h.fsys.SetPermissions("/data/file", 0o666), vfs.ErrUnsupported, "/data/file")
	vfstest.WantErr(t, h.fsys.SetOwnership("/data/file", "al", ""), vfs.ErrUnsupported, "/data/file")
	h.check(t)
}

// The guest's /etc/passwd pointing at the host's: owner names are looked
// up in the guest only, so the host's accounts are never seen.
func TestAttackPasswdLinkOut(t *testing.T) {
	for _, target := range []string{"OUT", "../../outside/etc/passwd", "/etc/../../outside/etc/passwd"} {
		t.Run(target, func(t *testing.T) {
			h := newHost(t)
			if target == "OUT" {
				target = h.outside + "/etc/passwd"
			}
			h.link(t, target, "/etc/passwd")
			err := h.fsys.SetOwnership("/data/file", "hostroot", "")
			vfstest.WantErr(t, err, vfs.ErrUnknownUser, "/data/file")
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v does not say the guest's passwd is missing", err)
			}
			h.check(t)
		})
	}
}
