package inject

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/memfs"
)

// debianPolicy copies Debian's selinux-policy-default file_contexts into
// the guest, under SELINUXTYPE=default.
func debianPolicy(t *testing.T, g vfs.FS) {
	t.Helper()
	const src = "/etc/selinux/default/contexts/files"
	must(t, g.MakePath("/etc/selinux/default/contexts/files"))
	must(t, g.ReplaceFile("/etc/selinux/config", []byte("SELINUX=enforcing\nSELINUXTYPE=default\n")))
	for _, n := range []string{"file_contexts", "file_contexts.homedirs", "file_contexts.subs_dist"} {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatalf("Debian's selinux-policy-default must be installed: %v", err)
		}
		must(t, g.ReplaceFile("/etc/selinux/default/contexts/files/"+n, b))
	}
}

func label(t *testing.T, g vfs.FS, p string) string {
	t.Helper()
	v, err := g.(vfs.XattrReader).GetXattr(p, SELinuxXattr)
	if errors.Is(err, vfs.ErrNoXattr) {
		return ""
	}
	must(t, err)
	if len(v) == 0 || v[len(v)-1] != 0 {
		t.Errorf("%s: label %q is not NUL-terminated", p, v)
	}
	return strings.TrimSuffix(string(v), "\x00")
}

// TestSELinuxRelabelMatchesMatchpathcon: every object the run creates or
// changes (keys, password, files, ordered operations, firstboot) carries
// the context matchpathcon gives on the same policy; what was not
// touched, and what a later operation deleted, carries none.
func TestSELinuxRelabelMatchesMatchpathcon(t *testing.T) {
	g := memGuest(t)
	debianPolicy(t, g)
	must(t, g.MakePath("/etc/systemd/system"))
	rep, err := Apply(g, &Data{
		Keys:          []string{demoKey},
		UserKeys:      []UserKeys{{User: "debian", Keys: []string{demoKey}}},
		AdminPassword: &Password{Plain: "pw"},
		Files:         []File{{Path: "/usr/local/bin/tool", Data: []byte("x")}},
		Ops: ops("mkdir", "/var/www/html", "write", "/var/www/html/index.html:hi", "mkdir", "/tmp", "write", "/tmp/gone:x", "delete", "/tmp/gone",
			"mkdir", "/usr/bin", "link", "/usr/local/bin/tool:/usr/bin/tool2", "firstboot-command", "true"),
		SELinuxRelabel: true,
	}, nil)
	must(t, err)
	last := rep.Items[len(rep.Items)-1]
	if last.Kind != KindRelabel || !strings.Contains(last.Summary, "labelled from the guest's policy") {
		t.Fatalf("relabel item %+v", last)
	}
	want := map[string]string{}
	var args []string
	for _, c := range last.Changes {
		args = append(args, c.Path)
	}
	if len(args) < 15 {
		t.Fatalf("only %d objects labelled: %v", len(args), args)
	}
	for _, p := range args {
		typ := "file"
		switch fi := stat(t, g, p); {
		case fi.IsDir():
			typ = "dir"
		case fi.Mode.Type() != 0:
			typ = "lnk_file"
		}
		out, err := exec.Command("matchpathcon", "-m", typ, "-f", "/etc/selinux/default/contexts/files/file_contexts", p).Output()
		if err != nil {
			t.Fatalf("matchpathcon (selinux-utils) must be installed: %v", err)
		}
		_, w, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
		want[p] = w
	}
	for _, p := range []string{"/root/.ssh/authorized_keys", "/home/debian/.ssh", "/etc/shadow", "/var/www/html/index.html", "/usr/bin/tool2", FirstbootRunner} {
		if _, ok := want[p]; !ok {
			t.Errorf("%s not labelled", p)
		}
	}
	for p, w := range want {
		if got := label(t, g, p); got != w {
			t.Errorf("%s: %q, matchpathcon %q", p, got, w)
		}
	}
	if has, _ := g.HasFile("/etc/rc.local"); has {
		t.Error("the keys item's rc.local restorecon fallback was added although the files are labelled")
	}
	if _, ok := want["/tmp/gone"]; ok {
		t.Error("a path deleted later is labelled")
	}
	for _, p := range []string{"/etc/passwd", "/etc/hostname"} {
		if l := label(t, g, p); l != "" {
			t.Errorf("untouched %s labelled %q", p, l)
		}
	}
}

// TestSELinuxRelabelFallbacks: no /etc/selinux → nothing; a policy that
// cannot be read → /.autorelabel, and the report says why.
func TestSELinuxRelabelFallbacks(t *testing.T) {
	g := memGuest(t)
	rep, err := Apply(g, &Data{Meta: map[string]string{"a": "b"}, SELinuxRelabel: true}, nil)
	must(t, err)
	if s := rep.Items[len(rep.Items)-1].Summary; !strings.Contains(s, "no /etc/selinux") || label(t, g, "/meta.js") != "" {
		t.Errorf("no SELinux: %q", s)
	}
	for name, setup := range map[string]func(g *memfs.FS){
		"no config": func(g *memfs.FS) { must(t, g.MakePath("/etc/selinux")) },
		"no contexts": func(g *memfs.FS) {
			debianPolicy(t, g)
			must(t, g.Remove("/etc/selinux/default/contexts/files/file_contexts"))
		},
		"bad line": func(g *memfs.FS) {
			debianPolicy(t, g)
			must(t, g.AppendFile("/etc/selinux/default/contexts/files/file_contexts", []byte("/x -q a:b:c\n")))
		},
		"bad regex": func(g *memfs.FS) {
			debianPolicy(t, g)
			must(t, g.AppendFile("/etc/selinux/default/contexts/files/file_contexts", []byte("/meta(.* a:b:c:s0\n")))
		},
		"bad type name": func(g *memfs.FS) {
			debianPolicy(t, g)
			must(t, g.ReplaceFile("/etc/selinux/config", []byte("SELINUXTYPE=../x\n")))
		},
	} {
		t.Run(name, func(t *testing.T) {
			g := memGuest(t)
			setup(g)
			rep, err := Apply(g, &Data{Meta: map[string]string{"a": "b"}, SELinuxRelabel: true}, nil)
			must(t, err)
			it := rep.Items[len(rep.Items)-1]
			if !strings.Contains(it.Summary, "cannot be read") || it.Path != AutorelabelPath {
				t.Errorf("summary %q path %q", it.Summary, it.Path)
			}
			if has, _ := g.HasFile(AutorelabelPath); !has {
				t.Error("no /.autorelabel")
			}
		})
	}
}
