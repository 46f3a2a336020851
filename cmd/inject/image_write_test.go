package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
)

// e2fsckClean fails the test unless e2fsck -fn finds nothing to fix.
func e2fsckClean(t *testing.T, img string) {
	t.Helper()
	if out, code := testtool.Output(t, "e2fsck", "-fn", img); code != 0 {
		t.Fatalf("e2fsck -fn %s: exit %d\n%s", img, code, out)
	}
}

// debugfsCat returns a guest file's content as debugfs reads it (its
// stdout only: the banner goes to stderr).
func debugfsCat(t *testing.T, img, p string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(testtool.Need(t, "debugfs")[0], "-R", "cat "+p, img)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs cat %s: %v\n%s", p, err, errb.String())
	}
	return out.String()
}

var (
	statMode  = regexp.MustCompile(`Type: (\S+)\s+Mode:\s+(\d+)`)
	statOwner = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
)

// debugfsStat returns a guest object's type, permission bits and owner as
// debugfs reports them.
func debugfsStat(t *testing.T, img, p string) (typ string, perm uint64, uid, gid int) {
	t.Helper()
	out := testtool.Run(t, "debugfs", "-R", "stat "+p, img)
	m, o := statMode.FindSubmatch(out), statOwner.FindSubmatch(out)
	if m == nil || o == nil {
		t.Fatalf("debugfs stat %s:\n%s", p, out)
	}
	perm, _ = strconv.ParseUint(string(m[2]), 8, 32)
	uid, _ = strconv.Atoi(string(o[1]))
	gid, _ = strconv.Atoi(string(o[2]))
	return string(m[1]), perm, uid, gid
}

func wantStat(t *testing.T, img, p, typ string, perm uint64, uid, gid int) {
	t.Helper()
	gt, gp, gu, gg := debugfsStat(t, img, p)
	if gt != typ || gp != perm || gu != uid || gg != gid {
		t.Errorf("debugfs stat %s: %s %#o %d:%d, want %s %#o %d:%d", p, gt, gp, gu, gg, typ, perm, uid, gid)
	}
}

// knownEngineGap lists the tests of this file that fail for a known gap
// of the ext write engine at the last commit: an injection that fails with
// that gap's error is logged, not failed. Empty it when the gap closes.
// (Empty since the ext write face was wired at 267bbc6.)
var knownEngineGap = map[string]string{}

// injected checks an injection's exit status; for a known engine gap whose
// error shows in stderr it logs and reports false (stop the test).
func injected(t *testing.T, code int, stderr string) bool {
	t.Helper()
	if gap := knownEngineGap[t.Name()]; gap != "" && code != exitOK && strings.Contains(stderr, gap) {
		t.Logf("KNOWN ENGINE GAP (%s):\n%s", gap, stderr)
		return false
	}
	wantCode(t, code, exitOK, stderr)
	if gap := knownEngineGap[t.Name()]; gap != "" {
		t.Logf("knownEngineGap[%q] passes now: remove the entry", t.Name())
	}
	return true
}

// TestImageInject injects a key and metadata into a raw ext4 image: the
// result is e2fsck-clean and debugfs reads back what was written.
func TestImageInject(t *testing.T) {
	img := extImage(t, 0)
	out, errOut, code := cli("--key", demoKeyFile, "--meta", "role=web", img)
	if !injected(t, code, errOut) {
		return
	}
	if !strings.Contains(out, "/root/.ssh/authorized_keys") {
		t.Errorf("report:\n%s", out)
	}
	e2fsckClean(t, img)
	key := strings.TrimSpace(readHost(t, demoKeyFile)) + "\n"
	if got := debugfsCat(t, img, "/root/.ssh/authorized_keys"); got != key {
		t.Errorf("authorized_keys read back by debugfs: %q, want %q", got, key)
	}
	meta, err := inject.MetaJSON(map[string]string{"role": "web"})
	must(t, err)
	if got := debugfsCat(t, img, "/meta.js"); got != string(meta) {
		t.Errorf("/meta.js read back by debugfs: %q, want %q", got, meta)
	}
	wantStat(t, img, "/root/.ssh", "directory", 0o700, 0, 0)
	wantStat(t, img, "/root/.ssh/authorized_keys", "regular", 0o600, 0, 0)
	// The CLI reads back what it wrote, and a second run adds nothing.
	out, errOut, code = cli("cat", img, "/root/.ssh/authorized_keys")
	wantCode(t, code, exitOK, errOut)
	if out != key {
		t.Errorf("cat after inject: %q", out)
	}
	_, errOut, code = cli("--key", demoKeyFile, img)
	wantCode(t, code, exitOK, errOut)
	e2fsckClean(t, img)
	if got := debugfsCat(t, img, "/root/.ssh/authorized_keys"); got != key {
		t.Errorf("after a second run: %q", got)
	}
}

// TestImageInjectAtOffset writes a filesystem that starts 1 MiB into the
// image: the bytes before it stay zero and the filesystem is clean.
func TestImageInjectAtOffset(t *testing.T) {
	const lead = 1 << 20
	img := extImage(t, lead)
	_, errOut, code := cli("--offset", strconv.Itoa(lead), "--meta", "a=b", "--file", "/etc/motd="+writeTemp(t, "motd", "hi\n"), img)
	if !injected(t, code, errOut) {
		return
	}
	b, err := os.ReadFile(img)
	must(t, err)
	if !bytes.Equal(b[:lead], make([]byte, lead)) {
		t.Error("the injection wrote before --offset")
	}
	fsImg := filepath.Join(t.TempDir(), "fs.img")
	must(t, os.WriteFile(fsImg, b[lead:], 0o644))
	e2fsckClean(t, fsImg)
	if got := debugfsCat(t, fsImg, "/etc/motd"); got != "hi\n" {
		t.Errorf("/etc/motd: %q", got)
	}
}

// TestImageReadVerbsOpenReadOnly: cat and ls open an image without write
// access, so nothing they do can change it.
func TestImageReadVerbsOpenReadOnly(t *testing.T) {
	img := extImage(t, 0)
	sum := fileSum(t, img)
	tg, err := openTarget(img, targetOptions{allowDirty: true})
	must(t, err)
	defer tg.close()
	if err := tg.fs.MakePath("/x"); !errors.Is(err, vfs.ErrReadOnly) {
		t.Errorf("MakePath through a read target: %v, want ErrReadOnly", err)
	}
	if fileSum(t, img) != sum {
		t.Error("image changed")
	}
}
