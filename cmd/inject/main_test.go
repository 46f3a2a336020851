package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/md5_crypt"
	_ "github.com/GehirnInc/crypt/sha512_crypt"
)

func TestHelpDocumentsEveryFlag(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, errOut, code := cli(args...)
		wantCode(t, code, exitOK, errOut)
		for _, f := range []string{"--key FILE", "--key-user NAME", "--meta KEY=VALUE", "--net FILE", "--ip IFACE=", "--net-format auto|",
			"--file GUESTPATH=LOCALFILE", "--root-password SELECTOR", "--password-crypto", "--offset BYTES",
			"--dry-run", "--json", "inject cat", "inject ls [-l]", "Exit status",
			"inject inspect", "--format raw|qcow2", "--backing allow|deny", "--partition N|VG/LV|auto|none",
			"--overlay NEW.qcow2", "--size SIZE"} {
			if !strings.Contains(out, f) {
				t.Errorf("%v: help lacks %q", args, f)
			}
		}
	}
	// Every flag the parser knows has an example in the help.
	out, _, _ := cli("--help")
	for _, f := range []string{"key", "key-user", "meta", "net", "ip", "file", "root-password", "password-crypto", "offset", "dry-run", "json",
		"format", "backing", "partition", "overlay", "size"} {
		if !regexp.MustCompile(`(e\.g\.|\n  )[^\n]*--` + f + `[ =]`).MatchString(out) {
			t.Errorf("no example of --%s", f)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := guestDir(t)
	key := demoKeyFile
	for name, args := range map[string][]string{
		"no args":             {},
		"no target":           {"--key", key},
		"two targets":         {"--key", key, dir, dir},
		"unknown flag":        {"--nope", dir},
		"flag without value":  {dir, "--key"},
		"nothing to inject":   {dir},
		"key-user alone":      {"--key-user", "debian", "--meta", "a=b", dir},
		"net and ip":          {"--net", key, "--ip", "eth0=dhcp", dir},
		"bad crypto":          {"--root-password", "random", "--password-crypto", "des", dir},
		"crypto alone":        {"--password-crypto", "md5", "--meta", "a=b", dir},
		"bad selector":        {"--root-password", "secret", dir},
		"random with value":   {"--root-password", "random:x", dir},
		"empty password":      {"--root-password", "password:", dir},
		"meta without =":      {"--meta", "novalue", dir},
		"meta empty key":      {"--meta", "=v", dir},
		"meta twice":          {"--meta", "a=1", "--meta", "a=2", dir},
		"ip without =":        {"--ip", "eth0", dir},
		"ip bad address":      {"--ip", "eth0=300.1.2.3/24", dir},
		"ip no prefix":        {"--ip", "eth0=192.0.2.1", dir},
		"ip bad gw":           {"--ip", "eth0=192.0.2.1/24,gw=x", dir},
		"ip bad dns":          {"--ip", "eth0=192.0.2.1/24,dns=1.2.3.4;x", dir},
		"ip bad mac":          {"--ip", "eth0=dhcp,hw=zz", dir},
		"ip unknown option":   {"--ip", "eth0=dhcp,metric=5", dir},
		"ip bad mtu":          {"--ip", "eth0=dhcp,mtu=big", dir},
		"ip mtu too small v6": {"--ip", "eth0=dhcp6,mtu=1000", dir},
		"ip route no via":     {"--ip", "eth0=192.0.2.1/24,route=10.0.0.0/8", dir},
		"ip route host bits":  {"--ip", "eth0=192.0.2.1/24,route=10.0.0.1/8 via 192.0.2.2", dir},
		"ip route family":     {"--ip", "eth0=192.0.2.1/24,route=10.0.0.0/8 via 2001:db8::1", dir},
		"ip route v6 no v6":   {"--ip", "eth0=192.0.2.1/24,route=2001:db8::/32 via 2001:db8::1", dir},
		"ip bad search":       {"--ip", "eth0=dhcp,search=a..b", dir},
		"ip dhcp6 and ip6":    {"--ip", "eth0=dhcp6,ip6=2001:db8::1/64", dir},
		"net-format unknown":  {"--ip", "eth0=dhcp", "--net-format", "systemd", dir},
		"net-format alone":    {"--key", key, "--net-format", "netplan", dir},
		"ip option twice":     {"--ip", "eth0=192.0.2.1/24,gw=192.0.2.2,gw=192.0.2.3", dir},
		"ip dhcp and gw":      {"--ip", "eth0=dhcp,gw=192.0.2.1", dir},
		"ip twice":            {"--ip", "eth0=dhcp", "--ip", "eth0=dhcp", dir},
		"ip bad name":         {"--ip", "e th0=dhcp", dir},
		"file without =":      {"--file", "/etc/x", dir},
		"file without local":  {"--file", "/etc/x=", dir},
		"offset on directory": {"--offset", "512", "--meta", "a=b", dir},
		"bad offset":          {"--offset", "-1", "--meta", "a=b", dir},
		"cat no path":         {"cat", dir},
		"cat bad flag":        {"cat", "-x", dir, "/etc/passwd"},
		"relative guest path": {"--file", "etc/x=" + demoKeyFile, dir},
		"ls two paths":        {"ls", dir, "/etc", "/root"},
		"ls offset on dir":    {"ls", "--offset", "1", dir, "/"},
	} {
		t.Run(name, func(t *testing.T) {
			before := tree(t, dir)
			out, errOut, code := cli(args...)
			wantCode(t, code, exitUsage, errOut)
			if !strings.HasPrefix(errOut, "inject: ") || !strings.Contains(errOut, "--help") {
				t.Errorf("stderr %q", errOut)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			if tree(t, dir) != before {
				t.Error("guest changed")
			}
		})
	}
}

func TestInjectEveryFlag(t *testing.T) {
	dir := guestDir(t)
	motd := writeTemp(t, "motd", "welcome\n")
	out, errOut, code := cli("--key", demoKeyFile, "--meta", "role=demo", "--meta", "env=test",
		"--ip", "eth0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53;9.9.9.9,hw=52:54:00:12:34:56,ip6=2001:db8::10/64,gw6=2001:db8::1",
		"--ip", "eth1=dhcp", "--file", "/etc/motd="+motd, "--root-password", "random", dir)
	wantCode(t, code, exitOK, errOut)
	for _, k := range []string{"keys", "network", "meta", "password", "files"} {
		if !regexp.MustCompile(`(?m)^` + k + ` +done `).MatchString(out) {
			t.Errorf("stdout lacks %s done:\n%s", k, out)
		}
	}
	key := readHost(t, filepath.Join(dir, "root/.ssh/authorized_keys"))
	if want := readHost(t, demoKeyFile); key != want {
		t.Errorf("authorized_keys %q, want %q", key, want)
	}
	if m, u, g := hostAttr(t, filepath.Join(dir, "root/.ssh/authorized_keys")); m != 0o600 || u != 0 || g != 0 {
		t.Errorf("authorized_keys %v %d:%d", m, u, g)
	}
	if m, _, _ := hostAttr(t, filepath.Join(dir, "root/.ssh")); m != 0o700 {
		t.Errorf(".ssh %v", m)
	}
	ifs := readHost(t, filepath.Join(dir, "etc/network/interfaces"))
	for _, want := range []string{"iface eth0 inet static\n", "    hwaddress ether 52:54:00:12:34:56\n", "    address 192.0.2.10\n",
		"    netmask 255.255.255.0\n", "    broadcast 192.0.2.255\n", "    gateway 192.0.2.1\n", "    dns-nameservers 192.0.2.53 9.9.9.9\n",
		"iface eth0 inet6 static\n    address 2001:db8::10\n    netmask 64\n    gateway 2001:db8::1\n", "auto eth1\niface eth1 inet dhcp\n"} {
		if !strings.Contains(ifs, want) {
			t.Errorf("interfaces lacks %q:\n%s", want, ifs)
		}
	}
	if got := readHost(t, filepath.Join(dir, "meta.js")); got != `{"env": "test", "role": "demo"}`+"\n" {
		t.Errorf("meta.js %s", got)
	}
	if got := readHost(t, filepath.Join(dir, "etc/motd")); got != "welcome\n" {
		t.Errorf("motd %q", got)
	}
	m := regexp.MustCompile(`root password set to: (\S+)\n`).FindAllStringSubmatch(errOut, -1)
	if len(m) != 1 {
		t.Fatalf("random password printed %d times: %q", len(m), errOut)
	}
	verifyRootHash(t, dir, "$6$", m[0][1])
	if m, u, g := hostAttr(t, filepath.Join(dir, "etc/shadow")); m != 0o640 || (os.Getuid() == 0 && (u != 0 || g != 42)) {
		t.Errorf("shadow %v %d:%d", m, u, g)
	}
}

// verifyRootHash checks root's hash in the guest's shadow against pw.
func verifyRootHash(t *testing.T, dir, prefix, pw string) {
	t.Helper()
	shadow := readHost(t, filepath.Join(dir, "etc/shadow"))
	hash := strings.Split(strings.Split(shadow, "\n")[0], ":")[1]
	if !strings.HasPrefix(hash, prefix) || !crypt.IsHashSupported(hash) {
		t.Fatalf("root hash %q", hash)
	}
	if err := crypt.NewFromHash(hash).Verify(hash, []byte(pw)); err != nil {
		t.Errorf("hash does not verify %q: %v", pw, err)
	}
	want, _ := os.ReadFile(filepath.Join(demoGuest, "etc/shadow"))
	if rest := strings.SplitN(shadow, "\n", 2)[1]; rest != strings.SplitN(string(want), "\n", 2)[1] {
		t.Error("other shadow lines changed")
	}
}

func TestRootPasswordSelectors(t *testing.T) {
	t.Run("password", func(t *testing.T) {
		dir := guestDir(t)
		_, errOut, code := cli("--root-password", "password:hunter2:x", dir)
		wantCode(t, code, exitOK, errOut)
		verifyRootHash(t, dir, "$6$", "hunter2:x")
	})
	t.Run("file first line md5", func(t *testing.T) {
		dir := guestDir(t)
		pw := writeTemp(t, "pw", "from file\r\nsecond line\n")
		_, errOut, code := cli("--root-password", "file:"+pw, "--password-crypto", "md5", dir)
		wantCode(t, code, exitOK, errOut)
		verifyRootHash(t, dir, "$1$", "from file")
	})
	t.Run("file missing", func(t *testing.T) {
		dir := guestDir(t)
		_, errOut, code := cli("--root-password", "file:/nonexistent/pw", dir)
		wantCode(t, code, exitFail, errOut)
		if !strings.Contains(errOut, "/nonexistent/pw") {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("file empty first line", func(t *testing.T) {
		dir := guestDir(t)
		_, errOut, code := cli("--root-password", "file:"+writeTemp(t, "pw", "\nx\n"), dir)
		wantCode(t, code, exitFail, errOut)
	})
}

func TestKeyUserAndNet(t *testing.T) {
	dir := guestDir(t)
	netFile := writeTemp(t, "interfaces", "auto eth0\niface eth0 inet dhcp\n")
	_, errOut, code := cli("--key", demoKeyFile, "--key-user", "debian", "--net", netFile, dir)
	wantCode(t, code, exitOK, errOut)
	ak := filepath.Join(dir, "home/debian/.ssh/authorized_keys")
	if readHost(t, ak) != readHost(t, demoKeyFile) {
		t.Error("key not injected for debian")
	}
	if m, u, g := hostAttr(t, ak); m != 0o600 || (os.Getuid() == 0 && (u != 1000 || g != 1000)) {
		t.Errorf("authorized_keys %v %d:%d", m, u, g)
	}
	if readHost(t, filepath.Join(dir, "etc/network/interfaces")) != "auto eth0\niface eth0 inet dhcp\n" {
		t.Error("--net not installed verbatim")
	}
}

func TestFlagsAfterTarget(t *testing.T) {
	dir := guestDir(t)
	_, errOut, code := cli(dir, "--meta", "a=b", "--dry-run")
	wantCode(t, code, exitOK, errOut)
	if _, err := os.Stat(filepath.Join(dir, "meta.js")); err == nil {
		t.Error("--dry-run after TARGET ignored")
	}
	// After "--" everything is positional.
	_, errOut, code = cli("--meta", "a=b", "--", dir, "--json")
	wantCode(t, code, exitUsage, errOut)
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := guestDir(t)
	before := tree(t, dir)
	motd := writeTemp(t, "motd", "hi\n")
	out, errOut, code := cli("--dry-run", "--key", demoKeyFile, "--meta", "a=b", "--ip", "eth0=dhcp",
		"--file", "/opt/x/motd="+motd, "--root-password", "random", dir)
	wantCode(t, code, exitOK, errOut)
	if after := tree(t, dir); after != before {
		t.Errorf("dry run changed the guest:\n%s\n---\n%s", before, after)
	}
	for _, want := range []string{"nothing written", "keys     planned /root/.ssh/authorized_keys", "    create    /root/.ssh (dir, mode 0700, owner 0:0)\n",
		"    create    /opt (dir)\n", "    create    /opt/x (dir)\n", "    create    /opt/x/motd (3 bytes)\n", "    replace   /etc/shadow ("} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "dry run: the real run generates a random root password") {
		t.Errorf("stderr %q", errOut)
	}
}

// jsonOut is the --json report as a client reads it.
type jsonOut struct {
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	DryRun bool   `json:"dry_run"`
	Items  []struct {
		Kind, Path, Status, Error string
		Actions                   []struct{ Op, Path, Mode, Owner string }
	} `json:"items"`
}

func TestJSON(t *testing.T) {
	dir := guestDir(t)
	out, errOut, code := cli("--json", "--dry-run", "--key", demoKeyFile, "--meta", "a=b", dir)
	wantCode(t, code, exitOK, errOut)
	var r jsonOut
	must(t, json.Unmarshal([]byte(out), &r))
	if !r.OK || !r.DryRun || r.Target != dir || len(r.Items) != 2 || r.Items[0].Kind != "keys" ||
		r.Items[0].Status != "planned" || r.Items[1].Path != "/meta.js" || len(r.Items[0].Actions) != 6 {
		t.Errorf("%+v", r)
	}

	out, errOut, code = cli("--json", "--meta", "a=b", dir)
	wantCode(t, code, exitOK, errOut)
	r = jsonOut{}
	must(t, json.Unmarshal([]byte(out), &r))
	if !r.OK || r.DryRun || r.Items[0].Status != "done" {
		t.Errorf("%+v", r)
	}

	out, errOut, code = cli("--json", "--key", demoKeyFile, "--key-user", "ghost", "--meta", "a=b", dir)
	wantCode(t, code, exitFail, errOut)
	r = jsonOut{}
	must(t, json.Unmarshal([]byte(out), &r))
	if r.OK || r.Error == "" || r.Items[0].Status != "failed" || r.Items[1].Status != "skipped" || !strings.Contains(r.Items[0].Error, "ghost") {
		t.Errorf("%+v", r)
	}

	out, errOut, code = cli("--json", "--key", "/nonexistent.pub", dir)
	wantCode(t, code, exitFail, errOut)
	r = jsonOut{}
	must(t, json.Unmarshal([]byte(out), &r))
	if r.OK || !strings.Contains(r.Error, "/nonexistent.pub") {
		t.Errorf("%+v", r)
	}

	out, errOut, code = cli("--json", "--meta", "a=b", filepath.Join(dir, "missing"))
	wantCode(t, code, exitFail, errOut)
	r = jsonOut{}
	must(t, json.Unmarshal([]byte(out), &r))
	if r.OK || !strings.Contains(r.Error, "missing") {
		t.Errorf("%+v", r)
	}
}

func TestFailuresExit1NamingThePath(t *testing.T) {
	dir := guestDir(t)
	badKey := writeTemp(t, "bad.pub", "ssh-ed25519 AAAAnotbase64!!\n")
	emptyKey := writeTemp(t, "empty.pub", "# only a comment\n")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"invalid key", []string{"--key", badKey, dir}, []string{badKey, "invalid SSH public key"}},
		{"no key in file", []string{"--key", emptyKey, dir}, []string{emptyKey, "no key"}},
		{"missing key file", []string{"--key", "/nonexistent.pub", dir}, []string{"/nonexistent.pub"}},
		{"missing net file", []string{"--net", "/nonexistent-if", dir}, []string{"/nonexistent-if"}},
		{"missing local file", []string{"--file", "/etc/x=/nonexistent-x", dir}, []string{"/nonexistent-x"}},
		{"unknown key user", []string{"--key", demoKeyFile, "--key-user", "ghost", dir}, []string{"/etc/passwd", "ghost", "no such user"}},
		{"bad guest path", []string{"--file", "/etc/../x=" + demoKeyFile, dir}, []string{"/etc/../x", "invalid"}},
		{"guest path is a dir", []string{"--file", "/etc=" + demoKeyFile, dir}, []string{"/etc", "is a directory"}},
		{"missing target", []string{"--meta", "a=b", filepath.Join(dir, "nope")}, []string{filepath.Join(dir, "nope")}},
		{"cat missing", []string{"cat", dir, "/etc/passwd", "/etc/nope"}, []string{"/etc/nope"}},
		{"ls missing", []string{"ls", dir, "/nope"}, []string{"/nope"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := tree(t, dir)
			_, errOut, code := cli(c.args...)
			wantCode(t, code, exitFail, errOut)
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if tree(t, dir) != before {
				t.Error("guest changed")
			}
		})
	}
}

func TestShadowMissingUserFails(t *testing.T) {
	dir := guestDir(t)
	shadow := filepath.Join(dir, "etc/shadow")
	lines := strings.SplitN(readHost(t, shadow), "\n", 2)
	must(t, os.WriteFile(shadow, []byte(lines[1]), 0o640))
	before := tree(t, dir)
	_, errOut, code := cli("--root-password", "password:x", "--meta", "a=b", dir)
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "/etc/shadow") || !strings.Contains(errOut, "no such user") {
		t.Errorf("stderr %q", errOut)
	}
	if tree(t, dir) != before {
		t.Error("guest changed")
	}
}

func TestCatAndLs(t *testing.T) {
	dir := guestDir(t)
	must(t, os.Symlink("../etc/os-release", filepath.Join(dir, "root/release")))
	must(t, os.Chmod(filepath.Join(dir, "root/.profile"), os.ModeSetuid|0o755))
	out, errOut, code := cli("cat", dir, "/etc/hostname", "/root/release")
	wantCode(t, code, exitOK, errOut)
	if want := readHost(t, filepath.Join(dir, "etc/hostname")) + readHost(t, filepath.Join(dir, "etc/os-release")); out != want {
		t.Errorf("cat %q", out)
	}
	out, errOut, code = cli("ls", dir, "/root")
	wantCode(t, code, exitOK, errOut)
	if out != ".bashrc\n.profile\nrelease\n" {
		t.Errorf("ls %q", out)
	}
	out, errOut, code = cli("ls", "-l", dir, "/root")
	wantCode(t, code, exitOK, errOut)
	for _, re := range []string{
		`(?m)^-rw-r--r-- +0 +0 +\d+ \.bashrc$`,
		`(?m)^-rwsr-xr-x +0 +0 +\d+ \.profile$`,
		`(?m)^lrwxrwxrwx +0 +0 +17 release -> \.\./etc/os-release$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ls -l lacks %s:\n%s", re, out)
		}
	}
	out, errOut, code = cli("ls", dir, "-l", "/etc/shadow")
	wantCode(t, code, exitOK, errOut)
	if !regexp.MustCompile(`^-rw-r----- +0 +\d+ +\d+ /etc/shadow\n$`).MatchString(out) {
		t.Errorf("ls -l file %q", out)
	}
}

func TestLsMode(t *testing.T) {
	for _, c := range []struct {
		m    os.FileMode
		want string
	}{
		{0o644, "-rw-r--r--"},
		{os.ModeDir | 0o755, "drwxr-xr-x"},
		{os.ModeDir | os.ModeSticky | 0o777, "drwxrwxrwt"},
		{os.ModeDir | os.ModeSticky | 0o770, "drwxrwx--T"},
		{os.ModeSetuid | os.ModeSetgid | 0o755, "-rwsr-sr-x"},
		{os.ModeSetuid | os.ModeSetgid | 0o644, "-rwSr-Sr--"},
		{os.ModeSymlink | 0o777, "lrwxrwxrwx"},
		{os.ModeDevice | os.ModeCharDevice | 0o620, "crw--w----"},
		{os.ModeDevice | 0o660, "brw-rw----"},
		{os.ModeNamedPipe | 0o600, "prw-------"},
		{os.ModeSocket | 0o777, "srwxrwxrwx"},
		{os.ModeIrregular, "?---------"},
	} {
		if got := lsMode(c.m); got != c.want {
			t.Errorf("%v: %s, want %s", c.m, got, c.want)
		}
	}
}
