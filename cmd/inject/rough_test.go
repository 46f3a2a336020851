package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/GehirnInc/crypt"

	"github.com/guestinject/guestinject/inject"
)

// changesReport is the --json report with each item's per-path changes.
type changesReport struct {
	OK           bool   `json:"ok"`
	DryRun       bool   `json:"dry_run"`
	RootPassword string `json:"root_password"`
	Items        []struct {
		Kind, Path, Status, Summary string
		Changes                     []inject.Change
	} `json:"items"`
}

func jsonRun(t *testing.T, args ...string) changesReport {
	t.Helper()
	out, errOut, code := cli(append([]string{"--json"}, args...)...)
	wantCode(t, code, exitOK, errOut)
	var r changesReport
	must(t, json.Unmarshal([]byte(out), &r))
	return r
}

func changeOf(t *testing.T, r changesReport, p string) inject.ChangeKind {
	t.Helper()
	for _, it := range r.Items {
		for _, c := range it.Changes {
			if c.Path == p {
				return c.Change
			}
		}
	}
	t.Fatalf("no change for %s in %+v", p, r)
	return ""
}

// TestPlanMatchesGuest: the dry run reports per path what the write does
// (an existing /etc and ~/.ssh unchanged, a new file created, an existing
// one replaced, keys appended to an existing authorized_keys), and the
// real run reports the same words.
func TestPlanMatchesGuest(t *testing.T) {
	dir := guestDir(t)
	must(t, os.Mkdir(filepath.Join(dir, "root/.ssh"), 0o700))
	motd := writeTemp(t, "motd", "hi\n")
	args := []string{"--key", demoKeyFile, "--file", "/etc/hostname=" + motd, "--file", "/etc/new=" + motd, "--file", "/opt/a/b=" + motd, dir}
	plan := jsonRun(t, append([]string{"--dry-run"}, args...)...)
	for p, want := range map[string]inject.ChangeKind{
		"/root/.ssh": inject.ChangeUnchanged, "/root/.ssh/authorized_keys": inject.ChangeCreate,
		"/etc": inject.ChangeUnchanged, "/etc/hostname": inject.ChangeReplace, "/etc/new": inject.ChangeCreate,
		"/opt": inject.ChangeCreate, "/opt/a": inject.ChangeCreate, "/opt/a/b": inject.ChangeCreate,
	} {
		if got := changeOf(t, plan, p); got != want {
			t.Errorf("plan %s: %s, want %s", p, got, want)
		}
	}
	real := jsonRun(t, args...)
	for i := range plan.Items {
		if !reflect.DeepEqual(plan.Items[i].Changes, real.Items[i].Changes) {
			t.Errorf("item %d: plan %+v, real run %+v", i, plan.Items[i].Changes, real.Items[i].Changes)
		}
	}
	// Again: the key is there, ~/.ssh is 0700 root's: nothing changes.
	again := jsonRun(t, "--dry-run", "--key", demoKeyFile, dir)
	for _, p := range []string{"/root/.ssh", "/root/.ssh/authorized_keys"} {
		if got := changeOf(t, again, p); got != inject.ChangeUnchanged {
			t.Errorf("second run %s: %s", p, got)
		}
	}
	// A new key for the same file is appended; a wrong mode is modified.
	must(t, os.Chmod(filepath.Join(dir, "root/.ssh"), 0o755))
	other := writeTemp(t, "other.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbT9Sx3JWNzBPMb4PJJQSjBb6+yPzYsTLhXvZtVhO+L other\n")
	third := jsonRun(t, "--key", other, dir)
	if got := changeOf(t, third, "/root/.ssh/authorized_keys"); got != inject.ChangeAppend {
		t.Errorf("new key: %s, want append", got)
	}
	if got := changeOf(t, third, "/root/.ssh"); got != inject.ChangeModify {
		t.Errorf("~/.ssh 0755 -> 0700: %s, want modify", got)
	}
}

// TestKeyUserMissingOneMessage: a user missing from the guest gives one
// message naming the item, the user and the file, and the skipped item
// claims nothing.
func TestKeyUserMissingOneMessage(t *testing.T) {
	dir := guestDir(t)
	out, errOut, code := cli("--key-user", "ghost", "--key", demoKeyFile, "--meta", "a=b", dir)
	wantCode(t, code, exitFail, errOut)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `keys ~ghost/.ssh/authorized_keys: no such user in the guest: "ghost" is not in /etc/passwd`) {
		t.Errorf("stderr:\n%s", errOut)
	}
	if strings.Contains(errOut, "unknown user") {
		t.Errorf("doubled message:\n%s", errOut)
	}
	if !strings.Contains(out, "meta     skipped /meta.js\n") || strings.Contains(out, "key(s)") {
		t.Errorf("stdout:\n%s", out)
	}
}

// TestKeysForSeveralUsers: a --key-user applies to the --key flags after
// it; keys before any are root's; the older single form still works; a
// --key-user no key follows is a usage error.
func TestKeysForSeveralUsers(t *testing.T) {
	dir := guestDir(t)
	other := writeTemp(t, "other.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbT9Sx3JWNzBPMb4PJJQSjBb6+yPzYsTLhXvZtVhO+L other\n")
	_, errOut, code := cli("--key", demoKeyFile, "--key-user", "debian", "--key", other, dir)
	wantCode(t, code, exitOK, errOut)
	rootKeys := readHost(t, filepath.Join(dir, "root/.ssh/authorized_keys"))
	debKeys := readHost(t, filepath.Join(dir, "home/debian/.ssh/authorized_keys"))
	if rootKeys != readHost(t, demoKeyFile) || !strings.HasSuffix(debKeys, " other\n") || strings.Count(debKeys, "\n") != 1 {
		t.Errorf("root %q debian %q", rootKeys, debKeys)
	}
	if _, u, _ := hostAttr(t, filepath.Join(dir, "home/debian/.ssh/authorized_keys")); u != 1000 {
		t.Errorf("debian's authorized_keys owned by %d", u)
	}

	single := guestDir(t)
	_, errOut, code = cli("--key", other, "--key-user", "debian", single)
	wantCode(t, code, exitOK, errOut)
	if _, err := os.Stat(filepath.Join(single, "root/.ssh")); err == nil || !strings.HasSuffix(readHost(t, filepath.Join(single, "home/debian/.ssh/authorized_keys")), " other\n") {
		t.Error("the single form did not give the keys to debian alone")
	}

	for _, args := range [][]string{
		{"--key-user", "debian", "--key-user", "root", "--key", other, dir},
		{"--key", other, "--key-user", "debian", "--key", other, "--key-user", "root", dir},
	} {
		_, errOut, code := cli(args...)
		wantCode(t, code, exitUsage, errOut)
		if !strings.Contains(errOut, "is followed by no --key") {
			t.Errorf("%v: %s", args, errOut)
		}
	}
}

// TestRandomPasswordInJSON: the generated password is in the --json
// report (and there only) when it was set; a dry run shows none.
func TestRandomPasswordInJSON(t *testing.T) {
	dir := guestDir(t)
	out, errOut, code := cli("--json", "--root-password", "random", dir)
	wantCode(t, code, exitOK, errOut)
	var r changesReport
	must(t, json.Unmarshal([]byte(out), &r))
	if len(r.RootPassword) != 20 || strings.Contains(errOut, r.RootPassword) {
		t.Fatalf("root_password %q, stderr %q", r.RootPassword, errOut)
	}
	shadow := readHost(t, filepath.Join(dir, "etc/shadow"))
	hash := strings.Split(strings.Split(shadow[strings.Index(shadow, "root:"):], "\n")[0], ":")[1]
	if err := crypt.NewFromHash(hash).Verify(hash, []byte(r.RootPassword)); err != nil {
		t.Errorf("the reported password does not match the hash set: %v", err)
	}

	out, errOut, code = cli("--json", "--dry-run", "--root-password", "random", dir)
	wantCode(t, code, exitOK, errOut)
	if strings.Contains(out, "root_password") || errOut != "" {
		t.Errorf("dry run shows a password:\n%s\n%s", out, errOut)
	}
	_, errOut, code = cli("--dry-run", "--root-password", "random", dir)
	wantCode(t, code, exitOK, errOut)
	if strings.Contains(errOut, "would be:") || !strings.Contains(errOut, "the real run generates") {
		t.Errorf("text dry run: %q", errOut)
	}
}

// TestFlagErrorsUseTwoDashes: the flag package's "-name" is echoed as
// the help writes it.
func TestFlagErrorsUseTwoDashes(t *testing.T) {
	dir := guestDir(t)
	for args, want := range map[*[]string]string{
		{"--nope", dir}:                           "not defined: --nope",
		{dir, "--key"}:                            "needs an argument: --key",
		{"--offset", "-1", "--meta", "a=b", dir}:  "for flag --offset:",
		{"--dry-run=maybe", "--meta", "a=b", dir}: "for --dry-run:",
	} {
		_, errOut, code := cli(*args...)
		wantCode(t, code, exitUsage, errOut)
		if !strings.Contains(errOut, want) {
			t.Errorf("%v: %q lacks %q", *args, errOut, want)
		}
	}
}

// TestPrivateKeyHint: a private key given to --key is named as one.
func TestPrivateKeyHint(t *testing.T) {
	dir := guestDir(t)
	priv := writeTemp(t, "id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
	before := tree(t, dir)
	_, errOut, code := cli("--key", priv, dir)
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "this is a private key; give the public one ("+priv+".pub)") {
		t.Errorf("stderr %q", errOut)
	}
	if tree(t, dir) != before {
		t.Error("guest changed")
	}
}

// TestMetaEndsWithNewline: /meta.js is a text file with a final newline.
func TestMetaEndsWithNewline(t *testing.T) {
	dir := guestDir(t)
	_, errOut, code := cli("--meta", "a=b", dir)
	wantCode(t, code, exitOK, errOut)
	if got := readHost(t, filepath.Join(dir, "meta.js")); got != "{\"a\": \"b\"}\n" {
		t.Errorf("meta.js %q", got)
	}
}
