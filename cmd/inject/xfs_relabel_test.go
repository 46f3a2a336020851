package main

import (
	"bytes"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/xfs"
	"github.com/guestinject/guestinject/vfs/xfs/oracletest"
)

// selinuxGuest is a copy of the demo guest with Debian's
// selinux-policy-default file_contexts under SELINUXTYPE=default.
func selinuxGuest(t *testing.T) string {
	t.Helper()
	src := guestDir(t)
	const ctx = "/etc/selinux/default/contexts/files"
	must(t, os.MkdirAll(filepath.Join(src, ctx), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "etc/selinux/config"), []byte("SELINUX=enforcing\nSELINUXTYPE=default\n"), 0o644))
	for _, n := range []string{"file_contexts", "file_contexts.homedirs", "file_contexts.subs_dist"} {
		b, err := os.ReadFile(filepath.Join(ctx, n))
		if err != nil {
			t.Fatalf("Debian's selinux-policy-default must be installed: %v", err)
		}
		must(t, os.WriteFile(filepath.Join(src, ctx, n), b, 0o644))
	}
	return src
}

// guestLabels walks fsys and returns the security.selinux value of every
// object that has one.
func guestLabels(t *testing.T, fsys vfs.FS) map[string]string {
	t.Helper()
	xr, rd := fsys.(vfs.XattrReader), fsys.(vfs.Reader)
	out := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		fi, err := rd.Lstat(p)
		must(t, err)
		if fi.Mode.Type() == os.ModeSymlink {
			return // GetXattr follows symlinks
		}
		v, err := xr.GetXattr(p, "security.selinux")
		switch {
		case err == nil:
			out[p] = string(v)
		case !errors.Is(err, vfs.ErrNoXattr):
			t.Fatalf("GetXattr %s: %v", p, err)
		}
		if !fi.IsDir() {
			return
		}
		ents, err := rd.ReadDir(p)
		must(t, err)
		for _, e := range ents {
			walk(path.Join(p, e.Name))
		}
	}
	walk("/")
	return out
}

// TestImageInjectXFSRelabel: --selinux-relabel on an XFS root labels
// every object the injection wrote, and exactly as the same injection
// labels an ext4 image of the same guest; xfs_repair -n and e2fsck -fn
// are clean.
func TestImageInjectXFSRelabel(t *testing.T) {
	src := selinuxGuest(t)
	dir := t.TempDir()
	var proto bytes.Buffer
	must(t, oracletest.WriteProtofile(&proto, src))
	pf := filepath.Join(dir, "proto")
	must(t, os.WriteFile(pf, proto.Bytes(), 0o644))
	xfsImg := filepath.Join(dir, "xfs.img")
	must(t, os.WriteFile(xfsImg, nil, 0o644))
	must(t, os.Truncate(xfsImg, 300<<20))
	testtool.Run(t, "mkfs.xfs", "-q", "-f", "-p", pf, xfsImg)
	extImg := filepath.Join(dir, "ext.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-I", "256", "-d", src, extImg, "64M")

	labels := map[string]map[string]string{}
	for _, img := range []string{xfsImg, extImg} {
		args := append([]string{"--selinux-relabel", "--mkdir", "/var/www/html", "--write", "/var/www/html/index.html:hi"}, xfsInjectArgs(t)...)
		out, errOut, code := cli(append(args, img)...)
		wantCode(t, code, exitOK, errOut)
		if !strings.Contains(out, "labelled from the guest's policy") {
			t.Errorf("%s: report:\n%s", filepath.Base(img), out)
		}
		fh, err := os.Open(img)
		must(t, err)
		defer fh.Close()
		st, err := fh.Stat()
		must(t, err)
		var fsys vfs.FS
		if img == xfsImg {
			xfsRepairClean(t, img)
			fsys, err = xfs.Open(fh, st.Size(), nil)
		} else {
			testtool.Run(t, "e2fsck", "-fn", img)
			fsys, err = ext.Open(fh, st.Size(), nil)
		}
		must(t, err)
		labels[img] = guestLabels(t, fsys)
	}
	x, e := labels[xfsImg], labels[extImg]
	for _, p := range []string{"/root/.ssh", "/root/.ssh/authorized_keys", "/etc/motd", "/etc/shadow", "/meta.js", "/var/www/html/index.html"} {
		if x[p] == "" {
			t.Errorf("XFS: %s not labelled", p)
		}
	}
	if len(x) < 8 {
		t.Errorf("XFS: only %d objects labelled: %v", len(x), x)
	}
	for p, l := range e {
		if x[p] != l {
			t.Errorf("%s: XFS label %q, ext4 %q", p, x[p], l)
		}
	}
	for p, l := range x {
		if _, ok := e[p]; !ok {
			t.Errorf("%s: labelled %q on XFS only", p, l)
		}
	}
}
