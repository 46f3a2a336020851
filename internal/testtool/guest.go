package testtool

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// DemoGuest copies the committed demo guest (fixtures/demo-guest) into a new
// temporary directory with the modes a Debian root has (git keeps none):
// etc/shadow 0640 and root/ 0700, and when running as root, etc/shadow
// owned by root:shadow (0:42) and home/debian by 1000:1000 — the shape
// fixtures/demo.sh gives it.
func DemoGuest(t testing.TB) string {
	t.Helper()
	dst := t.TempDir()
	if err := CopyDemoGuest(dst); err != nil {
		t.Fatalf("copying the demo guest: %v", err)
	}
	return dst
}

// CopyDemoGuest is DemoGuest into an existing directory dst, for callers
// that share one copy across tests.
func CopyDemoGuest(dst string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	src := filepath.Join(root, "fixtures", "demo-guest")
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dst, "etc/shadow"), 0o640); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dst, "root"), 0o700); err != nil {
		return err
	}
	if os.Getuid() != 0 {
		return nil
	}
	if err := os.Chown(filepath.Join(dst, "etc/shadow"), 0, 42); err != nil {
		return err
	}
	return os.Chown(filepath.Join(dst, "home/debian"), 1000, 1000)
}
