package imports

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestXzDictionaryBound: the dictionary an xz stream's first block asks
// for is read from its header (xz -0 and -6 pass), and one asking for
// more than maxXzDict is refused before the decoder allocates it.
func TestXzDictionaryBound(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Fatalf("xz (Debian package xz-utils) is missing: %v", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	os.WriteFile(p, bytes.Repeat([]byte("guestinject "), 1000), 0o644)
	for _, c := range []struct {
		level string
		dict  int64
	}{{"-0", 256 << 10}, {"-6", 8 << 20}, {"--lzma2=dict=100MiB", 128 << 20}} { // the header rounds 100 MiB up to 2^n or 3·2^n
		out, err := exec.Command("xz", c.level, "-c", p).Output()
		if err != nil {
			t.Fatal(err)
		}
		d, err := xzDict(out)
		if err != nil || d != c.dict {
			t.Fatalf("xz %s: dictionary %d, %v; want %d", c.level, d, err, c.dict)
		}
		_, _, err = decompress(KindXz, bytes.NewReader(out), out)
		if refused := errors.Is(err, ErrUnsupported); refused != (c.dict > maxXzDict) {
			t.Fatalf("xz %s: decompress err %v", c.level, err)
		}
	}
}
