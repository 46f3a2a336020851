package selabel

import (
	"bufio"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// policyDir is Debian's selinux-policy-default, the real policy the
// tests label against (CI installs it).
const policyDir = "/etc/selinux/default/contexts/files"

func loadDebian(t *testing.T) *Handle {
	t.Helper()
	var files, subs []Source
	for _, n := range []string{"file_contexts", "file_contexts.homedirs", "file_contexts.local"} {
		b, err := os.ReadFile(filepath.Join(policyDir, n))
		if n == "file_contexts" && err != nil {
			t.Fatalf("Debian's selinux-policy-default must be installed: %v", err)
		}
		if err == nil {
			files = append(files, Source{n, b})
		}
	}
	for _, n := range []string{"file_contexts.subs", "file_contexts.subs_dist"} {
		if b, err := os.ReadFile(filepath.Join(policyDir, n)); err == nil {
			subs = append(subs, Source{n, b})
		}
	}
	h, err := New(files, subs)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// samplePaths are paths to compare: the host's own tree (a bounded walk),
// paths each exact spec names, and paths through every alias.
func samplePaths(t *testing.T) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	for _, root := range []string{"/etc", "/usr/bin", "/usr/sbin", "/usr/lib/systemd", "/usr/share/doc/e2fsprogs", "/var", "/bin", "/lib/systemd", "/sbin", "/opt", "/root", "/home", "/dev", "/run", "/tmp", "/usr/local", "/boot"} {
		n := 0
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			n++
			if n > 400 {
				return filepath.SkipAll
			}
			out[p] = d.Type()
			return nil
		})
	}
	for _, p := range []string{"/root/.ssh", "/root/.ssh/authorized_keys", "/home/debian/.ssh/authorized_keys", "/home/debian/.bash_history",
		"/usr/lib/virt-sysprep/firstboot.sh", "/usr/lib/virt-sysprep/scripts/0001-x", "/usr/lib/systemd/system/guestfs-firstboot.service",
		"/etc/systemd/system/multi-user.target.wants/guestfs-firstboot.service", "/etc/rc2.d/S99guestfs-firstboot", "/etc/init.d/guestfs-firstboot",
		"/var/run/x.pid", "/lib64/ld-linux-x86-64.so.2", "/usr/local/lib64/libx.so", "/etc/shadow", "/etc/netplan/90-guestinject.yaml",
		"/etc/NetworkManager/system-connections/x.nmconnection", "/meta.js", "/etc/hostname", "/etc/machine-id", "/var/lib/dbus/machine-id",
		"/etc/ssh/ssh_host_rsa_key", "/var/log/wtmp", "/a/b/c", "/", "/home", "/home/x", "/etc/rc.d/rc3.d/S99x", "/var/lib/cloud/seed/nocloud/user-data"} {
		out[p] = 0
	}
	out["/root/.ssh"] = fs.ModeDir
	out["/home/x"] = fs.ModeDir
	out["/"] = fs.ModeDir
	f, err := os.Open(filepath.Join(policyDir, "file_contexts"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 2 || strings.HasPrefix(fl[0], "#") {
			continue
		}
		if meta, _ := analyse(fl[0]); !meta {
			typ := fs.FileMode(0)
			if len(fl) == 3 {
				typ = fileTypes[fl[1]]
			}
			out[unescape(fl[0])] = typ
			out[unescape(fl[0])+"/child"] = 0
		}
	}
	return out
}

var matchpathconType = map[fs.FileMode]string{
	0: "file", fs.ModeDir: "dir", fs.ModeSymlink: "lnk_file", fs.ModeDevice | fs.ModeCharDevice: "chr_file",
	fs.ModeDevice: "blk_file", fs.ModeSocket: "sock_file", fs.ModeNamedPipe: "pipe",
}

// TestMatchesMatchpathcon: for every sample path and its type, the
// context (or <<none>>) is the one libselinux's matchpathcon gives.
func TestMatchesMatchpathcon(t *testing.T) {
	if _, err := exec.LookPath("matchpathcon"); err != nil {
		t.Fatalf("matchpathcon (selinux-utils) must be installed: %v", err)
	}
	h := loadDebian(t)
	byType := map[fs.FileMode][]string{}
	for p, typ := range samplePaths(t) {
		if _, ok := matchpathconType[typ]; !ok {
			continue
		}
		byType[typ] = append(byType[typ], p)
	}
	checked, mismatches := 0, 0
	for typ, paths := range byType {
		sort.Strings(paths)
		for len(paths) > 0 {
			chunk := paths[:min(len(paths), 500)]
			paths = paths[len(chunk):]
			args := append([]string{"-m", matchpathconType[typ], "-f", filepath.Join(policyDir, "file_contexts")}, chunk...)
			out, err := exec.Command("matchpathcon", args...).Output()
			if err != nil {
				t.Fatalf("matchpathcon: %v", err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if len(lines) != len(chunk) {
				t.Fatalf("matchpathcon printed %d lines for %d paths", len(lines), len(chunk))
			}
			for i, line := range lines {
				p, want, _ := strings.Cut(line, "\t")
				if p != chunk[i] {
					t.Fatalf("matchpathcon line %q for %q", line, chunk[i])
				}
				got, ok, err := h.Lookup(chunk[i], typ)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					got = "<<none>>"
				}
				checked++
				if got != want {
					mismatches++
					if mismatches < 30 {
						t.Errorf("%s (%s): %s, matchpathcon %s", chunk[i], matchpathconType[typ], got, want)
					}
				}
			}
		}
	}
	t.Logf("%d paths compared, %d differ", checked, mismatches)
	if checked < 1000 {
		t.Errorf("only %d paths compared", checked)
	}
}

func TestPolicyRefusals(t *testing.T) {
	for name, fc := range map[string]string{
		"fields":  "/a b c d\n",
		"type":    "/a -x u:r:t:s0\n",
		"context": "/a nocontext\n",
	} {
		if _, err := New([]Source{{"fc", []byte(fc)}}, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	h, err := New([]Source{{"fc", []byte("/a(.* u:r:t:s0\n")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Lookup("/a/b", 0); err == nil {
		t.Error("a regex that does not compile was used")
	}
}

func TestAnalyse(t *testing.T) {
	for expr, want := range map[string]string{
		"/etc/shadow": "/etc/shadow", `/etc/a\.b`: "/etc/a.b", "/a?quota": "/", "/usr/(.*/)?lib": "/usr/",
		"/usr/lib|/opt": "", `/usr/\d+`: "/usr/", "/var/ab*c": "/var/a", "/x{2}": "/",
	} {
		if _, got := analyse(expr); got != want {
			t.Errorf("%q: prefix %q, want %q", expr, got, want)
		}
	}
}

// FuzzLookup: any file_contexts and subs content, any path: no panic, and
// a context returned is one the input holds.
func FuzzLookup(f *testing.F) {
	f.Add("/etc(/.*)?\tsystem_u:object_r:etc_t:s0\n/etc/shadow\t--\tsystem_u:object_r:shadow_t:s0\n", "/lib /usr/lib\n", "/etc/shadow")
	f.Add("/a?quota\\.(user|group)\t--\tu:r:t\n/mnt(/[^/]*)\t-l\t<<none>>\n", "/x /y\n", "/aquota.user")
	f.Add("/x|/y u:r:t\n", "", "/y")
	f.Fuzz(func(t *testing.T, fc, subs, p string) {
		h, err := New([]Source{{"fc", []byte(fc)}}, []Source{{"subs", []byte(subs)}})
		if err != nil {
			return
		}
		for _, typ := range []fs.FileMode{0, fs.ModeDir, fs.ModeSymlink} {
			ctx, ok, err := h.Lookup(p, typ)
			if err == nil && ok && !strings.Contains(fc, ctx) {
				t.Fatalf("context %q is not in the input", ctx)
			}
		}
	})
}
