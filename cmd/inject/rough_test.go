package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/GehirnInc/crypt"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/internal/testtool"
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

// TestForceShareReadsAHeldImage: -U/--force-share reads an image another
// process holds for writing (a running VM), with a warning; without it
// the read verbs refuse it.
func TestForceShareReadsAHeldImage(t *testing.T) {
	img := extImage(t, 0)
	holder, err := formats.Open(img, formats.Options{})
	must(t, err)
	defer holder.Close()
	sum := fileSum(t, img)
	for _, args := range [][]string{
		{"cat", "-U", img, "/etc/hostname"}, {"ls", "--force-share", img}, {"inspect", "-U", img},
	} {
		out, errOut, code := cli(args...)
		wantCode(t, code, exitOK, errOut)
		if out == "" || !strings.Contains(errOut, "warning: --force-share") || !strings.Contains(errOut, "inconsistent") {
			t.Errorf("%v: stdout %q stderr %q", args, out, errOut)
		}
		_, errOut, code = cli(append([]string{args[0]}, args[2:]...)...)
		wantCode(t, code, exitFail, errOut)
	}
	// -q silences the warning; a write never takes -U.
	_, errOut, code := cli("cat", "-U", "-q", img, "/etc/hostname")
	wantCode(t, code, exitOK, errOut)
	if errOut != "" {
		t.Errorf("-q: %q", errOut)
	}
	_, errOut, code = cli("-U", "--meta", "a=b", img)
	wantCode(t, code, exitUsage, errOut)
	if fileSum(t, img) != sum {
		t.Error("image changed")
	}
}

// TestInspectMissingBacking: an overlay whose backing file is missing is
// described (format, size, the backing name and why it was not opened),
// exit 0, in text and JSON; a failure of inspect --json is a JSON error.
func TestInspectMissingBacking(t *testing.T) {
	dir := t.TempDir()
	over := filepath.Join(dir, "over.qcow2")
	testtool.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", "gone.raw", over, "8M")
	out, errOut, code := cli("inspect", over)
	wantCode(t, code, exitOK, errOut)
	for _, want := range []string{"format:         qcow2 (version 3", "virtual size:   8 MiB", `backing file:   "gone.raw", not opened:`, "no such file", "partitions:     not read"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "warning: backing file not opened") {
		t.Errorf("stderr %q", errOut)
	}
	out, errOut, code = cli("inspect", "--json", over)
	wantCode(t, code, exitOK, errOut)
	var r struct {
		Format       string `json:"format"`
		VirtualSize  int64  `json:"virtual_size"`
		BackingFile  string `json:"backing_file"`
		BackingError string `json:"backing_error"`
	}
	must(t, json.Unmarshal([]byte(out), &r))
	if r.Format != "qcow2" || r.VirtualSize != 8<<20 || r.BackingFile != "gone.raw" || !strings.Contains(r.BackingError, "gone.raw") {
		t.Errorf("%+v", r)
	}

	bad := writeTemp(t, "bad.qcow2", "QFI\xfbnot a qcow2 header at all")
	out, errOut, code = cli("inspect", "--json", bad)
	wantCode(t, code, exitFail, errOut)
	var e struct {
		Target string `json:"target"`
		OK     *bool  `json:"ok"`
		Error  string `json:"error"`
	}
	must(t, json.Unmarshal([]byte(out), &e))
	if e.Target != bad || e.OK == nil || *e.OK || e.Error == "" {
		t.Errorf("inspect --json failure: %s", out)
	}
}

// TestVerbHelpAndVersion: each verb's --help and `inject help VERB` print
// that verb's page; --version names the module and the Go toolchain.
func TestVerbHelpAndVersion(t *testing.T) {
	for verb, want := range map[string]string{"cat": "Usage: inject cat", "ls": "Usage: inject ls", "inspect": "Usage: inject inspect"} {
		for _, args := range [][]string{{verb, "--help"}, {verb, "-h"}, {"help", verb}} {
			out, errOut, code := cli(args...)
			wantCode(t, code, exitOK, errOut)
			if !strings.HasPrefix(out, want) || !strings.Contains(out, "--force-share") || !strings.Contains(out, "--backing allow|deny") || strings.Contains(out, "--root-password") {
				t.Errorf("%v:\n%s", args, out)
			}
		}
	}
	out, _, code := cli("help")
	if code != exitOK || out != fullHelp() {
		t.Error("inject help is not the whole page")
	}
	_, errOut, code := cli("help", "nope")
	wantCode(t, code, exitUsage, errOut)
	for verb, want := range map[string]string{"import": "inject import brings a disk in", "seed": "inject seed builds"} {
		if out, errOut, code := cli("help", verb); code != exitOK || !strings.HasPrefix(out, want) {
			t.Errorf("help %s: exit %d, %.60q %s", verb, code, out, errOut)
		}
	}

	out, errOut, code = cli("--version")
	wantCode(t, code, exitOK, errOut)
	if !strings.HasPrefix(out, "inject ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("--version: %q", out)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Path: "github.com/guestinject/guestinject", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-03T09:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionOf(bi), "inject github.com/guestinject/guestinject v1.2.3 (revision abc123, modified, 2026-12-03T09:00:00Z), go1.99"; got != want {
		t.Errorf("versionOf = %q, want %q", got, want)
	}
}

// TestQuietVerboseAndLsRoot: -q prints no report, -v adds each
// operation, ls lists / when no path is given.
func TestQuietVerboseAndLsRoot(t *testing.T) {
	dir := guestDir(t)
	out, errOut, code := cli("-q", "--meta", "a=b", dir)
	wantCode(t, code, exitOK, errOut)
	if out != "" || errOut != "" {
		t.Errorf("-q: %q %q", out, errOut)
	}
	out, errOut, code = cli("-v", "--dry-run", "--key", demoKeyFile, dir)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "      op chmod   /root/.ssh 0700\n") || !strings.Contains(out, "    unchanged /root/.ssh (dir, mode 0700") && !strings.Contains(out, "    create    /root/.ssh (dir") {
		t.Errorf("-v:\n%s", out)
	}
	_, errOut, code = cli("-q", "-v", "--meta", "a=b", dir)
	wantCode(t, code, exitUsage, errOut)
	// -q keeps the one thing a quiet run must still say: a password it set.
	out, errOut, code = cli("-q", "--dry-run", "--root-password", "random", dir)
	wantCode(t, code, exitOK, errOut)
	if out != "" || errOut != "" {
		t.Errorf("-q dry run: %q %q", out, errOut)
	}
	out, errOut, code = cli("-q", "--root-password", "random", dir)
	wantCode(t, code, exitOK, errOut)
	if out != "" || !strings.HasPrefix(errOut, "inject: root password set to: ") {
		t.Errorf("-q run: %q %q", out, errOut)
	}

	out, errOut, code = cli("ls", dir)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "etc\n") || !strings.Contains(out, "meta.js\n") {
		t.Errorf("ls without a path:\n%s", out)
	}
}

// TestReversedFileCaughtEarly: --file LOCAL=GUEST is refused as a usage
// error naming the right order, before the target is opened (a missing
// target is not even looked at).
func TestReversedFileCaughtEarly(t *testing.T) {
	local := writeTemp(t, "motd", "hi\n")
	missing := filepath.Join(t.TempDir(), "no-such-image.qcow2")
	for _, spec := range []string{local + "=/etc/guestinject-motd", "motd=/etc/guestinject-motd"} {
		_, errOut, code := cli("--file", spec, missing)
		wantCode(t, code, exitUsage, errOut)
		if !strings.Contains(errOut, "GUESTPATH=LOCALFILE") || strings.Contains(errOut, "no-such-image") {
			t.Errorf("%s: %q", spec, errOut)
		}
	}
	_, errOut, _ := cli("--file", local+"=/etc/guestinject-motd", missing)
	if !strings.Contains(errOut, "did you mean --file /etc/guestinject-motd="+local) {
		t.Errorf("no suggestion: %q", errOut)
	}
}
