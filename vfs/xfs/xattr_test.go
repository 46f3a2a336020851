package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// TestXattrForms sets attributes with xfs_db's attr_set (values are runs of
// 'v') in each attr fork form: short form, one leaf with local values,
// remote values, and a node btree of leaves; on v5 and v4.
func TestXattrForms(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	buildSource(t, src, treeOpts{nodeEntries: 10})
	type attr struct {
		flag, name, full string
		n                int
	}
	sets := map[string][]attr{
		"/files/tiny": {{"-s", "selinux", "security.selinux", 30}, {"", "a", "user.a", 3}},
		// A small attribute first: xfs_db 6.1 crashes setting a large
		// value on a v4 inode without an attr fork.
		"/files/empty":     {{"-r", "t", "trusted.t", 10}, {"", "l1", "user.l1", 3000}, {"-s", "selinux", "security.selinux", 40}},
		"/files/block4096": {{"-s", "selinux", "security.selinux", 25}, {"", "remote", "user.remote", 20000}},
	}
	for i := 0; i < 150; i++ {
		n := fmt.Sprintf("attr%03d", i)
		sets["/etc/passwd"] = append(sets["/etc/passwd"], attr{"", n, "user." + n, 60})
	}
	for _, v := range []struct {
		name string
		args []string
	}{{"v5", nil}, {"v4", []string{"-m", "crc=0"}}, {"b1024", []string{"-b", "size=1024"}}} {
		t.Run(v.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "x.img")
			mkfsTree(t, img, src, 512<<20, v.args...)
			for p, as := range sets {
				cmds := []string{"path " + p}
				for _, a := range as {
					c := fmt.Sprintf("attr_set -v %d %s", a.n, a.name)
					if a.flag != "" {
						c = fmt.Sprintf("attr_set %s -v %d %s", a.flag, a.n, a.name)
					}
					cmds = append(cmds, c)
				}
				xfsDBWrite(t, img, cmds...)
			}
			f := openImage(t, img, nil)
			for p, as := range sets {
				var want []string
				for _, a := range as {
					want = append(want, a.full)
				}
				sort.Strings(want)
				got, err := f.ListXattr(p)
				if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("ListXattr(%s) = %v, %v; want %v", p, got, err, want)
				}
				for _, a := range as {
					v, err := f.GetXattr(p, a.full)
					if err != nil || !bytes.Equal(v, bytes.Repeat([]byte("v"), a.n)) {
						t.Errorf("GetXattr(%s, %s): %d bytes, %v; want %d", p, a.full, len(v), err, a.n)
					}
				}
			}
			if _, err := f.GetXattr("/files/tiny", "user.missing"); !errors.Is(err, vfs.ErrNoXattr) {
				t.Errorf("missing attribute: %v", err)
			}
			if got, err := f.ListXattr("/files/setuid"); err != nil || len(got) != 0 {
				t.Errorf("ListXattr of a file without attributes = %v, %v", got, err)
			}
			// The forms the test means to cover.
			for p, want := range map[string]string{"/files/tiny": "local", "/etc/passwd": "extents btree"} {
				_, in, _ := f.resolve("stat", p, true)
				if got := in.core.AFormat.String(); !strings.Contains(want, got) {
					t.Errorf("%s: attr fork %s, want %s", p, got, want)
				}
			}
			_, in, _ := f.resolve("stat", "/etc/passwd", true)
			exts, _ := f.forkExtents(in, true)
			b, _ := f.attrBlock(in, exts, 0)
			if b == nil || uint32(b[8])<<8|uint32(b[9]) != f.daNodeMagic() {
				t.Errorf("/etc/passwd's attributes are not in node form")
			}
		})
	}
}
