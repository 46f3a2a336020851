package inject

import (
	"strings"
	"testing"
)

// TestSysprepDefaults: the default operations on a guest holding what
// each one removes or resets; what they must keep stays.
func TestSysprepDefaults(t *testing.T) {
	g := memGuest(t)
	files := map[string]string{
		"/etc/machine-id":                           "0123456789abcdef0123456789abcdef\n",
		"/var/lib/dbus/machine-id":                  "0123456789abcdef0123456789abcdef\n",
		"/etc/ssh/ssh_host_ed25519_key":             "k",
		"/etc/ssh/ssh_host_ed25519_key.pub":         "k",
		"/etc/ssh/sshd_config":                      "keep",
		"/root/.ssh/authorized_keys":                "k",
		"/home/debian/.ssh/authorized_keys":         "k",
		"/root/.bash_history":                       "ls",
		"/home/debian/.bash_history":                "ls",
		"/home/debian/.profile":                     "keep",
		"/var/log/syslog":                           "x",
		"/var/log/apt/history.log":                  "x",
		"/var/log/keep.d/x":                         "keep",
		"/tmp/a/b":                                  "x",
		"/tmp/.X11-unix":                            "keep (dot file: glob(3) skips it)",
		"/var/tmp/t":                                "x",
		"/etc/udev/rules.d/70-persistent-net.rules": "x",
		"/etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nHWADDR=52:54:00:12:34:56\nBOOTPROTO=dhcp\n",
		"/var/lib/dhcp/dhclient.eth0.leases":        "x",
		"/var/lib/dhcpd/dhcpd.leases":               "x",
		"/var/lib/systemd/random-seed":              "old",
		"/var/cache/apt/archives/x.deb":             "x",
		"/var/cache/apt/archives/lock":              "keep",
	}
	for p, c := range files {
		must(t, g.MakePath(p[:strings.LastIndexByte(p, '/')]))
		must(t, g.ReplaceFile(p, []byte(c)))
	}
	pre, customize, err := SysprepSelection("", false)
	must(t, err)
	if !customize || len(pre) != 12 {
		t.Fatalf("defaults: %v customize %v", pre, customize)
	}
	_, err = Apply(g, &Data{Ops: pre}, nil)
	must(t, err)
	for p, c := range files {
		has, err := g.HasFile(p)
		must(t, err)
		switch {
		case strings.HasPrefix(c, "keep"):
			if !has || read(t, g, p) != c {
				t.Errorf("%s was not kept", p)
			}
		case p == "/etc/machine-id":
			if read(t, g, p) != "" {
				t.Errorf("machine-id not emptied")
			}
		case p == "/etc/sysconfig/network-scripts/ifcfg-eth0":
			if got := read(t, g, p); got != "DEVICE=eth0\nBOOTPROTO=dhcp\n" {
				t.Errorf("ifcfg: %q", got)
			}
		case p == "/var/lib/systemd/random-seed":
			if got := read(t, g, p); len(got) != 512 {
				t.Errorf("random seed of %d bytes", len(got))
			}
			wantAttr(t, g, p, 0o600, 0, 0)
		case has:
			t.Errorf("%s was not removed", p)
		}
	}
	for _, gone := range []string{"/root/.ssh", "/home/debian/.ssh", "/tmp/a"} {
		if has, _ := g.HasFile(gone); has {
			t.Errorf("%s left", gone)
		}
	}
	for _, kept := range []string{"/tmp", "/var/tmp", "/var/log"} {
		if has, _ := g.HasFile(kept); !has {
			t.Errorf("%s removed", kept)
		}
	}
}

func TestSysprepSelection(t *testing.T) {
	ops, customize, err := SysprepSelection("machine-id,tmp-files", true)
	must(t, err)
	if customize || len(ops) != 2 || ops[0].Arg != "machine-id" || ops[1].Arg != "tmp-files" {
		t.Errorf("%v %v", ops, customize)
	}
	ops, customize, err = SysprepSelection("defaults,-customize,-logfiles", true)
	must(t, err)
	if customize || len(ops) != 11 {
		t.Errorf("%v %v", ops, customize)
	}
	for _, bad := range []string{"nosuch", "-nosuch", "a,,b", ""} {
		if _, _, err := SysprepSelection(bad, true); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSysprepThenKeys: with OpsFirst the classic items are planned on the
// guest as the operations leave it: ssh-userdir removes the old keys and
// the new ones land in a fresh ~/.ssh (not appended to the old file, nor
// deleted after being written).
func TestSysprepThenKeys(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		if !hasOps(g.fs) {
			t.Skipf("%s lacks the optional interfaces", g.name)
		}
		must(t, g.fs.MakePath("/root/.ssh"))
		must(t, g.fs.ReplaceFile("/root/.ssh/authorized_keys", []byte(rsaKey+"\n")))
		must(t, g.fs.ReplaceFile("/root/.ssh/id_old", []byte("x")))
		rep, err := Apply(g.fs, &Data{OpsFirst: true, Ops: []Operation{{Name: sysprepOpName, Arg: "ssh-userdir"}},
			Keys: []string{demoKey}, AdminPassword: &Password{Disabled: true}}, nil)
		must(t, err)
		if got := read(t, g.fs, "/root/.ssh/authorized_keys"); got != demoKey+"\n" {
			t.Errorf("authorized_keys %q", got)
		}
		if has, _ := g.fs.HasFile("/root/.ssh/id_old"); has {
			t.Error("old ~/.ssh content kept")
		}
		wantAttr(t, g.fs, "/root/.ssh", 0o700, 0, 0)
		if rep.Items[0].Kind != KindCustomize || rep.Items[1].Kind != KindKeys {
			t.Errorf("order: %s, %s", rep.Items[0].Kind, rep.Items[1].Kind)
		}
		if c := rep.Items[1].Changes[0]; c.Path != "/root/.ssh" || c.Change != ChangeCreate {
			t.Errorf("keys plan %+v: ~/.ssh is created anew after ssh-userdir", c)
		}
	})
}
