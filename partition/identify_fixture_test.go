package partition

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestIdentifyFixtures compares Identify with what blkid said of images
// made by mkfs.vfat, mkfs.xfs, mkfs.btrfs, mkntfs, cryptsetup and xorriso
// (testdata/signatures/README.md).
func TestIdentifyFixtures(t *testing.T) {
	dir := filepath.Join("testdata", "signatures")
	tsv, err := os.ReadFile(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(string(tsv), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("bad row %q", line)
		}
		rows++
		t.Run(f[0], func(t *testing.T) {
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			disk := &sparseDisk{head: gunzip(t, filepath.Join(dir, f[0]+".head.gz")), size: size}
			want := Signature{Kind: f[2], Label: f[3], UUID: f[4]}
			if want.Kind == "crypto_LUKS" {
				want.Kind = "luks"
			}
			got, err := Identify(disk, size)
			if err != nil || got != want {
				t.Errorf("Identify = %+v, %v; blkid says %+v", got, err, want)
			}
		})
	}
	if rows != 8 {
		t.Errorf("%d fixtures, want 8", rows)
	}
}

func gunzip(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzIdentify: any partition start is recognised or not, without panic,
// error (the disk never fails) or a large read.
func FuzzIdentify(f *testing.F) {
	dir := filepath.Join("testdata", "signatures")
	names, err := filepath.Glob(filepath.Join(dir, "*.head.gz"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, n := range names {
		f.Add(gunzip(f, n), uint32(1<<20))
	}
	f.Fuzz(func(t *testing.T, head []byte, extraSectors uint32) {
		d := newSparseDisk(head, nil, extraSectors)
		if _, err := Identify(d, d.size); err != nil {
			t.Fatalf("Identify: %v", err)
		}
		if d.total > 64<<10 {
			t.Fatalf("Identify read %d bytes", d.total)
		}
	})
}
