package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// dirtyJournal commits one transaction into img's journal with debugfs
// (a block of new bytes logged for a free block) and leaves it unreplayed:
// the filesystem then needs recovery, as after a crash.
func dirtyJournal(t *testing.T, img string) {
	t.Helper()
	out := testtool.Run(t, "debugfs", "-R", "ffb 1 2000", img)
	_, list, ok := strings.Cut(string(out), "Free blocks found:")
	if !ok || len(strings.Fields(list)) != 1 {
		t.Fatalf("debugfs ffb: %s", out)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	must(t, os.WriteFile(data, bytes.Repeat([]byte("logged "), 1024)[:4096], 0o644))
	script := filepath.Join(dir, "script")
	must(t, os.WriteFile(script, []byte("jo -c\njw -b "+strings.Fields(list)[0]+" "+data+"\njc\n"), 0o644))
	testtool.Run(t, "debugfs", "-w", "-f", script, img)
	if !strings.Contains(string(testtool.Run(t, "dumpe2fs", "-h", img)), "needs_recovery") {
		t.Fatal("debugfs left no needs_recovery flag")
	}
}

// TestDryRunReplaysInMemory (kernel audit 03): on a filesystem whose
// journal needs recovery, --dry-run replays it in memory and reports the
// plan the real run then carries out (exit 0 both, the same items), and
// leaves the image byte for byte alone. Where the real run refuses (here
// orphan inodes), the dry run refuses the same way, and neither writes.
func TestDryRunReplaysInMemory(t *testing.T) {
	img := extImage(t, 0)
	dirtyJournal(t, img)
	sum := fileSum(t, img)
	args := []string{"--json", "--meta", "role=web", "--key", demoKeyFile}
	dry, errOut, code := cli(append(append([]string{"--dry-run"}, args...), img)...)
	wantCode(t, code, exitOK, errOut)
	if fileSum(t, img) != sum {
		t.Fatal("the dry run changed the image")
	}
	real, errOut, code := cli(append(args, img)...)
	wantCode(t, code, exitOK, errOut)
	e2fsckClean(t, img)
	if a, b := planOf(t, dry), planOf(t, real); a != b {
		t.Errorf("dry run plan differs from the real run's:\n%s\n%s", a, b)
	}

	img = extImage(t, 0)
	testtool.Run(t, "debugfs", "-w", "-R", "ssv last_orphan 11", img)
	dirtyJournal(t, img)
	sum = fileSum(t, img)
	_, dryErr, dryCode := cli("--dry-run", "--meta", "role=web", img)
	_, realErr, realCode := cli("--meta", "role=web", img)
	if dryCode != exitFail || realCode != exitFail || !strings.Contains(dryErr, "orphan") || !strings.Contains(realErr, "orphan") {
		t.Errorf("orphans: dry run exit %d %q, real run exit %d %q; want both refused naming the orphans", dryCode, dryErr, realCode, realErr)
	}
	if fileSum(t, img) != sum {
		t.Fatal("a refusal changed the image")
	}
}

// planOf reduces a --json report to its items' kinds, paths, summaries
// and actions (the status differs: planned or done).
func planOf(t *testing.T, out string) string {
	t.Helper()
	var r struct {
		Items []struct {
			Kind, Path, Summary string
			Actions             json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Items) == 0 {
		t.Fatalf("report %q: %v", out, err)
	}
	b, _ := json.Marshal(r.Items)
	return string(b)
}
