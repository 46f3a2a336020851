package inject

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext"
)

// extGuest is the demo guest in an ext4 image made by mkfs.ext4 -d, opened
// writable through the engine (each write lands in the file as it is made:
// no staging, so a plan the engine disagrees with shows as a changed guest).
func extGuest(t *testing.T) (guest, string) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", hostGuest(t), img, "16M")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	must(t, err)
	fsys, err := ext.Open(f, st.Size(), &ext.Options{Writable: true})
	must(t, err)
	return guest{"ext", fsys}, img
}

// opsGuests is every backend the operations run on: memfs, vfs/local and
// the ext engine.
func opsGuests(t *testing.T) []guest {
	g, _ := extGuest(t)
	return append(guests(t), g)
}

func forEachOpsGuest(t *testing.T, f func(t *testing.T, g guest)) {
	for _, g := range opsGuests(t) {
		t.Run(g.name, func(t *testing.T) { f(t, g) })
	}
}

// e2fsckClean fails unless e2fsck -fn finds nothing to fix in img.
func e2fsckClean(t *testing.T, img string) {
	t.Helper()
	p := testtool.Need(t, "e2fsck")[0]
	if out, err := exec.Command(p, "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// The whole operation set on the ext engine, then e2fsck -fn: every
// operation virt-customize has plus --chown and --tar-in.
func TestOpsOnExtEngineFsckClean(t *testing.T) {
	g, img := extGuest(t)
	tb := filepathJoinTar(t)
	d := &Data{Ops: ops(
		"mkdir", "/opt/app/conf",
		"write", "/opt/app/conf/a:hello",
		"append-line", "/opt/app/conf/a:world",
		"mkdir", "/srv",
		"copy", "/opt/app:/srv",
		"move", "/srv/app/conf/a:/srv/app/b",
		"link", "/srv/app/b:/opt/l1:/opt/l2",
		"chmod", "0750:/srv/app/b",
		"chown", "debian:debian:/srv/app/b",
		"touch", "/opt/t",
		"touch", "/etc/hostname",
		"tar-in", tb+":/opt",
		"delete", "/opt/app",
		"truncate", "/opt/t",
		"truncate-recursive", "/home",
		"hostname", "web1",
	)}
	_, err := Apply(g.fs, d, nil)
	must(t, err)
	e2fsckClean(t, img)
	if got := read(t, g.fs, "/srv/app/b"); got != "hello\nworld\n" {
		t.Errorf("/srv/app/b = %q", got)
	}
	if read(t, g.fs, "/opt/tar/run2") != "#!/bin/sh\n" || stat(t, g.fs, "/opt/tar/run").Nlink != 2 {
		t.Error("tar hard link")
	}
	if fi := stat(t, g.fs, "/home/debian/.bashrc"); fi.Size != 0 {
		t.Errorf("truncate-recursive left %d bytes", fi.Size)
	}
}
