package formats

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
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
	// what the read-only readers do where qemu-img also refuses
	refused := map[string]error{
		"afl5.img.gz":                    ErrCorrupt,     // fuzzed: BAT beyond the file (qemu: table too large)
		"iotest-dirtylog-10G-4M.vhdx.gz": ErrUnsupported, // a log to replay: refused, not replayed
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
			switch {
			case fmtName == "raw":
				if err != nil {
					t.Fatal(err)
				}
				d.Close()
			case refused[name] != nil:
				if !errors.Is(err, refused[name]) {
					t.Fatalf("%s: %v, want %v", name, err, refused[name])
				}
			case ReadOnlyFormat(fmtName):
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if d.Info().Format != fmtName {
					t.Fatalf("format %q, want %q", d.Info().Format, fmtName)
				}
				compareWithQemu(t, d, p)
				d.Close()
				if _, err := Open(p, Options{}); !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "inject import") {
					t.Fatalf("%s opened for writing: %v, want ErrUnsupportedFormat pointing at inject import", name, err)
				}
			default:
				if !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), fmtName) {
					t.Fatalf("%s: %v, want ErrUnsupportedFormat naming %s", name, err, fmtName)
				}
			}
		})
	}
}

// compareWithQemu checks d against qemu-img: the same virtual size, and
// the same bytes over every range qemu-img map reports as data (at most
// 1 MiB of each of the first 24 ranges; a whole-disk hash of a 127 GiB
// sparse disk would cost minutes), and over the first and last MiB.
func compareWithQemu(t *testing.T, d *Image, p string) {
	t.Helper()
	out := testtool.Run(t, "qemu-img", "map", "--output=json", p)
	var ranges []struct {
		Start, Length int64
		Data          bool
	}
	if err := json.Unmarshal(out, &ranges); err != nil {
		t.Fatal(err)
	}
	info := testtool.Run(t, "qemu-img", "info", "--output=json", p)
	var vi struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	json.Unmarshal(info, &vi)
	if d.Size() != vi.VirtualSize {
		t.Fatalf("virtual size %d, qemu-img says %d", d.Size(), vi.VirtualSize)
	}
	type span struct{ off, n int64 }
	spans := []span{{0, min(1<<20, d.Size())}, {max(0, d.Size()-1<<20), min(1<<20, d.Size())}}
	for _, r := range ranges {
		if r.Data && len(spans) < 26 {
			spans = append(spans, span{r.Start, min(r.Length, 1<<20)})
		}
	}
	for _, s := range spans {
		want := qemuRange(t, p, s.off, s.n)
		got := make([]byte, s.n)
		if _, err := d.ReadAt(got, s.off); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("read %d bytes at %d: %v", s.n, s.off, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes at %d differ from qemu-img's", s.n, s.off)
		}
	}
	t.Logf("%d ranges equal to qemu-img's", len(spans))
}

// qemuRange is n bytes at off of the virtual disk p as qemu-img dd reads them.
func qemuRange(t *testing.T, p string, off, n int64) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), fmt.Sprintf("r%d", off))
	// qemu-img dd (7.2) stops at block count, counted from 0, not from skip
	testtool.Run(t, "qemu-img", "dd", "-O", "raw", "bs=512", fmt.Sprintf("skip=%d", off/512), fmt.Sprintf("count=%d", off/512+(off%512+n+511)/512), "if="+p, "of="+out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b[off%512 : off%512+n]
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
