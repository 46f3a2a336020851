package inject

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext"
)

// quotaGuest is the demo guest in an ext4 image with quota (args add the
// features), opened writable through the engine. prj, when not empty, is
// a directory given project 42 and PROJINHERIT before the open.
func quotaGuest(t *testing.T, prj string, args ...string) (guest, string) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", append(append([]string{"-q", "-F"}, args...), "-d", hostGuest(t), img, "32M")...)
	if prj != "" {
		testtool.Run(t, "debugfs", "-w", "-R", "mkdir "+prj, img)
		testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field "+prj+" projid 42", img)
		testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field "+prj+" flags 0x20080000", img)
		if out := testtool.Run(t, "debugfs", "-R", "stat "+prj, img); !bytes.Contains(out, []byte("Project:    42")) {
			t.Fatalf("debugfs did not give %s project 42:\n%s", prj, out)
		}
	}
	// mke2fs -d (1.47.0) and debugfs leave the quota files behind the
	// tree: let e2fsck settle them so the test starts clean.
	testtool.Output(t, "e2fsck", "-fy", img)
	quotaClean(t, img)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	must(t, err)
	fsys, err := ext.Open(f, st.Size(), &ext.Options{Writable: true})
	must(t, err)
	return guest{"ext", fsys}, img
}

// quotaClean fails unless e2fsck -fn finds img clean, its quota files
// matching the usage it counts.
func quotaClean(t *testing.T, img string) {
	t.Helper()
	out, rc := testtool.Output(t, "e2fsck", "-fn", img)
	text := strings.ReplaceAll(string(out), img, "IMG")
	if rc != 0 || strings.Contains(strings.ToLower(text), "quota") {
		t.Fatalf("e2fsck -fn %s: exit %d\n%s", img, rc, out)
	}
}

// listQuota returns id's {space, inodes} in debugfs' list_quota typ.
func listQuota(t *testing.T, img, typ string, id int) [2]uint64 {
	t.Helper()
	for _, line := range strings.Split(string(testtool.Run(t, "debugfs", "-R", "list_quota "+typ, img)), "\n") {
		f := strings.Fields(line)
		if len(f) == 7 && f[0] == strconv.Itoa(id) {
			space, err1 := strconv.ParseUint(f[1], 10, 64)
			inodes, err2 := strconv.ParseUint(f[4], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("list_quota %s: %q", typ, line)
			}
			return [2]uint64{space, inodes}
		}
	}
	t.Fatalf("list_quota %s: no id %d", typ, id)
	return [2]uint64{}
}

// The nova payload (keys, meta, password, files) and the customise
// operations, with files given to several new ids, on quota and
// project-quota filesystems: e2fsck finds the quota files in step with
// the tree, and the ids debugfs lists charge what their files use.
func TestPayloadAndOpsOnQuotaExt(t *testing.T) {
	for _, c := range []struct {
		name, prj string
		args      []string
	}{
		{"quota", "", []string{"-O", "quota"}},
		{"prjquota", "/opt", []string{"-I", "256", "-O", "quota,project", "-E", "quotatype=usrquota:grpquota:prjquota"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, img := quotaGuest(t, c.prj, c.args...)
			d := &Data{
				Keys:          []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAXmH5f3SRUnDJqFeVDiUqbx4C4gUbB9kve1m8r+o9i1 demo@guestinject"},
				Meta:          map[string]string{"role": "web", "uuid": "vm1"},
				AdminPassword: &Password{Hash: "$6$0123456789abcdef$" + strings.Repeat("x", 86)},
				Files: []File{
					{Path: "/etc/motd", Data: []byte("hello\n")},
					{Path: "/opt/app/data.bin", Data: bytes.Repeat([]byte{0xa5}, 200<<10)},
				},
				Ops: ops(
					"mkdir", "/opt/app/conf",
					"write", "/opt/app/conf/a:hello",
					"append-line", "/opt/app/conf/a:world",
					"mkdir", "/srv",
					"copy", "/opt/app:/srv",
					"chown", "debian:debian:/srv/app/conf/a",
					"chown", "4242:4343:/srv/app/data.bin",
					"chown", "5151:5252:/opt/app/data.bin",
					"write", "/opt/new:x",
					"chown", "6161:6262:/opt/new",
					"delete", "/srv/app/conf",
					"chown", "debian:debian:/opt/app/conf/a",
					"touch", "/etc/hostname",
					"tar-in", filepathJoinTar(t)+":/opt",
					"truncate-recursive", "/home",
					"hostname", "web1",
				),
			}
			_, err := Apply(g.fs, d, nil)
			must(t, err)
			quotaClean(t, img)
			const big = 200 << 10
			for _, w := range []struct {
				typ    string
				id     int
				inodes uint64
			}{{"user", 4242, 1}, {"group", 4343, 1}, {"user", 5151, 1}, {"group", 5252, 1}} {
				if got := listQuota(t, img, w.typ, w.id); got[0] < big || got[1] != w.inodes {
					t.Errorf("%s id %d: %d bytes, %d inodes; want at least %d bytes and %d inodes", w.typ, w.id, got[0], got[1], big, w.inodes)
				}
			}
			if got := listQuota(t, img, "user", 6161); got[1] != 1 {
				t.Errorf("user 6161: %d inodes, want 1", got[1])
			}
			if c.prj != "" {
				// /opt/app, its data.bin and conf, conf/a, /opt/new, the
				// tar tree: everything made under /opt inherits project 42.
				if got := listQuota(t, img, "project", 42); got[0] < big || got[1] < 6 {
					t.Errorf("project 42: %d bytes, %d inodes; want at least %d bytes and 6 inodes", got[0], got[1], big)
				}
			}
		})
	}
}
