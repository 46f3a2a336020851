package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// TestImportWithInjection: `inject import` of a gzip'd ext image with
// --key writes the new disk once, injected (e2fsck -fn clean, the key
// readable with cat); the same import whose injection fails (an unknown
// --key-user) leaves no disk and no temporary file.
func TestImportWithInjection(t *testing.T) {
	img := extImage(t, 0)
	gz := img + ".gz"
	b, err := exec.Command("gzip", "-c", img).Output()
	must(t, err)
	must(t, os.WriteFile(gz, b, 0o644))
	key := filepath.Join(demoGuest, "..", "demo-key.pub")
	dir := t.TempDir()
	out := filepath.Join(dir, "vm.qcow2")
	stdout, errOut, code := cli("import", gz, "--output", out, "--json", "--key", key, "--meta", "role=web")
	wantCode(t, code, exitOK, errOut)
	var rep struct {
		OK          bool     `json:"ok"`
		Layers      []string `json:"layers"`
		VirtualSize int64    `json:"virtual_size"`
		Injection   struct {
			OK bool `json:"ok"`
		} `json:"injection"`
	}
	must(t, json.Unmarshal([]byte(stdout), &rep))
	if !rep.OK || !rep.Injection.OK || len(rep.Layers) != 1 || rep.Layers[0] != "gzip" || rep.VirtualSize != 8<<20 {
		t.Errorf("report: %s", stdout)
	}
	got, errOut, code := cli("cat", out, "/root/.ssh/authorized_keys", "/meta.js")
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(got, strings.TrimSpace(readHost(t, key))) || !strings.Contains(got, `"role": "web"`) {
		t.Errorf("injected files: %q", got)
	}
	rawOut := filepath.Join(t.TempDir(), "check.raw")
	testtool.Run(t, "qemu-img", "convert", "-O", "raw", out, rawOut)
	testtool.Run(t, "e2fsck", "-fn", rawOut)
	testtool.Run(t, "qemu-img", "check", out)

	failDir := t.TempDir()
	_, errOut, code = cli("import", gz, "--output", filepath.Join(failDir, "vm.qcow2"), "--key-user", "nosuchuser", "--key", key)
	wantCode(t, code, exitFail, errOut)
	if ents, _ := os.ReadDir(failDir); len(ents) != 0 {
		t.Errorf("failed injection left %v (stderr %s)", ents, errOut)
	}
}

// TestImportUsage: import's command-line errors exit 2.
func TestImportUsage(t *testing.T) {
	for _, args := range [][]string{
		{"import", "x.img"},
		{"import", "--output", "o"},
		{"import", "x", "--output", "o", "--format", "vmdk"},
		{"import", "x", "--output", "o", "--checksum", "crc32:1234"},
		{"import", "x", "--output", "o", "--checksum", "md5:" + strings.Repeat("0", 32), "--checksum-file", "S"},
		{"import", "x", "--output", "o", "--partition", "1"},
	} {
		_, errOut, code := cli(args...)
		wantCode(t, code, exitUsage, errOut)
	}
}
