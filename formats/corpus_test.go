package formats

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir holds third-party images (see its README). Override with
// GUESTINJECT_CORPUS.
func corpusDir(t *testing.T, sub string) string {
	t.Helper()
	dir := os.Getenv("GUESTINJECT_CORPUS")
	if dir == "" {
		dir = "/work/shared/corpus"
	}
	dir = filepath.Join(dir, sub)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("third-party corpus not available (%v); set GUESTINJECT_CORPUS", err)
	}
	return dir
}

// gunzip decompresses a corpus file into dir and returns its path.
func gunzip(t *testing.T, gz, dir string) string {
	t.Helper()
	in, err := os.Open(gz)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(gz), ".gz"))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, zr); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCorpusQcow2(t *testing.T) {
	dir := corpusDir(t, "qcow2")
	files, _ := filepath.Glob(filepath.Join(dir, "*.qcow2.gz"))
	if len(files) == 0 {
		t.Fatal("no qcow2 corpus files")
	}
	for _, gz := range files {
		name := filepath.Base(gz)
		t.Run(name, func(t *testing.T) {
			p := gunzip(t, gz, t.TempDir())
			d, err := Open(p, Options{ReadOnly: true})
			switch {
			case strings.Contains(name, "vm6-sda"):
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("external data file image: %v, want ErrUnsupported", err)
				}
				t.Logf("refused: %v", err)
				return
			case err != nil:
				t.Fatal(err)
			}
			defer d.Close()
			if strings.Contains(name, "vm4-sdb") && d.Info().Format != FormatRaw {
				t.Fatalf("vm4-sdb is raw, detected %q", d.Info().Format)
			}
			mustEqual(t, readAll(t, d), toRaw(t, p), name)
		})
	}
}

func TestCorpusOtherFormats(t *testing.T) {
	dir := corpusDir(t, "other-formats")
	want := map[string]string{
		"afl5.img.gz": "vhd", "d2v-zerofilled.vhd.gz": "vhd", "virtualpc-dynamic.vhd.gz": "vhd",
		"empty.bochs.gz": "bochs", "iotest-dirtylog-10G-4M.vhdx.gz": "vhdx",
		"iotest-dynamic-1G.vhdx.gz": "vhdx", "test-disk2vhd.vhdx.gz": "vhdx",
		"iotest-version3.vmdk.gz": "vmdk", "parallels-v1.gz": "parallels", "parallels-v2.gz": "parallels",
		"simple-dmg.dmg.gz": "dmg", "simple-pattern.cloop.gz": "cloop", "grub_mbr.raw.gz": "raw",
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.gz"))
	for _, gz := range files {
		name := filepath.Base(gz)
		t.Run(name, func(t *testing.T) {
			fmtName, ok := want[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			p := gunzip(t, gz, t.TempDir())
			d, err := Open(p, Options{ReadOnly: true})
			if fmtName == "raw" {
				if err != nil {
					t.Fatal(err)
				}
				d.Close()
				return
			}
			if !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), fmtName) {
				t.Fatalf("%s: %v, want ErrUnsupportedFormat naming %s", name, err, fmtName)
			}
		})
	}
}
