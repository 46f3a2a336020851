package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// TestLsPrintsGoodEntriesBesideBadOnes: in e2fsprogs' f_bad_inode_csum
// some inodes of / fail their checksum; ls prints every other entry, then
// names the bad ones ("/22", not "//22") and exits 1.
func TestLsPrintsGoodEntriesBesideBadOnes(t *testing.T) {
	fh, err := os.Open(filepath.Join(testtool.CorpusDir(t, "e2fsprogs"), "f_bad_inode_csum.img.gz"))
	must(t, err)
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	must(t, err)
	data, err := io.ReadAll(zr)
	must(t, err)
	img := filepath.Join(t.TempDir(), "bad.img")
	must(t, os.WriteFile(img, data, 0o644))

	out, errOut, code := cli("ls", "--partition", "none", img, "/")
	wantCode(t, code, exitFail, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	listed := map[string]bool{}
	for _, l := range lines {
		listed[l] = true
	}
	if len(lines) < 50 || !listed["1"] || !listed["lost+found"] || listed["22"] {
		t.Errorf("ls / listed %d entries (1: %v, lost+found: %v, 22: %v):\n%s", len(lines), listed["1"], listed["lost+found"], listed["22"], out)
	}
	if !strings.Contains(errOut, "readdir /22: ") || strings.Contains(errOut, "//") || !strings.Contains(errOut, "checksum") {
		t.Errorf("ls / stderr does not name /22 and its checksum error:\n%s", errOut)
	}
}
