package testtool

import (
	"compress/gzip"
	"io"
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

// MaxCorpusImage bounds what CorpusImage decompresses (the largest corpus
// image is a few MiB).
const MaxCorpusImage = 256 << 20

// CorpusImage returns the decompressed bytes of sub/name.img.gz from the
// test corpus, failing the test if it is missing, damaged or too large.
func CorpusImage(t testing.TB, sub, name string) []byte {
	t.Helper()
	fh, err := os.Open(filepath.Join(CorpusDir(t, sub), name+".img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatalf("%s/%s: %v", sub, name, err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, MaxCorpusImage+1))
	if err != nil {
		t.Fatalf("%s/%s: %v", sub, name, err)
	}
	if len(b) > MaxCorpusImage {
		t.Fatalf("%s/%s: decompresses to more than %d bytes", sub, name, MaxCorpusImage)
	}
	return b
}
