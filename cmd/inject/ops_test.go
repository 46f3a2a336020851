package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/internal/testtool"
)

// The ordered operations on an ext image: written in one transaction with
// the classic items, e2fsck clean afterwards, and the guest as the
// sequence describes; a refused sequence leaves the image byte for byte
// unchanged.
func TestOpsOnExtImage(t *testing.T) {
	img := extImage(t, 0)
	run := writeTemp(t, "run.sh", "#!/bin/sh\necho hi\n")
	sum := fileSum(t, img)
	_, errOut, code := cli("--meta", "a=b", "--mkdir", "/opt/app", "--write", "/opt/app/conf:v=1",
		"--append-line", "/opt/app/conf:w=2", "--chmod", "0600:/opt/app/conf", "--chown", "debian:debian:/opt/app/conf",
		"--link", "/opt/app/conf:/etc/app.conf", "--file", "/usr/local/bin/run="+run+",mode=0755,owner=debian:root",
		"--truncate", "/root/.profile",
		"--chmod", "0600:/no/such/file", img)
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "--chmod") || !strings.Contains(errOut, "/no/such/file") {
		t.Errorf("stderr does not name the failing operation and path:\n%s", errOut)
	}
	if fileSum(t, img) != sum {
		t.Fatal("a refused injection changed the image")
	}
	_, errOut, code = cli("--meta", "a=b", "--mkdir", "/opt/app", "--write", "/opt/app/conf:v=1",
		"--append-line", "/opt/app/conf:w=2", "--chmod", "0600:/opt/app/conf", "--chown", "debian:debian:/opt/app/conf",
		"--link", "/opt/app/conf:/etc/app.conf", "--file", "/usr/local/bin/run="+run+",mode=0755,owner=debian:root",
		"--truncate", "/root/.profile", img)
	wantCode(t, code, exitOK, errOut)
	e2fsckClean(t, img)
	out, errOut, code := cli("cat", img, "/etc/app.conf", "/usr/local/bin/run", "/root/.profile")
	wantCode(t, code, exitOK, errOut)
	if out != "v=1\nw=2\n#!/bin/sh\necho hi\n" {
		t.Errorf("cat: %q", out)
	}
	out, errOut, code = cli("ls", "-l", img, "/opt/app")
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "-rw-------  1000  1000          8 conf") {
		t.Errorf("ls -l /opt/app:\n%s", out)
	}
	out, _, _ = cli("ls", "-l", img, "/usr/local/bin")
	if !strings.Contains(out, "-rwxr-xr-x  1000     0         18 run") {
		t.Errorf("--file mode=,owner=: ls -l /usr/local/bin:\n%s", out)
	}
}

// The dry run's plan says what each write does, per path, and --json
// carries the operation and the changes.
func TestOpsDryRunPlan(t *testing.T) {
	root := guestDir(t)
	before := tree(t, root)
	out, errOut, code := cli("--dry-run", "--mkdir", "/etc", "--mkdir", "/opt/x", "--write", "/etc/hostname:h\n",
		"--append-line", "/etc/hostname:more", "--chmod", "0644:/etc/hostname", root)
	wantCode(t, code, exitOK, errOut)
	for _, want := range []string{
		"customize planned --mkdir /etc\n    unchanged /etc (dir)\n",
		"customize planned --mkdir /opt/x\n    create    /opt (dir)\n    create    /opt/x (dir)\n",
		"    replace   /etc/hostname (2 bytes)\n",
		"    append    /etc/hostname (5 bytes)\n",
		"    unchanged /etc/hostname (mode 0644)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if tree(t, root) != before {
		t.Fatal("a dry run wrote")
	}
	out, errOut, code = cli("--dry-run", "--json", "--write", "/etc/motd:hi", root)
	wantCode(t, code, exitOK, errOut)
	var rep struct {
		Items []inject.ItemReport `json:"items"`
	}
	must(t, json.Unmarshal([]byte(out), &rep))
	if len(rep.Items) != 1 || rep.Items[0].Op != "--write /etc/motd:hi" || rep.Items[0].Changes[0].Change != inject.ChangeCreate {
		t.Errorf("json report: %s", out)
	}
}

// --commands-from-file's operations take the place of the flag among the
// others: order is command-line order.
func TestCommandsFromFileKeepsOrder(t *testing.T) {
	root := guestDir(t)
	cmds := writeTemp(t, "cmds", "# set up\nappend-line /etc/motd:two\n\nappend-line /etc/motd:\\\nthree\n")
	_, errOut, code := cli("--write", "/etc/motd:one\n", "--commands-from-file", cmds, "--append-line", "/etc/motd:four", root)
	wantCode(t, code, exitOK, errOut)
	if got := readHost(t, filepath.Join(root, "etc/motd")); got != "one\ntwo\nthree\nfour\n" {
		t.Errorf("/etc/motd = %q", got)
	}
	bad := writeTemp(t, "bad", "install vim\n")
	_, errOut, code = cli("--commands-from-file", bad, root)
	wantCode(t, code, exitUsage, errOut)
	if !strings.Contains(errOut, "line 1") || !strings.Contains(errOut, "install") {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestParseFileSpec(t *testing.T) {
	for _, tc := range []struct {
		in, guest, local, mode, owner string
	}{
		{"/a=./b", "/a", "./b", "", ""},
		{"/a=./b,mode=0755", "/a", "./b", "-rwxr-xr-x", ""},
		{"/a=./b,owner=debian:staff,mode=4750", "/a", "./b", "urwxr-x---", "debian:staff"},
		{"/a=./x,y", "/a", "./x,y", "", ""},
	} {
		f, err := parseFileSpec(tc.in)
		must(t, err)
		mode := ""
		if f.mode != nil {
			mode = f.mode.String()
		}
		if f.guest != tc.guest || f.local != tc.local || mode != tc.mode || f.owner != tc.owner {
			t.Errorf("%q: %+v mode %s", tc.in, f, mode)
		}
	}
	for _, bad := range []string{"/a=./b,mode=9", "/a=./b,owner=root", "/a=./b,mode=0755,mode=0700", "=./b,mode=0755"} {
		if _, err := parseFileSpec(bad); err == nil || !isUsage(err) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// --help documents every registered operation, from the table the flags
// come from.
func TestHelpListsEveryOperation(t *testing.T) {
	out, _, code := cli("--help")
	if code != exitOK {
		t.Fatal(code)
	}
	for _, o := range inject.Operations() {
		if !strings.Contains(out, "  --"+o.Name+" "+o.Metavar) || !strings.Contains(out, "e.g. --"+o.Name+" ") {
			t.Errorf("--help lacks --%s or its example", o.Name)
		}
	}
	if !strings.Contains(out, "--commands-from-file FILE") {
		t.Error("--help lacks --commands-from-file")
	}
}

// `inject help customize` is the operations' page; the completions offer
// every flag the injection parses, operations included.
func TestHelpCustomizeAndCompletions(t *testing.T) {
	out, errOut, code := cli("help", "customize")
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, opsHelp()) {
		t.Error("help customize lacks the operations")
	}
	for _, sh := range []string{"bash", "zsh"} {
		out, errOut, code = cli("completion", sh)
		wantCode(t, code, exitOK, errOut)
		for _, w := range []string{"--mkdir", "--commands-from-file", "--key", "--dry-run", "--host-owners", "--partition", "inspect"} {
			if !strings.Contains(out, " "+w+" ") {
				t.Errorf("%s completion lacks %s", sh, w)
			}
		}
	}
	b := writeTemp(t, "inject.bash", func() string { o, _, _ := cli("completion", "bash"); return o }())
	testtool.Run(t, "bash", "-n", b)
	_, _, code = cli("completion", "fish")
	if code != exitUsage {
		t.Errorf("completion fish: exit %d", code)
	}
}
