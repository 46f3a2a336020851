package partition

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// keepSignature zeroes every 64-byte block of a fixture head that Identify
// does not need to give the same Signature (boot code, allocation tables,
// the rest of a superblock): an NTFS head of 3540 non-zero bytes keeps a
// few hundred. The fuzzer minimises each new input in time quadratic in
// its length, so a seed carrying kilobytes that no probe reads stalls it.
func keepSignature(t testing.TB, head []byte) []byte {
	t.Helper()
	identify := func(b []byte) (Signature, error) {
		d := newSparseDisk(b, nil, 1<<20)
		return Identify(d, d.size)
	}
	want, err := identify(head)
	if err != nil || want.Kind == "" {
		t.Fatalf("fixture not identified: %+v %v", want, err)
	}
	out := bytes.Clone(head)
	var saved [64]byte
	for off := 0; off < len(out); off += len(saved) {
		blk := out[off:min(off+len(saved), len(out))]
		if !slices.ContainsFunc(blk, func(b byte) bool { return b != 0 }) {
			continue
		}
		copy(saved[:], blk)
		clear(blk)
		if got, err := identify(out); err != nil || got != want {
			copy(blk, saved[:])
		}
	}
	return out
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
		f.Add(zeroRuns(keepSignature(f, gunzip(f, n))), uint32(1<<20))
	}
	f.Fuzz(func(t *testing.T, head []byte, extraSectors uint32) { // head zero-run encoded, see unzero
		d := newSparseDisk(unzero(head), nil, extraSectors)
		if _, err := Identify(d, d.size); err != nil {
			t.Fatalf("Identify: %v", err)
		}
		if d.total > 64<<10 {
			t.Fatalf("Identify read %d bytes", d.total)
		}
	})
}
