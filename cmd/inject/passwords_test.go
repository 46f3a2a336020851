package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func shadowField(t *testing.T, dir, user string) string {
	t.Helper()
	for _, line := range strings.Split(readHost(t, filepath.Join(dir, "etc/shadow")), "\n") {
		if f := strings.Split(line, ":"); f[0] == user && len(f) > 1 {
			return f[1]
		}
	}
	t.Fatalf("%s not in shadow", user)
	return ""
}

// TestPasswordFlags: --password for several users with every selector
// form, random passwords in the --json report per user, the guest's
// login.defs choosing yescrypt, and libxcrypt verifying what was written.
func TestPasswordFlags(t *testing.T) {
	dir := guestDir(t)
	must(t, os.WriteFile(filepath.Join(dir, "etc/login.defs"), []byte("ENCRYPT_METHOD YESCRYPT\n"), 0o644))
	pwfile := writeTemp(t, "pw", "from file\nignored\n")
	out, errOut, code := cli("--json", "--root-password", "locked:file:"+pwfile,
		"--password", "debian:random", "--password", "sshd:locked", "--password", "daemon:disabled", dir)
	wantCode(t, code, exitOK, errOut)
	var r struct {
		RootPassword string            `json:"root_password"`
		Passwords    map[string]string `json:"passwords"`
	}
	must(t, json.Unmarshal([]byte(out), &r))
	pw := r.Passwords["debian"]
	if len(pw) != 20 || r.RootPassword != "" || strings.Contains(errOut, pw) {
		t.Fatalf("report %+v, stderr %q", r, errOut)
	}
	for user, plain := range map[string]string{"debian": pw, "root": "from file"} {
		h := strings.TrimPrefix(shadowField(t, dir, user), "!")
		if !strings.HasPrefix(h, "$y$j9T$") {
			t.Errorf("%s: %q is not the guest's yescrypt", user, h)
		}
		got, err := exec.Command("perl", "-e", `print crypt($ARGV[0], $ARGV[1])`, plain, h).Output()
		if err != nil || string(got) != h {
			t.Errorf("%s: libxcrypt gives %q (%v) for %q", user, got, err, h)
		}
	}
	if f := shadowField(t, dir, "root"); f[0] != '!' {
		t.Errorf("root %q is not locked", f)
	}
	if f := shadowField(t, dir, "sshd"); f != "!*" {
		t.Errorf("sshd %q, want !*", f)
	}
	if f := shadowField(t, dir, "daemon"); f != "*" {
		t.Errorf("daemon %q, want *", f)
	}
}

// TestPasswordHashSelector: hash:HASH and hash-file:PATH write a prepared
// hash as it is (locked: puts ! before it); what is not shaped like a
// crypt(3) hash is refused, the guest unchanged.
func TestPasswordHashSelector(t *testing.T) {
	dir := guestDir(t)
	root := "$6$saltsaltsaltsalt$" + strings.Repeat("A", 86)
	deb := "$y$j9T$abcdefghijklmnopqrstuv$0123456789012345678901234567890123456789012"
	hf := writeTemp(t, "hash", deb+"\nignored\n")
	_, errOut, code := cli("--root-password", "hash:"+root, "--password", "debian:locked:hash-file:"+hf, "--password", "sshd:hash:abcdefghij.AB", dir)
	wantCode(t, code, exitOK, errOut)
	for user, want := range map[string]string{"root": root, "debian": "!" + deb, "sshd": "abcdefghij.AB"} {
		if f := shadowField(t, dir, user); f != want {
			t.Errorf("%s: %q, want %q", user, f, want)
		}
	}
	before := tree(t, dir)
	for _, bad := range []string{"hash:s3cret", "hash:", "hash:$6$", "hash:abcdefghij:AB", "hash-file:" + writeTemp(t, "plain", "s3cret\n")} {
		_, errOut, code := cli("--root-password", bad, dir)
		if code != exitUsage || !strings.Contains(errOut, "is not a crypt(3) hash") {
			t.Errorf("%s: code %d, stderr %q", bad, code, errOut)
		}
	}
	if tree(t, dir) != before {
		t.Error("guest changed")
	}
}

func TestPasswordFlagRefusals(t *testing.T) {
	dir := guestDir(t)
	before := tree(t, dir)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--password", "debian"}, exitUsage, "want USER:SELECTOR"},
		{[]string{"--password", "debian:bogus:x"}, exitUsage, "want password:TEXT"},
		{[]string{"--password", "debian:random:x"}, exitUsage, "takes no value"},
		{[]string{"--root-password", "random", "--password-crypto", "des"}, exitUsage, "want yescrypt"},
		{[]string{"--password", "ghost:random", "--password", "spook:disabled"}, exitFail, `"ghost", "spook" are not in /etc/passwd`},
	} {
		_, errOut, code := cli(append(c.args, dir)...)
		if code != c.code || !strings.Contains(errOut, c.msg) || strings.Count(errOut, "no such user") > 1 {
			t.Errorf("%v: code %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.msg)
		}
	}
	if tree(t, dir) != before {
		t.Error("guest changed")
	}
}

// TestCommandsFileIdentityLines: a virt-customize commands file may hold
// root-password, password, ssh-inject and selinux-relabel lines beside
// the ordered operations.
func TestCommandsFileIdentityLines(t *testing.T) {
	dir := guestDir(t)
	cmds := writeTemp(t, "cmds", "# identity\nroot-password password:from-file\npassword debian:locked\nssh-inject debian:file:"+demoKeyFile+
		"\nselinux-relabel\nwrite /etc/motd:hi\n")
	out, errOut, code := cli("--commands-from-file", cmds, dir)
	wantCode(t, code, exitOK, errOut)
	if f := shadowField(t, dir, "debian"); f != "!*" {
		t.Errorf("debian %q", f)
	}
	if f := shadowField(t, dir, "root"); !strings.HasPrefix(f, "$6$") {
		t.Errorf("root %q", f)
	}
	if !strings.Contains(readHost(t, filepath.Join(dir, "home/debian/.ssh/authorized_keys")), "demo@guestinject") {
		t.Error("ssh-inject line ignored")
	}
	if !strings.Contains(out, "selinux-relabel") {
		t.Errorf("no relabel item:\n%s", out)
	}
	bad := writeTemp(t, "bad", "password-crypto\n")
	if _, errOut, code := cli("--commands-from-file", bad, dir); code != exitUsage || !strings.Contains(errOut, "needs an argument") {
		t.Errorf("code %d %s", code, errOut)
	}
}
