package testtool

import (
	"os"
	"path/filepath"
	"testing"
)

// CorpusDir returns the directory of a third-party test corpus (for
// example "e2fsprogs" or "qcow2"): $GUESTINJECT_CORPUS/sub if that is set,
// else shared/corpus/sub beside the repository (CI clones the repository
// with shared/ next to it). A missing corpus fails the test.
func CorpusDir(t testing.TB, sub string) string {
	t.Helper()
	if env := os.Getenv("GUESTINJECT_CORPUS"); env != "" {
		return mustDir(t, filepath.Join(env, sub))
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("locating the repository root: %v", err)
	}
	return mustDir(t, filepath.Join(filepath.Dir(root), "shared", "corpus", sub))
}

// repoRoot walks up from the working directory (a package directory under
// go test) to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", os.ErrNotExist
		}
		dir = up
	}
}

func mustDir(t testing.TB, dir string) string {
	t.Helper()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("test corpus %s is missing (CI puts shared/ beside the repository; or set GUESTINJECT_CORPUS): %v", dir, err)
	}
	return dir
}
