package testtool

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// CorpusDir returns the directory of a third-party test corpus (for
// example "e2fsprogs" or "qcow2"): $GUESTINJECT_CORPUS/sub if that is set
// (a larger corpus kept outside the repository), else fixtures/corpus/sub,
// the copy shipped in the repository (provenance in fixtures/corpus/NOTICE),
// so a plain clone runs every test. A missing corpus fails the test.
func CorpusDir(t testing.TB, sub string) string {
	t.Helper()
	if env := os.Getenv("GUESTINJECT_CORPUS"); env != "" {
		return mustDir(t, filepath.Join(env, sub))
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("locating the repository root: %v", err)
	}
	return mustDir(t, filepath.Join(root, "fixtures", "corpus", sub))
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
		t.Fatalf("test corpus %s is missing (shipped in fixtures/corpus; or set GUESTINJECT_CORPUS): %v", dir, err)
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
	b, err := LoadCorpusImage(CorpusDir(t, sub), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// LoadCorpusImage returns the decompressed bytes of dir/name.img.gz, or an
// error if it is missing, damaged or decompresses past MaxCorpusImage (for
// callers that report per image instead of failing the test).
func LoadCorpusImage(dir, name string) ([]byte, error) {
	fh, err := os.Open(filepath.Join(dir, name+".img.gz"))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, MaxCorpusImage+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > MaxCorpusImage {
		return nil, fmt.Errorf("%s: decompresses to more than %d bytes", name, MaxCorpusImage)
	}
	return b, nil
}
