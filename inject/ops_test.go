package inject

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/memfs"
)

func ops(args ...string) []Operation {
	var out []Operation
	for i := 0; i+1 < len(args); i += 2 {
		out = append(out, Operation{Name: args[i], Arg: args[i+1]})
	}
	return out
}

// hasOps reports whether the backend serves every optional interface the
// file operations use.
func hasOps(fsys vfs.FS) bool {
	_, a := fsys.(vfs.Symlinker)
	_, b := fsys.(vfs.Remover)
	_, c := fsys.(vfs.Renamer)
	_, d := fsys.(vfs.Linker)
	_, e := fsys.(vfs.TimeSetter)
	return a && b && c && d && e
}

// Each operation sees what the earlier ones wrote: the copy copies the
// written and appended file, the move moves the copy, the delete removes
// the directory the mkdir made; the final tree is what the sequence
// describes.
func TestOpsApplyInCommandLineOrder(t *testing.T) {
	forEachOpsGuest(t, func(t *testing.T, g guest) {
		if !hasOps(g.fs) {
			t.Fatalf("%s lacks one of Symlinker, Remover, Renamer, Linker, TimeSetter", g.name)
		}
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
			"delete", "/opt/app",
			"truncate", "/opt/t",
		)}
		rep, err := Apply(g.fs, d, nil)
		must(t, err)
		if !rep.OK() || len(rep.Items) != len(d.Ops) {
			t.Fatalf("report %+v", rep)
		}
		if got := read(t, g.fs, "/srv/app/b"); got != "hello\nworld\n" {
			t.Errorf("/srv/app/b = %q", got)
		}
		wantAttr(t, g.fs, "/srv/app/b", 0o750, 1000, 1000)
		for _, l := range []string{"/opt/l1", "/opt/l2"} {
			if fi := stat(t, g.fs, l); fi.Target != "/srv/app/b" {
				t.Errorf("%s -> %q", l, fi.Target)
			}
		}
		if ok, _ := g.fs.HasFile("/opt/app"); ok {
			t.Error("/opt/app survived --delete")
		}
		if ok, _ := g.fs.HasFile("/srv/app/conf/a"); ok {
			t.Error("/srv/app/conf/a survived --move")
		}
		if fi := stat(t, g.fs, "/opt/t"); fi.Size != 0 || !fi.Mode.IsRegular() {
			t.Errorf("/opt/t %+v", fi)
		}
	})
}

// A failing operation in the middle refuses the whole injection before
// the first write: the classic items and the operations before it too.
func TestOpsFailureInTheMiddleWritesNothing(t *testing.T) {
	forEachOpsGuest(t, func(t *testing.T, g guest) {
		before := snapshot(t, g.fs)
		d := &Data{Meta: map[string]string{"a": "b"}, Ops: ops(
			"mkdir", "/opt/x",
			"write", "/opt/x/f:1",
			"chmod", "0600:/opt/x/missing",
			"write", "/opt/x/g:2",
		)}
		rep, err := Apply(g.fs, d, nil)
		wantErr(t, err, fs.ErrNotExist)
		if ie := findItemError(err, KindCustomize); ie == nil || !strings.Contains(ie.Error(), "--chmod") {
			t.Errorf("error %v does not name the --chmod item", err)
		}
		if after := snapshot(t, g.fs); after != before {
			t.Error("a refused injection changed the guest")
		}
		want := []Status{StatusSkipped, StatusSkipped, StatusSkipped, StatusFailed, StatusSkipped}
		for i, it := range rep.Items {
			if it.Status != want[i] {
				t.Errorf("item %d (%s %s) %s, want %s", i, it.Kind, it.Op, it.Status, want[i])
			}
		}
	})
}

// The plan names what each write does to each path, judged on the guest
// as the earlier operations leave it.
func TestOpsPlanNamesEachChange(t *testing.T) {
	m := memGuest(t)
	before := snapshot(t, m)
	rep, err := Plan(m, &Data{Ops: ops(
		"mkdir", "/etc",
		"mkdir", "/opt/a",
		"write", "/opt/a/f:x",
		"write", "/opt/a/f:yy",
		"append-line", "/etc/hostname:more",
		"chmod", "0644:/etc/hostname",
		"chmod", "0600:/etc/hostname",
		"delete", "/opt/a",
		"link", "/etc/hostname:/etc/hn",
		"delete", "/nothing/*",
	)}, nil)
	must(t, err)
	if snapshot(t, m) != before {
		t.Fatal("Plan wrote")
	}
	want := [][]string{
		{"unchanged /etc"},
		{"create /opt", "create /opt/a"},
		{"create /opt/a/f"},
		{"replace /opt/a/f"},
		{"append /etc/hostname"},
		{"unchanged /etc/hostname"},
		{"modify /etc/hostname"},
		{"delete /opt/a/f", "delete /opt/a"},
		{"create /etc/hn"},
		nil,
	}
	for i, it := range rep.Items {
		var got []string
		for _, c := range it.Changes {
			got = append(got, string(c.Change)+" "+c.Path)
		}
		if strings.Join(got, ",") != strings.Join(want[i], ",") {
			t.Errorf("%s: changes %q, want %q", it.Op, got, want[i])
		}
		if it.Status != StatusPlanned {
			t.Errorf("%s: %s", it.Op, it.Status)
		}
	}
}

// virt-customize's --append-line rules: a line end is added first when
// the file lacks a final one, and the file's own line end is used.
func TestAppendLineNewlineRules(t *testing.T) {
	for _, tc := range []struct{ name, before, want string }{
		{"missing", "", "L\n"},
		{"empty", "\x00", "L\n"},
		{"lf", "a\nb\n", "a\nb\nL\n"},
		{"lf-unterminated", "a\nb", "a\nb\nL\n"},
		{"crlf", "a\r\nb\r\n", "a\r\nb\r\nL\r\n"},
		{"crlf-unterminated", "a\r\nb", "a\r\nb\r\nL\r\n"},
		{"cr", "a\rb", "a\rb\rL\r"},
		{"no-line-end", "abc", "abc\nL\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := memGuest(t)
			switch tc.before {
			case "":
			case "\x00":
				must(t, m.ReplaceFile("/etc/f", nil))
			default:
				must(t, m.ReplaceFile("/etc/f", []byte(tc.before)))
			}
			_, err := Apply(m, &Data{Ops: ops("append-line", "/etc/f:L")}, nil)
			must(t, err)
			if got := read(t, m, "/etc/f"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// --delete expands globs in the guest as glob(3): a wildcard skips dot
// files; directories go recursively; a symlink is removed, not followed.
func TestDeleteGlobsAndRecursion(t *testing.T) {
	m := memGuest(t)
	must(t, m.MakePath("/var/log/app/sub"))
	for _, f := range []string{"/var/log/a.log", "/var/log/b.log", "/var/log/.h.log", "/var/log/keep.txt", "/var/log/app/sub/x.log", "/etc/target"} {
		must(t, m.ReplaceFile(f, []byte("x")))
	}
	must(t, m.Symlink("/etc", "/var/log/c.log"))
	_, err := Apply(m, &Data{Ops: ops("delete", "/var/log/*.log", "delete", "/var/log/ap?", "delete", "/var/nothing*")}, nil)
	must(t, err)
	ents, err := m.ReadDir("/var/log")
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if strings.Join(names, " ") != ".h.log keep.txt" {
		t.Errorf("/var/log holds %q", names)
	}
	if read(t, m, "/etc/target") != "x" {
		t.Error("the symlink's target was deleted")
	}
	_, err = Plan(m, &Data{Ops: ops("delete", "/")}, nil)
	wantErr(t, err, ErrInvalidOp)
}

// A backend without an optional interface refuses the operation that
// needs it before anything is written.
func TestOpsRefuseMissingInterface(t *testing.T) {
	m := memGuest(t)
	before := snapshot(t, m)
	bare := struct {
		vfs.FS
		vfs.Reader
	}{m, m}
	for _, o := range [][]string{
		{"link", "/etc/hostname:/etc/hn"},
		{"delete", "/etc/hostname"},
		{"move", "/etc/hostname:/etc/hn"},
		{"touch", "/etc/hostname"},
	} {
		_, err := Apply(bare, &Data{Meta: map[string]string{"a": "b"}, Ops: ops("write", "/etc/w:1", o[0], o[1])}, nil)
		wantErr(t, err, vfs.ErrUnsupported)
		if snapshot(t, m) != before {
			t.Fatalf("--%s refused but the guest changed", o[0])
		}
	}
}

// --chmod without a leading 0 is refused (virt-customize reads it as
// decimal); bad arguments are ErrInvalidOp and name the operation.
func TestOpsRefuseBadArguments(t *testing.T) {
	m := memGuest(t)
	before := snapshot(t, m)
	for _, o := range [][]string{
		{"chmod", "755:/etc/hostname"},
		{"chmod", "08:/etc/hostname"},
		{"write", "relative:x"},
		{"chown", "nobody-here:root:/etc/hostname"},
		{"hostname", "bad_name"},
		{"timezone", "../../etc/passwd"},
		{"timezone", "Mars/Olympus"},
		{"nosuch", "x"},
		{"copy", "/etc:/etc/sub"},
		{"truncate", "/etc/missing"},
		{"touch", "/etc"},
		{"append-line", "/etc:x"},
	} {
		_, err := Apply(m, &Data{Ops: ops(o[0], o[1])}, nil)
		if err == nil {
			t.Errorf("--%s %s accepted", o[0], o[1])
			continue
		}
		if !strings.Contains(err.Error(), "--"+o[0]) {
			t.Errorf("--%s %s: error %q does not name the operation", o[0], o[1], err)
		}
	}
	if snapshot(t, m) != before {
		t.Fatal("a refused operation changed the guest")
	}
	_, err := Apply(m, &Data{Ops: ops("chmod", "755:/etc/hostname")}, nil)
	wantErr(t, err, ErrInvalidOp)
	_, err = Apply(m, &Data{Ops: ops("chown", "nobody-here:root:/etc/hostname")}, nil)
	wantErr(t, err, vfs.ErrUnknownUser)
}

// --chown resolves names in the guest as the earlier operations leave it:
// a user an --append-line added to /etc/passwd is found.
func TestChownSeesAccountsTheOpsWrote(t *testing.T) {
	m := memGuest(t)
	_, err := Apply(m, &Data{Ops: ops(
		"append-line", "/etc/passwd:svc:x:2001:2002::/srv:/bin/false",
		"append-line", "/etc/group:svcg:x:2003:",
		"write", "/etc/svc.conf:x",
		"chown", "svc:svcg:/etc/svc.conf",
		"chown", ":root:/etc/hostname",
	)}, nil)
	must(t, err)
	wantAttr(t, m, "/etc/svc.conf", 0o644, 2001, 2003)
	wantAttr(t, m, "/etc/hostname", 0o644, 0, 0)
}

func setOSRelease(m *memfs.FS, t *testing.T, body string) {
	must(t, m.ReplaceFile("/etc/os-release", []byte(body)))
}

// --hostname writes where each distribution keeps it, as virt-customize.
func TestHostnamePerDistribution(t *testing.T) {
	for _, tc := range []struct {
		name, release string
		files         map[string]string
	}{
		{"debian", "ID=debian\nVERSION_ID=\"12\"\n", map[string]string{
			"/etc/hostname": "web1.example.com\n",
			"/etc/hosts":    "127.0.0.1 localhost\n127.0.1.1 web1.example.com web1 # was demo\n::1 ip6-localhost\n",
		}},
		{"fedora", "ID=fedora\nVERSION_ID=39\n", map[string]string{
			"/etc/hostname":     "web1.example.com\n",
			"/etc/machine-info": "OTHER=1\nPRETTY_HOSTNAME=web1.example.com\n",
		}},
		{"rhel6", "ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"6.10\"\n", map[string]string{
			"/etc/sysconfig/network": "NETWORKING=yes\nHOSTNAME=web1.example.com\n",
		}},
		{"rocky9", "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n", map[string]string{
			"/etc/hostname":     "web1.example.com\n",
			"/etc/machine-info": "PRETTY_HOSTNAME=web1.example.com\n",
		}},
		{"suse", "ID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\nVERSION_ID=\"15.5\"\n", map[string]string{
			"/etc/HOSTNAME": "web1.example.com",
		}},
		{"alpine", "ID=alpine\nVERSION_ID=3.19.0\n", map[string]string{
			"/etc/hostname": "web1.example.com\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := memGuest(t)
			setOSRelease(m, t, tc.release)
			must(t, m.ReplaceFile("/etc/hostname", []byte("demo.old\n")))
			must(t, m.ReplaceFile("/etc/hosts", []byte("127.0.0.1 localhost\n127.0.1.1 demo.old demo # was demo\n::1 ip6-localhost\n")))
			must(t, m.MakePath("/etc/sysconfig"))
			must(t, m.ReplaceFile("/etc/sysconfig/network", []byte("NETWORKING=yes\nHOSTNAME=demo.old\n")))
			must(t, m.ReplaceFile("/etc/machine-info", []byte("PRETTY_HOSTNAME=demo\nOTHER=1\n")))
			if tc.name == "rocky9" {
				must(t, m.Remove("/etc/machine-info"))
			}
			_, err := Apply(m, &Data{Ops: ops("hostname", "web1.example.com")}, nil)
			must(t, err)
			for p, want := range tc.files {
				if got := read(t, m, p); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
		})
	}
}

// --timezone links /etc/localtime to the zone, refuses a zone the guest
// lacks, and updates /etc/timezone where the guest has one.
func TestTimezone(t *testing.T) {
	m := memGuest(t)
	must(t, m.MakePath("/usr/share/zoneinfo/Europe"))
	must(t, m.ReplaceFile("/usr/share/zoneinfo/Europe/Paris", []byte("TZif")))
	must(t, m.ReplaceFile("/etc/localtime", []byte("old copy")))
	must(t, m.ReplaceFile("/etc/timezone", []byte("Etc/UTC\n")))
	_, err := Apply(m, &Data{Ops: ops("timezone", "Europe/Paris")}, nil)
	must(t, err)
	if fi := stat(t, m, "/etc/localtime"); fi.Target != "/usr/share/zoneinfo/Europe/Paris" {
		t.Errorf("/etc/localtime -> %q", fi.Target)
	}
	if got := read(t, m, "/etc/timezone"); got != "Europe/Paris\n" {
		t.Errorf("/etc/timezone = %q", got)
	}
	before := snapshot(t, m)
	_, err = Apply(m, &Data{Ops: ops("timezone", "Europe/Nowhere")}, nil)
	wantErr(t, err, ErrInvalidOp)
	if snapshot(t, m) != before {
		t.Error("a refused --timezone changed the guest")
	}
}

func tarball(t *testing.T, compress string, entries []*tar.Header, data map[string]string) string {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range entries {
		if d, ok := data[h.Name]; ok {
			h.Size = int64(len(d))
		}
		must(t, tw.WriteHeader(h))
		if d, ok := data[h.Name]; ok {
			_, err := tw.Write([]byte(d))
			must(t, err)
		}
	}
	must(t, tw.Close())
	var out bytes.Buffer
	switch compress {
	case "gz":
		zw := gzip.NewWriter(&out)
		_, err := zw.Write(raw.Bytes())
		must(t, err)
		must(t, zw.Close())
	case "zst":
		zw, err := zstd.NewWriter(&out)
		must(t, err)
		_, err = zw.Write(raw.Bytes())
		must(t, err)
		must(t, zw.Close())
	default:
		out = raw
	}
	p := filepath.Join(t.TempDir(), "a.tar."+compress)
	must(t, os.WriteFile(p, out.Bytes(), 0o644))
	return p
}

// --tar-in unpacks plain, gzip and zstd archives with modes, numeric
// owners, symlinks and hard links; a member leaving the directory is
// refused before anything is written.
func TestTarIn(t *testing.T) {
	for _, comp := range []string{"", "gz", "zst"} {
		t.Run("compress="+comp, func(t *testing.T) {
			m := memGuest(t)
			must(t, m.MakePath("/opt"))
			tb := tarball(t, comp, []*tar.Header{
				{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
				{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000},
				{Name: "app/run.sh", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0},
				{Name: "app/cur", Typeflag: tar.TypeSymlink, Linkname: "run.sh"},
				{Name: "app/run2.sh", Typeflag: tar.TypeLink, Linkname: "app/run.sh"},
			}, map[string]string{"app/run.sh": "#!/bin/sh\n"})
			_, err := Apply(m, &Data{Ops: ops("tar-in", tb+":/opt")}, nil)
			must(t, err)
			wantAttr(t, m, "/opt/app", 0o750, 1000, 1000)
			wantAttr(t, m, "/opt/app/run.sh", 0o755|fs.ModeSetuid, 0, 0)
			if read(t, m, "/opt/app/run2.sh") != "#!/bin/sh\n" || stat(t, m, "/opt/app/run.sh").Nlink != 2 {
				t.Error("hard link not made")
			}
			if stat(t, m, "/opt/app/cur").Target != "run.sh" {
				t.Error("symlink not made")
			}
		})
	}
	m := memGuest(t)
	before := snapshot(t, m)
	bad := tarball(t, "", []*tar.Header{
		{Name: "ok", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644},
	}, map[string]string{"ok": "1", "../escape": "2"})
	_, err := Apply(m, &Data{Ops: ops("tar-in", bad+":/etc")}, nil)
	wantErr(t, err, ErrInvalidOp)
	dev := tarball(t, "", []*tar.Header{{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666}}, nil)
	_, err = Apply(m, &Data{Ops: ops("tar-in", dev+":/etc")}, nil)
	wantErr(t, err, vfs.ErrUnsupported)
	xz := filepath.Join(t.TempDir(), "a.tar.xz")
	must(t, os.WriteFile(xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0}, 0o644))
	_, err = Apply(m, &Data{Ops: ops("tar-in", xz+":/etc")}, nil)
	wantErr(t, err, vfs.ErrUnsupported)
	if snapshot(t, m) != before {
		t.Error("a refused --tar-in changed the guest")
	}
}

// --copy-in brings a host tree (files, directories, symlinks, modes) into
// an existing guest directory, owners root:root; --upload keeps the
// host file's mode and goes into an existing directory under its name.
func TestCopyInAndUpload(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tree")
	must(t, os.MkdirAll(filepath.Join(src, "sub"), 0o750))
	must(t, os.WriteFile(filepath.Join(src, "sub/run"), []byte("run"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "cfg"), []byte("cfg"), 0o600))
	must(t, os.Symlink("sub/run", filepath.Join(src, "link")))
	m := memGuest(t)
	_, err := Apply(m, &Data{Ops: ops(
		"copy-in", src+":/etc",
		"upload", filepath.Join(src, "sub/run")+":/root",
		"upload", filepath.Join(src, "cfg")+":/etc/renamed",
	)}, nil)
	must(t, err)
	wantAttr(t, m, "/etc/tree/sub", 0o750, 0, 0)
	wantAttr(t, m, "/etc/tree/sub/run", 0o755, 0, 0)
	wantAttr(t, m, "/etc/tree/cfg", 0o600, 0, 0)
	if stat(t, m, "/etc/tree/link").Target != "sub/run" {
		t.Error("symlink not copied")
	}
	wantAttr(t, m, "/root/run", 0o755, 0, 0)
	if read(t, m, "/etc/renamed") != "cfg" {
		t.Error("upload to a new name")
	}
	_, err = Apply(m, &Data{Ops: ops("copy-in", src+":/nonexistent")}, nil)
	wantErr(t, err, fs.ErrNotExist)
}

// ParseCommands reads virt-customize's format: comments, blank lines, "\"
// continuations, arguments with spaces kept.
func TestParseCommands(t *testing.T) {
	in := "# a comment\n\nmkdir /opt/a\nwrite /opt/a/f:two words\nappend-line /etc/hosts:\\\n10.0.0.1 db\nhostname h1\n"
	got, err := ParseCommands(strings.NewReader(in), nil)
	must(t, err)
	want := ops("mkdir", "/opt/a", "write", "/opt/a/f:two words", "append-line", "/etc/hosts:10.0.0.1 db", "hostname", "h1")
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("op %d = %q, want %q", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"install vim\n", "mkdir\n"} {
		if _, err := ParseCommands(strings.NewReader(bad), nil); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// cyclic is a guest whose directory /a holds two entries, loop1 and
// loop2, that are /a itself (same inode), as a corrupt image can claim.
type cyclic struct{ *memfs.FS }

func (c cyclic) canon(p string) string {
	for _, l := range []string{"/a/loop1", "/a/loop2"} {
		for strings.HasPrefix(p, l) {
			p = "/a" + p[len(l):]
		}
	}
	return p
}

func (c cyclic) Lstat(p string) (vfs.FileInfo, error) {
	fi, err := c.FS.Lstat(c.canon(p))
	fi.Name = filepath.Base(p)
	return fi, err
}

func (c cyclic) ReadDir(p string) ([]vfs.FileInfo, error) {
	l, err := c.FS.ReadDir(c.canon(p))
	if err == nil && c.canon(p) == "/a" {
		for _, n := range []string{"loop1", "loop2"} {
			fi, _ := c.FS.Lstat("/a")
			fi.Name = n
			l = append(l, fi)
		}
	}
	return l, err
}

func (c cyclic) ReadFile(p string) ([]byte, error) { return c.FS.ReadFile(c.canon(p)) }

// A directory cycle (two entries leading back to their own directory)
// is refused as corrupt by every recursive operation, at once: walked
// blindly it would be 2^depth paths.
func TestRecursiveOpsRefuseDirectoryCycles(t *testing.T) {
	m := memGuest(t)
	must(t, m.MakePath("/a"))
	must(t, m.ReplaceFile("/a/f", []byte("x")))
	g := cyclic{m}
	before := snapshot(t, m)
	for _, o := range [][]string{{"delete", "/a"}, {"truncate-recursive", "/a"}, {"copy", "/a:/b"}} {
		_, err := Apply(g, &Data{Ops: ops(o[0], o[1])}, nil)
		wantErr(t, err, vfs.ErrCorrupt)
	}
	if snapshot(t, m) != before {
		t.Error("a refused operation changed the guest")
	}
}

// Operations registered as Last (passwords, relabelling) run after the
// others whatever their place on the command line.
func TestLastOperationsRunAtTheEnd(t *testing.T) {
	register(OpSpec{Name: "test-last", Metavar: "LINE", Last: true}, func(c *opCtx, arg string) error {
		_, err := c.writeFile("/etc/order", []byte(arg+"\n"), true)
		return err
	})
	t.Cleanup(func() { delete(opTable, "test-last") })
	m := memGuest(t)
	rep, err := Apply(m, &Data{Ops: ops("test-last", "last1", "append-line", "/etc/order:first", "test-last", "last2", "append-line", "/etc/order:second")}, nil)
	must(t, err)
	if got := read(t, m, "/etc/order"); got != "first\nsecond\nlast1\nlast2\n" {
		t.Errorf("/etc/order = %q", got)
	}
	if rep.Items[2].Op != "--test-last last1" {
		t.Errorf("items out of run order: %q", rep.Items[2].Op)
	}
}

// hugeClaim is a guest whose /etc/os-release and /etc/hosts claim 1 GiB
// (a corrupt inode's i_size); reading them is a test failure.
type hugeClaim struct {
	*memfs.FS
	t *testing.T
}

func (h hugeClaim) big(p string) bool { return p == "/etc/os-release" || p == "/etc/hosts" }

func (h hugeClaim) Lstat(p string) (vfs.FileInfo, error) {
	fi, err := h.FS.Lstat(p)
	if h.big(p) {
		fi.Size = 1<<30 - 1
	}
	return fi, err
}

func (h hugeClaim) ReadDir(p string) ([]vfs.FileInfo, error) {
	l, err := h.FS.ReadDir(p)
	for i := range l {
		if h.big(p + "/" + l[i].Name) {
			l[i].Size = 1<<30 - 1
		}
	}
	return l, err
}

func (h hugeClaim) ReadFile(p string) ([]byte, error) {
	if h.big(p) {
		h.t.Errorf("%s read despite its size", p)
	}
	return h.FS.ReadFile(p)
}

// The guest files operations parse (os-release for --hostname, the file
// --append-line judges) are bounded like every other guest file read:
// the size is checked before anything is read (audit R10's class).
func TestOpsBoundConfigReads(t *testing.T) {
	m := memGuest(t)
	must(t, m.ReplaceFile("/etc/hosts", []byte("127.0.0.1 localhost\n")))
	g := hugeClaim{m, t}
	for _, o := range [][]string{{"hostname", "web1"}, {"append-line", "/etc/hosts:x"}} {
		_, err := Apply(g, &Data{Ops: ops(o[0], o[1])}, nil)
		wantErr(t, err, ErrTooLarge)
	}
}

// A write through a dangling symlink lands where the backend puts it:
// created at the target when the target's directory exists, refused
// before any write when it does not (audit R6's class, for operations).
func TestOpsWriteThroughDanglingSymlink(t *testing.T) {
	forEachOpsGuest(t, func(t *testing.T, g guest) {
		sl := g.fs.(vfs.Symlinker)
		must(t, sl.Symlink("/nonexistent/dir/file", "/etc/x"))
		must(t, sl.Symlink("/etc/y-target", "/etc/y"))
		before := snapshot(t, g.fs)
		for _, o := range [][]string{{"write", "/etc/x:data"}, {"append-line", "/etc/x:data"}, {"touch", "/etc/x"}} {
			_, err := Apply(g.fs, &Data{Meta: map[string]string{"a": "b"}, Ops: ops(o[0], o[1])}, nil)
			if o[0] == "touch" { // touch works on regular files only, as guestfs' touch
				wantErr(t, err, vfs.ErrNotRegular)
			} else {
				wantErr(t, err, fs.ErrNotExist)
			}
			if snapshot(t, g.fs) != before {
				t.Fatalf("--%s %s refused but the guest changed", o[0], o[1])
			}
		}
		_, err := Apply(g.fs, &Data{Ops: ops("write", "/etc/y:data", "append-line", "/etc/y:more")}, nil)
		must(t, err)
		if got := read(t, g.fs, "/etc/y-target"); got != "data\nmore\n" {
			t.Errorf("/etc/y-target = %q", got)
		}
	})
}

// A file the plan itself hard-links is multi-linked for the backends
// that refuse to write such a file (vfs/local): a later write to it is
// refused in the plan, before the first write, not half-way through.
func TestOpsPlanSeesHardLinksItMakes(t *testing.T) {
	forEachOpsGuest(t, func(t *testing.T, g guest) {
		tb := tarball(t, "", []*tar.Header{
			{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "g", Typeflag: tar.TypeLink, Linkname: "f"},
		}, map[string]string{"f": "x"})
		before := snapshot(t, g.fs)
		_, err := Apply(g.fs, &Data{Ops: ops("tar-in", tb+":/root", "chmod", "0600:/root/f")}, nil)
		lr, refuses := g.fs.(multiLinkRefuser)
		if refuses && lr.RefusesMultiLinked() {
			wantErr(t, err, vfs.ErrUnsupported)
			if snapshot(t, g.fs) != before {
				t.Error("refused, but the guest changed")
			}
			return
		}
		must(t, err)
		wantAttr(t, g.fs, "/root/g", 0o600, 0, 0)
	})
}

// Random sequences of operations over a small set of paths (files,
// directories, symlinks, dangling ones, globs) on every backend: what
// the plan accepts, the write carries out; what it refuses, leaves the
// guest unchanged. A disagreement is a half-written guest-root directory.
func TestOpsPlanAgreesWithBackends(t *testing.T) {
	paths := []string{"/d", "/d/f", "/d/e", "/d/e/f", "/l", "/l/f", "/dl", "/etc/hostname", "/root", "/x"}
	rnd := uint64(1)
	next := func(n int) int {
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return int(rnd % uint64(n))
	}
	pick := func() string { return paths[next(len(paths))] }
	gen := func() Operation {
		switch next(12) {
		case 0:
			return Operation{"mkdir", pick()}
		case 1:
			return Operation{"write", pick() + ":w"}
		case 2:
			return Operation{"append-line", pick() + ":a"}
		case 3:
			return Operation{"chmod", "0700:" + pick()}
		case 4:
			return Operation{"link", pick() + ":" + pick()}
		case 5:
			return Operation{"delete", pick()}
		case 6:
			return Operation{"move", pick() + ":" + pick()}
		case 7:
			return Operation{"copy", pick() + ":" + pick()}
		case 8:
			return Operation{"touch", pick()}
		case 9:
			return Operation{"truncate", pick()}
		case 10:
			return Operation{"truncate-recursive", pick()}
		}
		return Operation{"delete", "/d/*"}
	}
	iterations, planned := 120, 0
	if testing.Short() {
		iterations = 25
	}
	defer func() {
		if planned < iterations/2 {
			t.Errorf("only %d of %d sequences planned: the test exercises too little", planned, 2*iterations)
		}
	}()
	for i := 0; i < iterations; i++ {
		seq := make([]Operation, 1+next(3))
		for j := range seq {
			seq[j] = gen()
		}
		for _, g := range opsGuests(t) {
			sl := g.fs.(vfs.Symlinker)
			must(t, g.fs.MakePath("/d/e"))
			must(t, g.fs.ReplaceFile("/d/f", []byte("f")))
			must(t, g.fs.ReplaceFile("/d/e/f", []byte("ef")))
			must(t, sl.Symlink("/d", "/l"))
			must(t, sl.Symlink("/nowhere/x", "/dl"))
			before := snapshot(t, g.fs)
			rep, planErr := Plan(g.fs, &Data{Ops: seq}, nil)
			if planErr != nil { // the prefix before the refused operation must apply too
				for k, it := range rep.Items {
					if it.Status == StatusFailed && k > 0 {
						seq = seq[:k]
						_, planErr = Plan(g.fs, &Data{Ops: seq}, nil)
						break
					}
				}
			}
			if planErr == nil {
				planned++
			}
			_, err := Apply(g.fs, &Data{Ops: seq}, nil)
			switch {
			case planErr == nil && err != nil:
				t.Errorf("%s: %v planned but failed writing: %v", g.name, seq, err)
			case planErr != nil && err == nil:
				t.Errorf("%s: %v refused by the plan (%v) but applied", g.name, seq, planErr)
			case err != nil && snapshot(t, g.fs) != before:
				t.Errorf("%s: %v refused (%v) but the guest changed", g.name, seq, err)
			}
		}
	}
}

func filepathJoinTar(t *testing.T) string {
	return tarball(t, "gz", []*tar.Header{
		{Name: "tar/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "tar/run", Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "tar/run2", Typeflag: tar.TypeLink, Linkname: "tar/run"},
		{Name: "tar/cur", Typeflag: tar.TypeSymlink, Linkname: "run"},
	}, map[string]string{"tar/run": "#!/bin/sh\n"})
}

// File.Owner gives an injected file an owner looked up in the guest; an
// unknown name fails the item before any write.
func TestFileOwner(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		mode := fs.FileMode(0o750)
		_, err := Apply(g.fs, &Data{Files: []File{{Path: "/usr/local/bin/run", Data: []byte("x"), Mode: &mode, Owner: "debian:root"}}}, nil)
		must(t, err)
		wantAttr(t, g.fs, "/usr/local/bin/run", 0o750, 1000, 0)
		before := snapshot(t, g.fs)
		_, err = Apply(g.fs, &Data{Meta: map[string]string{"a": "b"}, Files: []File{{Path: "/etc/x", Data: []byte("x"), Owner: "nobody-here:root"}}}, nil)
		wantErr(t, err, ErrInvalidFile, vfs.ErrUnknownUser)
		if snapshot(t, g.fs) != before {
			t.Error("refused, but the guest changed")
		}
	})
}
