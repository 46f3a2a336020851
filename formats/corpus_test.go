package formats

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// corpusDir holds third-party images (see its README): shared/corpus
// beside the repository, or GUESTINJECT_CORPUS. Missing, it fails the test.
func corpusDir(t *testing.T, sub string) string {
	t.Helper()
	return testtool.CorpusDir(t, sub)
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
			t.Parallel()
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

// TestCorpusQcow2Write writes into the real images that qemu-img checks
// clean, then checks and compares them.
func TestCorpusQcow2Write(t *testing.T) {
	dir := corpusDir(t, "qcow2")
	files, _ := filepath.Glob(filepath.Join(dir, "*.qcow2.gz"))
	for _, gz := range files {
		name := filepath.Base(gz)
		if strings.Contains(name, "e2image") || strings.Contains(name, "vm4-sdb") || strings.Contains(name, "vm6-sda") {
			continue // leaky by construction, raw, or refused
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := gunzip(t, gz, t.TempDir())
			checkClean(t, p)
			writeAndCheck(t, p, Options{}, 17)
		})
	}
}

// TestCorpusE2imageWrite: e2image's qcow2 files come with leaked clusters,
// some counted past the end of the file (qemu-img check cannot see those
// until the file grows). Writing must step over them, add no error, and
// leak nothing new.
func TestCorpusE2imageWrite(t *testing.T) {
	dir := corpusDir(t, "qcow2")
	files, _ := filepath.Glob(filepath.Join(dir, "e2image_*.qcow2.gz"))
	for _, gz := range files {
		t.Run(filepath.Base(gz), func(t *testing.T) {
			p := gunzip(t, gz, t.TempDir())
			fi, _ := os.Stat(p)
			before := leaked(t, p)
			ref := filepath.Join(t.TempDir(), "ref.raw")
			os.WriteFile(ref, toRaw(t, p), 0o644)
			d, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			randomWrites(t, d, ref, 5, 20)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			cs := int64(d.Info().ClusterSize)
			for c := range leaked(t, p) {
				if !before[c] && c*cs < fi.Size() {
					t.Fatalf("new leak of cluster %d", c)
				}
			}
			compareSame(t, p, ref)
		})
	}
}

// leaked runs qemu-img check, fails on errors, and returns the leaked clusters.
func leaked(t *testing.T, img string) map[int64]bool {
	t.Helper()
	out, rc := testtool.Output(t, "qemu-img", "check", img)
	if (rc != 0 && rc != 3) || strings.Contains(string(out), "ERROR") {
		t.Fatalf("qemu-img check %s: exit %d\n%s", img, rc, out)
	}
	m := map[int64]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		var c int64
		if _, err := fmt.Sscanf(line, "Leaked cluster %d", &c); err == nil {
			m[c] = true
		}
	}
	return m
}
