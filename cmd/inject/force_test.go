package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// TestForceWritesUncleanFilesystem: a filesystem whose superblock says it
// was not cleanly unmounted is refused, byte for byte untouched, without
// --force, and written with it.
func TestForceWritesUncleanFilesystem(t *testing.T) {
	img := extImage(t, 0)
	testtool.Run(t, "debugfs", "-w", "-R", "ssv state 0", img)
	before, err := os.ReadFile(img)
	must(t, err)
	_, errOut, code := cli("--meta", "role=web", img)
	wantCode(t, code, exitFail, errOut)
	t.Logf("refusal: %s", errOut)
	if !strings.Contains(errOut, "not clean") || !strings.Contains(errOut, "--force") {
		t.Errorf("refusal does not say why or how to override: %s", errOut)
	}
	after, err := os.ReadFile(img)
	must(t, err)
	if !bytes.Equal(before, after) {
		t.Fatal("the refused injection changed the image")
	}
	_, errOut, code = cli("--force", "--meta", "role=web", img)
	wantCode(t, code, exitOK, errOut)
	if got := debugfsCat(t, img, "/meta.js"); got != `{"role": "web"}`+"\n" {
		t.Errorf("/meta.js after --force: %q", got)
	}
}
