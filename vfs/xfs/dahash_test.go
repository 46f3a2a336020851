package xfs

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDaHashMatchesXfsDB checks the name hash against xfs_db's own "hash"
// command on names of every length class.
func TestDaHashMatchesXfsDB(t *testing.T) {
	img := filepath.Join(t.TempDir(), "h.img")
	mkfs(t, img, 300<<20)
	names := []string{"a", "ab", "abc", "abcd", "hello", "lost+found", "a-much-longer-name-with-tail.txt", "\xff\x80\x01", "passwd"}
	args := []string{"-r"}
	for _, n := range names {
		args = append(args, "-c", "hash "+n)
	}
	out, err := exec.Command("xfs_db", append(args, img)...).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_db: %v\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(names) {
		t.Fatalf("xfs_db printed %q", out)
	}
	for i, n := range names {
		want, err := strconv.ParseUint(lines[i], 0, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := daHash([]byte(n)); got != uint32(want) {
			t.Errorf("daHash(%q) = %#x, xfs_db says %#x", n, got, want)
		}
	}
}
