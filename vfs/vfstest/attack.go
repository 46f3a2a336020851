package vfstest

import (
	"io/fs"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// Outside is an absolute path that names nothing in the suite's guest; the
// attack cases point symlinks at it the way a hostile image points them at
// host directories. A backend with a host side repeats the cases with real
// host paths.
const Outside = "/guestinject-outside"

// Key is the line the attack cases inject as an authorized key.
const Key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6n0fM8ZyEXAMPLEKEY test\n"

// injectKey does what the SSH key injector does.
func injectKey(fsys vfs.FS) error {
	if err := fsys.MakePath("/root/.ssh"); err != nil {
		return err
	}
	if err := fsys.SetPermissions("/root/.ssh", 0o700); err != nil {
		return err
	}
	return fsys.AppendFile("/root/.ssh/authorized_keys", []byte(Key))
}

// wantUntouched checks that the guest's account files were not altered.
func wantUntouched(t *testing.T, fsys vfs.FS) {
	t.Helper()
	WantContent(t, fsys, vfs.PasswdPath, Passwd)
	WantContent(t, fsys, vfs.GroupPath, Group)
	WantExists(t, fsys, Outside, false)
}

// /root/.ssh -> /etc: the key lands in the guest's /etc, never the host's.
func (s *suite) attackSSHToEtc(t *testing.T, fsys vfs.FS) {
	must(t, fsys.MakePath("/root"))
	must(t, symlinker(t, fsys).Symlink("/etc", "/root/.ssh"))
	must(t, injectKey(fsys))
	WantContent(t, fsys, "/etc/authorized_keys", Key)
	wantUntouched(t, fsys)
}

// /root/.ssh -> ../../../tmp/x: ".." stops at the guest root, so the link
// means the guest's /tmp/x.
func (s *suite) attackSSHRelative(t *testing.T, fsys vfs.FS) {
	must(t, fsys.MakePath("/root"))
	must(t, symlinker(t, fsys).Symlink("../../../tmp/x", "/root/.ssh"))
	WantErr(t, fsys.MakePath("/root/.ssh"), fs.ErrExist, "/root/.ssh") // dangling
	WantErr(t, fsys.AppendFile("/root/.ssh/authorized_keys", []byte(Key)), fs.ErrNotExist, "/root/.ssh/authorized_keys")
	WantExists(t, fsys, "/tmp/x", false)
	must(t, fsys.MakePath("/tmp/x"))
	must(t, injectKey(fsys))
	WantContent(t, fsys, "/tmp/x/authorized_keys", Key)
	wantUntouched(t, fsys)
}

// /root -> /: the key lands in the guest's /.ssh.
func (s *suite) attackRootIsSlash(t *testing.T, fsys vfs.FS) {
	must(t, symlinker(t, fsys).Symlink("/", "/root"))
	must(t, injectKey(fsys))
	WantContent(t, fsys, "/.ssh/authorized_keys", Key)
	wantUntouched(t, fsys)
}

// /root -> /../../..: the same, ".." cannot climb above the guest root.
func (s *suite) attackRootIsDotDot(t *testing.T, fsys vfs.FS) {
	must(t, symlinker(t, fsys).Symlink("/../../..", "/root"))
	must(t, injectKey(fsys))
	WantContent(t, fsys, "/.ssh/authorized_keys", Key)
	WantContent(t, fsys, "/root/.ssh/authorized_keys", Key)
	wantUntouched(t, fsys)
}

// /etc/network -> an absolute path outside: it is resolved in the guest,
// where it does not exist, so nothing is written.
func (s *suite) attackNetworkOut(t *testing.T, fsys vfs.FS) {
	must(t, symlinker(t, fsys).Symlink(Outside+"/net", "/etc/network"))
	WantErr(t, fsys.MakePath("/etc/network"), fs.ErrExist, "/etc/network")
	WantErr(t, fsys.ReplaceFile("/etc/network/interfaces", []byte("auto lo\n")), fs.ErrNotExist, "/etc/network/interfaces")
	WantExists(t, fsys, "/etc/network/interfaces", false)
	wantUntouched(t, fsys)
}

// Loops of one and two links stop every operation with ErrTooManyLinks.
func (s *suite) attackLoops(t *testing.T, fsys vfs.FS) {
	for _, p := range []string{"/links/self", "/links/a", "/links/self/x", "/links/b/x/y"} {
		WantErr(t, fsys.AppendFile(p, []byte("x")), vfs.ErrTooManyLinks, p)
		WantErr(t, fsys.ReplaceFile(p, []byte("x")), vfs.ErrTooManyLinks, p)
		WantErr(t, readErr(fsys, p), vfs.ErrTooManyLinks, p)
		WantErr(t, fsys.SetPermissions(p, 0o777), vfs.ErrTooManyLinks, p)
		WantErr(t, fsys.SetOwnership(p, "al", ""), vfs.ErrTooManyLinks, p)
		_, err := fsys.HasFile(p)
		WantErr(t, err, vfs.ErrTooManyLinks, p)
	}
	WantErr(t, fsys.MakePath("/links/a/sub"), vfs.ErrTooManyLinks, "/links/a/sub")
	wantUntouched(t, fsys)
}

// ".." in injected paths stays inside the guest.
func (s *suite) attackDotDot(t *testing.T, fsys vfs.FS) {
	must(t, fsys.ReplaceFile("/../../etc/injected", []byte("in")))
	WantContent(t, fsys, "/etc/injected", "in")
	WantContent(t, fsys, "/../../../etc/passwd", Passwd)
	must(t, fsys.MakePath("/../../x/../y/z"))
	WantExists(t, fsys, "/y/z", true)
	must(t, fsys.AppendFile("/data/../../../../data/file", []byte("+")))
	WantContent(t, fsys, "/data/file", FileData+"+")
	wantUntouched(t, fsys)
}

// A dangling link is missing to readers; writing through it creates its
// target inside the guest; a target whose parent is missing is an error.
func (s *suite) attackDangling(t *testing.T, fsys vfs.FS) {
	WantExists(t, fsys, "/links/dangling", false)
	WantErr(t, readErr(fsys, "/links/dangling"), fs.ErrNotExist, "/links/dangling")
	must(t, fsys.AppendFile("/links/dangling", []byte("made")))
	WantContent(t, fsys, "/data/new", "made")
	s.wantMode(t, fsys, "/data/new", 0o644, 0, 0)
	if fi, ok := stat(t, fsys, "/links/dangling", false); ok && fi.Mode.Type() != fs.ModeSymlink {
		t.Errorf("/links/dangling was replaced instead of followed")
	}
	WantErr(t, fsys.ReplaceFile("/links/nowhere", []byte("x")), fs.ErrNotExist, "/links/nowhere")
	WantExists(t, fsys, "/missing", false)
	wantUntouched(t, fsys)
}

// A file replaced by a symlink between two writes: the second write
// follows the link the guest way and finds nothing to write to.
func (s *suite) attackSwap(t *testing.T, fsys vfs.FS) {
	rm, ok := fsys.(vfs.Remover)
	if !ok {
		t.Logf("%T does not serve vfs.Remover", fsys)
		return
	}
	must(t, fsys.ReplaceFile("/tmp/victim", []byte("v1")))
	must(t, rm.Remove("/tmp/victim"))
	must(t, symlinker(t, fsys).Symlink(Outside+"/victim", "/tmp/victim"))
	WantErr(t, fsys.ReplaceFile("/tmp/victim", []byte("v2")), fs.ErrNotExist, "/tmp/victim")
	must(t, rm.Remove("/tmp/victim"))
	must(t, symlinker(t, fsys).Symlink("/etc/passwd", "/tmp/victim"))
	must(t, fsys.AppendFile("/tmp/victim", []byte("x:x:1:1::/:/bin/sh\n")))
	WantContent(t, fsys, vfs.PasswdPath, Passwd+"x:x:1:1::/:/bin/sh\n") // guest's own file
	WantExists(t, fsys, Outside, false)
}

// The object an operation resolved is swapped for a hard link to a file
// outside the guest just before the operation acts on it (or, for a new
// directory or symlink, between its creation and the setting of its mode
// and owner). Checking "one hard link" on what resolution saw and then
// acting by path would change the outside file; the operation must fail
// and leave it alone.
func (s *suite) attackHardLinkSwap(t *testing.T, fsys vfs.FS) {
	rc := s.opts.Race
	if rc == nil {
		t.Logf("%T: no Racer, its tree cannot change behind its back", fsys)
		return
	}
	must(t, fsys.MakePath("/race/dir"))
	steps := []struct {
		op, p string
		run   func() error
	}{
		{"chmod", "/race/chmod", func() error { return fsys.SetPermissions("/race/chmod", 0o600) }},
		{"chmod", "/race/dir", func() error { return fsys.SetPermissions("/race/dir", 0o700) }},
		{"chown", "/race/chown", func() error { return fsys.SetOwnership("/race/chown", "al", "al") }},
		{"append", "/race/append", func() error { return fsys.AppendFile("/race/append", []byte(Key)) }},
		{"replace", "/race/replace", func() error { return fsys.ReplaceFile("/race/replace", []byte(Key)) }},
		{"mkdir-made", "/race/mkdir", func() error { return fsys.MakePath("/race/mkdir") }},
		{"symlink-made", "/race/symlink", func() error { return symlinker(t, fsys).Symlink("target", "/race/symlink") }},
	}
	if xw, ok := fsys.(vfs.XattrWriter); ok {
		steps = append(steps,
			struct {
				op, p string
				run   func() error
			}{"setxattr", "/race/setxattr", func() error { return xw.SetXattr("/race/setxattr", "user.x", []byte("x")) }},
			struct {
				op, p string
				run   func() error
			}{"removexattr", "/race/removexattr", func() error { return xw.RemoveXattr("/race/removexattr", "user.x") }})
	}
	if ts, ok := fsys.(vfs.TimeSetter); ok {
		steps = append(steps, struct {
			op, p string
			run   func() error
		}{"utimes", "/race/utimes", func() error { return ts.SetTimes("/race/utimes", time.Unix(1, 0), time.Unix(1, 0)) }})
	}
	if tr, ok := fsys.(vfs.Truncater); ok {
		steps = append(steps, struct {
			op, p string
			run   func() error
		}{"truncate", "/race/truncate", func() error { return tr.Truncate("/race/truncate", 0) }})
	}
	for _, st := range steps {
		if st.p != "/race/dir" && st.op != "mkdir-made" && st.op != "symlink-made" {
			must(t, fsys.ReplaceFile(st.p, []byte("guest file\n")))
		}
	}
	if xw, ok := fsys.(vfs.XattrWriter); ok {
		must(t, xw.SetXattr("/race/removexattr", "user.x", []byte("guest")))
	}
	before := rc.Outside(t, fsys)
	for _, st := range steps {
		fired := false
		rc.Hook(fsys, func(op string) {
			if op == st.op && !fired {
				fired = true
				rc.LinkOutside(t, fsys, st.p)
			}
		})
		err := st.run()
		rc.Hook(fsys, nil)
		if !fired {
			t.Errorf("%s %s: the backend never reached step %q", st.op, st.p, st.op)
			continue
		}
		if err == nil {
			t.Errorf("%s %s: went through a hard link to a file outside the guest, swapped in after resolution", st.op, st.p)
		}
		if after := rc.Outside(t, fsys); after != before {
			t.Fatalf("%s %s: the file outside the guest changed: %s, was %s", st.op, st.p, after, before)
		}
	}
	wantUntouched(t, fsys)
}
