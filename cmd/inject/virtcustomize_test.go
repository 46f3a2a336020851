package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
)

// virt-customize (libguestfs-tools) is the oracle of the ordered
// operations: one appliance launch runs the whole list on one copy of a
// guest, inject runs it on another, and the two guest trees must agree
// file by file (type, permissions, owner, content, symlink target, extended attributes). The
// differences that are deliberate are listed in vcDeliberate and in the
// README.

// vcGuest builds the guest both tools customise: the demo guest with what
// libguestfs' inspection needs to recognise a Debian root, a zone file,
// logs to delete and truncate, a CRLF file, and host files to upload.
func vcGuest(t *testing.T) (root, host string) {
	root = guestDir(t)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/share/zoneinfo/Europe", "var/log/app", "var/lib", "tmp", "srv/data/sub"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	files := map[string]string{
		"etc/debian_version":               "12.5\n",
		"etc/fstab":                        "/dev/sda / ext4 defaults 0 1\n",
		"etc/hosts":                        "127.0.0.1\tlocalhost\n127.0.1.1\tdemo-guest\n",
		"etc/crlf.conf":                    "a=1\r\nb=2",
		"etc/noeol":                        "x",
		"var/log/a.log":                    "aaa\n",
		"var/log/b.log":                    "bbb\n",
		"var/log/.hidden.log":              "h\n",
		"var/log/app/app.log":              "app\n",
		"var/log/app/keep.txt":             "keep\n",
		"srv/data/one":                     "1\n",
		"srv/data/sub/two":                 "2\n",
		"usr/share/zoneinfo/Europe/Paris":  "TZif-paris\n",
		"usr/share/zoneinfo/Europe/London": "TZif-london\n",
	}
	for p, c := range files {
		must(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	sh, err := os.ReadFile("/bin/true")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(root, "bin/sh"), sh, 0o755))
	must(t, os.WriteFile(filepath.Join(root, "sbin/init"), sh, 0o755))
	must(t, os.Symlink("one", filepath.Join(root, "srv/data/link")))
	must(t, os.Chmod(filepath.Join(root, "srv/data/sub"), 0o750))
	host = t.TempDir()
	must(t, os.WriteFile(filepath.Join(host, "motd"), []byte("welcome\n"), 0o640))
	must(t, os.MkdirAll(filepath.Join(host, "tree/conf.d"), 0o750))
	must(t, os.WriteFile(filepath.Join(host, "tree/conf.d/10.conf"), []byte("x=1\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(host, "tree/run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Symlink("run.sh", filepath.Join(host, "tree/current")))
	return root, host
}

// vcOps is every ordered operation virt-customize has (not --chown and
// --tar-in, which are this project's own).
func vcOps(host string) []string {
	return []string{
		"--mkdir", "/opt/app/etc",
		"--write", "/opt/app/etc/app.conf:port=80",
		"--append-line", "/opt/app/etc/app.conf:host=db",
		"--append-line", "/etc/crlf.conf:c=3",
		"--append-line", "/etc/noeol:y",
		"--append-line", "/etc/new-file:first",
		"--chmod", "0640:/opt/app/etc/app.conf",
		"--link", "/opt/app/etc/app.conf:/etc/app.conf:/opt/app.conf",
		"--copy", "/srv/data:/opt/app",
		"--move", "/opt/app/data/one:/opt/app/data/uno",
		"--delete", "/var/log/*.log",
		"--delete", "/srv/data/sub",
		"--touch", "/etc/motd-touched",
		"--touch", "/etc/fstab",
		"--truncate", "/etc/noeol",
		"--truncate-recursive", "/var/log/app",
		"--upload", filepath.Join(host, "motd") + ":/etc",
		"--upload", filepath.Join(host, "motd") + ":/etc/motd.copy",
		"--copy-in", filepath.Join(host, "tree") + ":/opt",
		"--hostname", "web1.example.com",
		"--timezone", "Europe/Paris",
	}
}

// vcDeliberate lists paths whose difference is a documented choice.
var vcDeliberate = map[string]string{}

type vcEntry struct {
	typ      fs.FileMode
	perm     fs.FileMode
	uid, gid uint32
	digest   string
	target   string
	xattrs   string // "name=digest;" for each extended attribute, sorted
}

func (e vcEntry) String() string {
	return fmt.Sprintf("%v %04o %d:%d %s%s [%s]", e.typ, vfs.UnixPerm(e.perm), e.uid, e.gid, e.digest, e.target, e.xattrs)
}

// vcTree walks a guest (through vfs.Reader) into path -> entry.
func vcTree(t *testing.T, fsys vfs.FS) map[string]vcEntry {
	t.Helper()
	r := fsys.(vfs.Reader)
	out := map[string]vcEntry{}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := r.ReadDir(dir)
		must(t, err)
		for _, e := range ents {
			p := strings.TrimSuffix(dir, "/") + "/" + e.Name
			if p == "/lost+found" {
				continue
			}
			v := vcEntry{typ: e.Mode.Type(), perm: e.Mode & vfs.PermMask, uid: e.UID, gid: e.GID, target: e.Target}
			if e.Mode.IsRegular() {
				b, err := fsys.ReadFile(p)
				must(t, err)
				v.digest = fmt.Sprintf("%x", sha256.Sum256(b))[:12]
			}
			var names []string
			if e.Mode&fs.ModeSymlink == 0 { // ListXattr follows a final symlink
				var err error
				names, err = fsys.(vfs.XattrReader).ListXattr(p)
				must(t, err)
			}
			for _, n := range names {
				b, err := fsys.(vfs.XattrReader).GetXattr(p, n)
				must(t, err)
				v.xattrs += fmt.Sprintf("%s=%x;", n, sha256.Sum256(b))
			}
			out[p] = v
			if e.IsDir() {
				walk(p)
			}
		}
	}
	walk("/")
	return out
}

func TestVirtCustomizeComparison(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the libguestfs appliance (about a minute and a half without KVM)")
	}
	vc := testtool.Need(t, "virt-customize")[0]
	root, host := vcGuest(t)
	img := filepath.Join(t.TempDir(), "vc.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", root, img, "32M")
	dir := t.TempDir()
	must(t, exec.Command("cp", "-a", root+"/.", dir).Run())
	img2 := filepath.Join(t.TempDir(), "inject.img")
	must(t, exec.Command("cp", img, img2).Run())
	ops := vcOps(host)

	cmd := exec.Command(vc, append([]string{"--format", "raw", "-a", img, "--no-network"}, ops...)...)
	cmd.Env = append(os.Environ(), "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	var vcOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &vcOut, &vcOut
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("virt-customize: %v\n%s", err, vcOut.String())
	}
	vcTime := time.Since(start)

	start = time.Now()
	_, errOut, code := cli(append(ops, dir)...)
	injTime := time.Since(start)
	wantCode(t, code, exitOK, errOut)
	t.Logf("%d operations: virt-customize %v, inject %v (guest-root directory)", len(ops)/2, vcTime.Round(time.Millisecond), injTime.Round(time.Millisecond))

	g, err := openGuest(img, openOptions{})
	must(t, err)
	defer g.release()
	want := vcTree(t, g.fs)
	dg, err := openGuest(dir, openOptions{})
	must(t, err)
	defer dg.release()
	got := vcTree(t, dg.fs)
	for _, d := range compareTrees(t, want, got) {
		t.Error(d)
	}
	compareImage(t, img2, ops, want)
	// The trees hold what the operations made, and the comparison sees a
	// difference of any one field.
	for p, typ := range map[string]fs.FileMode{"/opt/app/etc/app.conf": 0, "/etc/app.conf": fs.ModeSymlink, "/opt/app/data/uno": 0, "/opt/tree/current": fs.ModeSymlink, "/etc/motd": 0} {
		if e, ok := got[p]; !ok || e.typ != typ {
			t.Errorf("%s missing from the customised guest (%v)", p, e)
		}
	}
	for _, p := range []string{"/var/log/a.log", "/srv/data/sub", "/opt/app/data/one"} {
		if _, ok := want[p]; ok {
			t.Errorf("%s still in virt-customize's guest", p)
		}
	}
	for _, mutate := range []func(*vcEntry){
		func(e *vcEntry) { e.perm ^= 0o1 },
		func(e *vcEntry) { e.uid++ },
		func(e *vcEntry) { e.digest += "x" },
		func(e *vcEntry) { e.target += "x" },
		func(e *vcEntry) { e.xattrs += "user.x=1;" },
	} {
		bad := map[string]vcEntry{}
		for p, e := range got {
			bad[p] = e
		}
		e := bad["/etc/app.conf"]
		mutate(&e)
		bad["/etc/app.conf"] = e
		if len(compareTrees(t, want, bad)) != 1 {
			t.Error("compareTrees misses a one-field difference")
		}
	}
}

// compareImage runs the operations on an image copy: where the ext
// backend serves every interface they use, the result must match
// virt-customize's; where it lacks one, inject must refuse before the
// first write and leave the image byte for byte unchanged.
func compareImage(t *testing.T, img string, ops []string, want map[string]vcEntry) {
	t.Helper()
	g, err := openGuest(img, openOptions{})
	must(t, err)
	var missing []string
	for name, ok := range map[string]bool{
		"Symlinker": is[vfs.Symlinker](g.fs), "Remover": is[vfs.Remover](g.fs), "Renamer": is[vfs.Renamer](g.fs),
		"TimeSetter": is[vfs.TimeSetter](g.fs),
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	g.release()
	sum := fileSum(t, img)
	start := time.Now()
	_, errOut, code := cli(append(ops, img)...)
	took := time.Since(start)
	if len(missing) > 0 {
		wantCode(t, code, exitFail, errOut)
		if !strings.Contains(errOut, "unsupported feature") || fileSum(t, img) != sum {
			t.Errorf("the ext backend lacks %v: want a refusal and the image unchanged; stderr:\n%s", missing, errOut)
		}
		t.Logf("image: the ext backend lacks %v; refused before any write, image unchanged", missing)
		return
	}
	wantCode(t, code, exitOK, errOut)
	t.Logf("inject on the image copy: %v", took.Round(time.Millisecond))
	e2fsckClean(t, img)
	g, err = openGuest(img, openOptions{})
	must(t, err)
	defer g.release()
	for _, d := range compareTrees(t, want, vcTree(t, g.fs)) {
		t.Error("image: " + d)
	}
}

func is[I any](v any) bool { _, ok := v.(I); return ok }

// compareTrees returns every path where inject's guest (got) differs
// from virt-customize's (want), except the deliberate differences.
func compareTrees(t *testing.T, want, got map[string]vcEntry) []string {
	t.Helper()
	var diffs []string
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		if why, ok := vcDeliberate[p]; ok {
			t.Logf("%s: deliberate difference: %s", p, why)
			continue
		}
		w, inW := want[p]
		g, inG := got[p]
		switch {
		case !inG:
			diffs = append(diffs, fmt.Sprintf("%s: virt-customize has %v, inject has nothing", p, w))
		case !inW:
			diffs = append(diffs, fmt.Sprintf("%s: inject has %v, virt-customize has nothing", p, g))
		case w != g:
			diffs = append(diffs, fmt.Sprintf("%s: virt-customize %v, inject %v", p, w, g))
		}
	}
	return diffs
}
