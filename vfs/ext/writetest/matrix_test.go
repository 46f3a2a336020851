package writetest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
)

// session is one image under test: the engine, the model of what must be
// on disk, and the rules for refusals.
type session struct {
	c    *checker
	spec imageSpec
	im   *image
	fsys *ext.FS
	m    *model
	bs   int
	// stopped is set by the first failed or refused step: later steps
	// would build on a state the model does not describe.
	stopped bool
	// bulk steps (hundreds of inserts) prove a refusal unchanged by the
	// write count alone: every write goes through s.im, so none counted
	// means the bytes are as before; hashing the image each step would
	// dominate the test's time.
	bulk bool
}

// step runs one operation. A refusal passes only when the error names a
// refusable feature of the image and nothing was written (no write call
// reached the image, and its SHA-256 is unchanged). update applies the
// operation to the model once it succeeded.
func (s *session) step(name string, op func() error, update func()) bool {
	t := s.c.t
	t.Helper()
	if s.stopped {
		return false
	}
	writes := s.im.writeCount()
	var sum [32]byte
	hashed := len(s.spec.refusable) > 0 && !s.bulk
	if hashed {
		sum = fileSHA(t, s.im.path)
	}
	err := op()
	if err == nil {
		if update != nil {
			update()
		}
		return true
	}
	s.stopped = true
	word, ok := refusal(s.spec, err)
	if !ok {
		s.c.Errorf("%s: %s: %v", s.spec.name, name, err)
		return false
	}
	if s.im.writeCount() != writes || hashed && fileSHA(t, s.im.path) != sum {
		s.c.Errorf("%s: %s refused (%v) but the image changed", s.spec.name, name, err)
		return false
	}
	noteRefusal(fmt.Sprintf("%s: %s refused, naming %q: %v", s.spec.name, name, word, err))
	t.Logf("refused cleanly (feature %q): %s: %v", word, name, err)
	return false
}

// openSession builds spec's image from the demo guest and opens it
// writable. It returns nil when the engine refused the image at Open
// (cleanly: the refusal names a refusable feature, the image unchanged).
func openSession(t *testing.T, spec imageSpec, extra ...string) *session {
	t.Helper()
	c := newChecker(t)
	img := mkfs(t, spec, sharedGuest(t), extra...)
	sum := fileSHA(t, img)
	im, fsys, err := openImage(t, img, ext.Options{})
	if err != nil {
		word, ok := refusal(spec, err)
		switch {
		case !ok:
			c.Errorf("%s: open writable: %v", spec.name, err)
		case im.writeCount() != 0 || fileSHA(t, img) != sum:
			c.Errorf("%s: open refused (%v) but the image changed", spec.name, err)
		default:
			noteRefusal(fmt.Sprintf("%s: Open refused, naming %q: %v", spec.name, word, err))
			t.Logf("refused cleanly at Open (feature %q): %v", word, err)
		}
		return nil
	}
	return &session{c: c, spec: spec, im: im, fsys: fsys, m: newModel(), bs: fsys.BlockSize()}
}

// TestMatrix runs every injector and every vfs operation on every image of
// the matrix, then proves the result with e2fsck -fn and debugfs.
func TestMatrix(t *testing.T) { runMatrix(t, matrix) }

// TestBeyondMatrix runs the same on other filesystems mke2fs makes.
func TestBeyondMatrix(t *testing.T) { runMatrix(t, beyond) }

func runMatrix(t *testing.T, specs []imageSpec) {
	for _, spec := range specs {
		t.Run(spec.name, func(t *testing.T) {
			t.Parallel()
			s := openSession(t, spec)
			if s == nil {
				return
			}
			s.injectNova()
			s.injectDebianKey()
			s.vfsOps()
			verify(s.c, s.im.path, s.m)
		})
	}
	t.Cleanup(func() {
		refusals.Lock()
		defer refusals.Unlock()
		for _, r := range refusals.list {
			t.Log("refusal: " + r)
		}
	})
}

// The nova payload's pieces.
var (
	novaNetwork = []byte("auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n\taddress 192.0.2.10/24\n\tgateway 192.0.2.1\n")
	novaMeta    = map[string]string{"role": "web", "owner": "ops"}
)

func demoKey(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(demoKeyFile)
	must(t, err)
	return strings.TrimSpace(string(b))
}

// novaData is the whole nova payload: one key, network, metadata, a
// password and three files (one small, one spanning blocks in new
// directories, one executable).
func novaData(t testing.TB, bs int) *inject.Data {
	exe := fs.FileMode(0o755)
	return &inject.Data{
		Keys:          []string{demoKey(t)},
		Network:       &inject.Network{Verbatim: novaNetwork},
		Meta:          novaMeta,
		AdminPassword: &inject.Password{User: "root", Plain: "s3cret pass", Crypto: inject.CryptoSHA512},
		Files: []inject.File{
			{Path: "/etc/motd", Data: []byte("Welcome.\n")},
			{Path: "/opt/app/conf/config.json", Data: pattern(2*bs+100, "config")},
			{Path: "/usr/local/bin/hello", Data: pattern(700, "hello"), Mode: &exe},
		},
	}
}

// injectNova applies the payload and models its results.
func (s *session) injectNova() {
	t := s.c.t
	shadowBefore, err := lstatNode(s.fsys, s.fsys, "/etc/shadow")
	must(t, err)
	ifBefore, err := lstatNode(s.fsys, s.fsys, "/etc/network/interfaces")
	must(t, err)
	rootDir, err := lstatNode(s.fsys, s.fsys, "/root")
	must(t, err)
	data := novaData(t, s.bs)
	meta, err := inject.MetaJSON(novaMeta)
	must(t, err)
	s.step("inject.Apply(nova payload)", func() error {
		_, err := inject.Apply(s.fsys, data, nil)
		return err
	}, func() {
		key := []byte(demoKey(t) + "\n")
		s.m.set("/root", rootDir)
		s.m.set("/root/.ssh", &node{mode: vfs.UnixDir | 0o700})
		s.m.set("/root/.ssh/authorized_keys", &node{mode: vfs.UnixRegular | 0o600, data: key})
		s.m.set("/etc/network/interfaces", &node{mode: ifBefore.mode, uid: ifBefore.uid, gid: ifBefore.gid, data: novaNetwork})
		s.m.set("/meta.js", &node{mode: vfs.UnixRegular | 0o644, data: meta})
		s.m.set("/etc/motd", &node{mode: vfs.UnixRegular | 0o644, data: data.Files[0].Data})
		for _, d := range []string{"/opt", "/opt/app", "/opt/app/conf", "/usr", "/usr/local", "/usr/local/bin"} {
			s.m.set(d, &node{mode: vfs.UnixDir | 0o755})
		}
		s.m.set("/opt/app/conf/config.json", &node{mode: vfs.UnixRegular | 0o644, data: data.Files[1].Data})
		s.m.set("/usr/local/bin/hello", &node{mode: vfs.UnixRegular | 0o755, data: data.Files[2].Data})
		s.m.set("/etc/shadow", s.newShadow(shadowBefore))
	})
}

// newShadow checks the injected password line and returns the model of
// /etc/shadow: root's hash replaced by a sha512-crypt one, every other
// line as before, mode and owner kept.
func (s *session) newShadow(before *node) *node {
	got, err := s.fsys.ReadFile("/etc/shadow")
	if err != nil {
		s.c.Errorf("read /etc/shadow after injection: %v", err)
		return before
	}
	gl, bl := strings.Split(string(got), "\n"), strings.Split(string(before.data), "\n")
	if len(gl) != len(bl) || !strings.HasPrefix(gl[0], "root:$6$") {
		s.c.Errorf("/etc/shadow after injection:\n%s", got)
	}
	for i := 1; i < len(gl) && i < len(bl); i++ {
		if gl[i] != bl[i] {
			s.c.Errorf("/etc/shadow line %d changed: %q, was %q", i+1, gl[i], bl[i])
		}
	}
	return &node{mode: before.mode, uid: before.uid, gid: before.gid, data: got}
}

// injectDebianKey adds a key for a user whose home belongs to that user.
func (s *session) injectDebianKey() {
	t := s.c.t
	home, err := lstatNode(s.fsys, s.fsys, "/home/debian")
	must(t, err)
	s.step("inject.Apply(key for debian)", func() error {
		_, err := inject.Apply(s.fsys, &inject.Data{Keys: []string{demoKey(t)}, KeyUser: "debian"}, nil)
		return err
	}, func() {
		s.m.set("/home/debian/.ssh", &node{mode: vfs.UnixDir | 0o700, uid: 1000, gid: 1000})
		s.m.set("/home/debian/.ssh/authorized_keys", &node{mode: vfs.UnixRegular | 0o600, uid: 1000, gid: 1000, data: []byte(demoKey(t) + "\n")})
		s.m.set("/home/debian", home)
	})
}

// vfsOps runs every vfs operation: deep MakePath, appends across block
// boundaries, replaces that grow and shrink, chmod (setuid, setgid,
// sticky), chown by name and by id, fast and slow symlinks, removal of a
// file, a symlink and an empty directory.
func (s *session) vfsOps() {
	s.makeDeep()
	s.appends()
	s.replaces()
	s.chmods()
	s.chowns()
	s.symlinks()
	s.removes()
}

func (s *session) makeDeep() {
	deep := "/var/lib/deep/a/b/c/d/e/f/g/h"
	s.step("MakePath "+deep, func() error { return s.fsys.MakePath(deep) }, func() {
		for p := deep; p != "/"; p = filepath.Dir(p) {
			s.m.set(p, &node{mode: vfs.UnixDir | 0o755})
		}
	})
}

func (s *session) appends() {
	const p = "/var/log/app.log"
	var content []byte
	s.step("MakePath /var/log", func() error { return s.fsys.MakePath("/var/log") }, func() {
		s.m.set("/var/log", &node{mode: vfs.UnixDir | 0o755})
	})
	for i, n := range []int{100, s.bs, 2*s.bs + 7, 1, 3 * s.bs} {
		chunk := pattern(n, fmt.Sprintf("append%d", i))
		s.step(fmt.Sprintf("AppendFile %s +%d", p, n), func() error { return s.fsys.AppendFile(p, chunk) }, func() {
			content = append(content, chunk...)
			s.m.set(p, &node{mode: vfs.UnixRegular | 0o644, data: bytes.Clone(content)})
		})
	}
	// A file mke2fs made, appended to.
	before, err := lstatNode(s.fsys, s.fsys, "/root/.bashrc")
	must(s.c.t, err)
	more := pattern(s.bs+3, "bashrc")
	s.step("AppendFile /root/.bashrc", func() error { return s.fsys.AppendFile("/root/.bashrc", more) }, func() {
		before.data = append(before.data, more...)
		s.m.set("/root/.bashrc", before)
	})
}

func (s *session) replaces() {
	const p = "/srv/blob"
	s.step("MakePath /srv", func() error { return s.fsys.MakePath("/srv") }, func() {
		s.m.set("/srv", &node{mode: vfs.UnixDir | 0o755})
	})
	for i, n := range []int{10, 3*s.bs + 5, s.bs / 2, 0, 5*s.bs + 1} {
		data := pattern(n, fmt.Sprintf("replace%d", i))
		s.step(fmt.Sprintf("ReplaceFile %s (%d bytes)", p, n), func() error { return s.fsys.ReplaceFile(p, data) }, func() {
			s.m.set(p, &node{mode: vfs.UnixRegular | 0o644, data: data})
		})
	}
	// Replacing a file mke2fs made keeps its mode and owner.
	before, err := lstatNode(s.fsys, s.fsys, "/etc/group")
	must(s.c.t, err)
	data := append(bytes.Clone(before.data), "web:x:2000:\n"...)
	s.step("ReplaceFile /etc/group", func() error { return s.fsys.ReplaceFile("/etc/group", data) }, func() {
		before.data = data
		s.m.set("/etc/group", before)
	})
}

func (s *session) chmods() {
	for _, c := range []struct {
		p    string
		mode fs.FileMode
	}{
		{"/usr/local/bin/hello", fs.ModeSetuid | 0o755},
		{"/srv/blob", fs.ModeSetgid | 0o640},
		{"/srv", fs.ModeSticky | 0o777},
		{"/var/log/app.log", 0o600},
	} {
		s.step(fmt.Sprintf("SetPermissions %s %v", c.p, c.mode), func() error { return s.fsys.SetPermissions(c.p, c.mode) }, func() {
			if n := s.m.nodes[c.p]; n != nil {
				n.mode = n.mode&vfs.UnixTypeMask | vfs.UnixPerm(c.mode)
			}
		})
	}
}

func (s *session) chowns() {
	for _, c := range []struct {
		p, user, group string
		uid, gid       int64 // -1: unchanged
	}{
		{"/srv/blob", "debian", "debian", 1000, 1000},
		{"/var/log/app.log", "4242", "4343", 4242, 4343},
		{"/etc/motd", "", "adm", -1, 4},
		{"/var/lib/deep", "sshd", "", 100, -1},
	} {
		s.step(fmt.Sprintf("SetOwnership %s %q %q", c.p, c.user, c.group), func() error { return s.fsys.SetOwnership(c.p, c.user, c.group) }, func() {
			if n := s.m.nodes[c.p]; n != nil {
				if c.uid >= 0 {
					n.uid = uint32(c.uid)
				}
				if c.gid >= 0 {
					n.gid = uint32(c.gid)
				}
			}
		})
	}
}

// slowTarget is longer than the 60 bytes a fast symlink holds in the inode.
var slowTarget = "/opt/app/conf/" + strings.Repeat("long-directory-name/", 8) + "config.json"

func (s *session) symlinks() {
	if s.stopped {
		return
	}
	sl, ok := any(s.fsys).(vfs.Symlinker)
	if !ok {
		s.c.Errorf("%s: *ext.FS does not serve vfs.Symlinker", s.spec.name)
		return
	}
	for _, c := range [][2]string{
		{"/etc/motd", "/etc/alias"},
		{slowTarget, "/etc/slowlink"},
		{"../etc/motd", "/srv/rel"},
		{"/tmp-gone", "/srv/doomed-link"},
	} {
		s.step(fmt.Sprintf("Symlink %s -> %s", c[1], c[0]), func() error { return sl.Symlink(c[0], c[1]) }, func() {
			s.m.set(c[1], &node{mode: vfs.UnixSymlink | 0o777, target: c[0]})
		})
	}
}

func (s *session) removes() {
	if s.stopped {
		return
	}
	rm, ok := any(s.fsys).(vfs.Remover)
	if !ok {
		s.c.Errorf("%s: *ext.FS does not serve vfs.Remover", s.spec.name)
		return
	}
	for _, p := range []string{"/etc/hostname", "/srv/doomed-link", "/var/lib/deep/a/b/c/d/e/f/g/h"} {
		s.step("Remove "+p, func() error { return rm.Remove(p) }, func() { s.m.remove(p) })
	}
	// A non-empty directory stays.
	if !s.stopped {
		if err := rm.Remove("/var/lib/deep/a"); err == nil {
			s.c.Errorf("Remove of a non-empty directory succeeded")
			s.stopped = true
			s.m.remove("/var/lib/deep/a")
		}
	}
}
