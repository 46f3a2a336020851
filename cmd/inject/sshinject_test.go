package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const otherKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC5JTQFWMW/UrgJqmYrK6/afKoUtpCz5YMlr86goouxyKxrMu7+CcJdnlJ+g8zdYISKsV/p9FjUpggUzppmg/HYErnp5m2+WSmkJC1vd4zdmk5jyjMIb2ye44/KViZ8uHIQfUksVEEIT+0esAdY/O/W6bBnVeLmrNC4TgeNriP0TQ== rsa@test"

// TestSSHInject: --ssh-inject for several users in one run, each
// selector form, merged with --key groups of the same user into one item,
// without changing whose keys later --key flags are.
func TestSSHInject(t *testing.T) {
	dir := guestDir(t)
	home := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	must(t, os.WriteFile(filepath.Join(home, ".ssh", "me.pub"), []byte(otherKey+"\n"), 0o644))
	t.Setenv("HOME", home)
	demo := strings.TrimSpace(readHost(t, demoKeyFile))
	r := jsonRun(t, "--ssh-inject", "debian:file:"+demoKeyFile, "--key", demoKeyFile,
		"--ssh-inject", "root", "--ssh-inject", "debian:string:"+otherKey, dir)
	want := map[string]string{
		"root/.ssh/authorized_keys":        demo + "\n" + otherKey + "\n",
		"home/debian/.ssh/authorized_keys": demo + "\n" + otherKey + "\n",
	}
	for p, w := range want {
		if got := readHost(t, filepath.Join(dir, p)); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	if m, u, g := hostAttr(t, filepath.Join(dir, "home/debian/.ssh/authorized_keys")); m != 0o600 || (os.Getuid() == 0 && (u != 1000 || g != 1000)) {
		t.Errorf("debian's authorized_keys %v %d:%d", m, u, g)
	}
	keyItems := 0
	for _, it := range r.Items {
		if it.Kind == "keys" {
			keyItems++
		}
	}
	if keyItems != 2 {
		t.Errorf("%d keys items, want one per user: %+v", keyItems, r.Items)
	}
}

func TestSSHInjectRefusals(t *testing.T) {
	dir := guestDir(t)
	before := tree(t, dir)
	t.Setenv("HOME", t.TempDir())
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--ssh-inject", "root"}, "has no *.pub"},
		{[]string{"--ssh-inject", "root:string:not a key"}, "invalid SSH public key"},
		{[]string{"--ssh-inject", "root:url:x"}, "want USER, USER:file:PATH or USER:string:KEY"},
		{[]string{"--ssh-inject", ":file:x"}, "want USER"},
	} {
		_, errOut, code := cli(append(c.args, dir)...)
		if code != exitUsage || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: code %d, stderr %q, want %q", c.args, code, errOut, c.msg)
		}
	}
	if _, errOut, code := cli("--ssh-inject", "ghost:file:"+demoKeyFile, dir); code != exitFail || strings.Count(errOut, "no such user") != 1 || !strings.Contains(errOut, `"ghost" is not in /etc/passwd`) {
		t.Errorf("missing user: code %d, stderr %q", code, errOut)
	}
	if tree(t, dir) != before {
		t.Error("guest changed")
	}
}
