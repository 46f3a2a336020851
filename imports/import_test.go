package imports

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// compressors are the reference tools for each compression.
var compressors = map[string][]string{
	"gzip": {"gzip", "-c"}, "bzip2": {"bzip2", "-c"}, "xz": {"xz", "-T1", "-c"}, "zstd": {"zstd", "-q", "-c"},
}

// compress writes tool(p) to p.EXT and returns its path.
func compress(t testing.TB, p, kind string) string {
	t.Helper()
	c := compressors[kind]
	if _, err := exec.LookPath(c[0]); err != nil {
		t.Fatalf("reference tool %s is missing (Debian package %s; .ci/run installs it): %v", c[0], map[string]string{"gzip": "gzip", "bzip2": "bzip2", "xz": "xz-utils", "zstd": "zstd"}[kind], err)
	}
	out, err := exec.Command(c[0], append(c[1:], p)...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", c[0], p, err)
	}
	q := p + "." + kind
	if err := os.WriteFile(q, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return q
}

// sameDisk asserts qemu-img compare (exit 0) of the image src (read as
// srcFmt) and the import out.
func sameDisk(t testing.TB, src, srcFmt, out string) {
	t.Helper()
	if b, code := testtool.Output(t, "qemu-img", "compare", "-f", srcFmt, src, out); code != 0 {
		t.Fatalf("qemu-img compare %s %s: exit %d\n%s", src, out, code, b)
	}
	if strings.HasSuffix(out, ".qcow2") {
		testtool.Run(t, "qemu-img", "check", out)
	}
}

// onlyFiles asserts dir holds exactly names (no output, no temporary
// file left behind).
func onlyFiles(t testing.TB, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	sort.Strings(got)
	sort.Strings(names)
	if strings.Join(got, "\n") != strings.Join(names, "\n") {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
}

func run(t testing.TB, o Options) (*Pending, error) {
	t.Helper()
	p, err := Import(context.Background(), o)
	if err != nil {
		return nil, err
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	return p, nil
}

// diskFormats are the qemu-img conversions imported from.
var diskFormats = []struct{ name, qemu, opt string }{
	{"raw", "raw", ""},
	{"qcow2", "qcow2", ""},
	{"vmdk-sparse", "vmdk", "subformat=monolithicSparse"},
	{"vmdk-stream", "vmdk", "subformat=streamOptimized"},
	{"vhd-fixed", "vpc", "subformat=fixed"},
	{"vhd-dynamic", "vpc", "subformat=dynamic"},
	{"vhdx", "vhdx", "subformat=dynamic"},
	{"vdi", "vdi", "static=off"},
}

// TestEveryFormatAndCompression: every disk format, plain and under each
// compression, imports identical to its source (qemu-img compare exit
// 0), as qcow2 and as raw.
func TestEveryFormatAndCompression(t *testing.T) {
	dir := t.TempDir()
	raw := testtool.OddRaw(t, dir, 3<<20, 21)
	kinds := []string{"", "gzip", "bzip2", "xz", "zstd"}
	for _, f := range diskFormats {
		src := filepath.Join(dir, "d."+f.name)
		if f.opt == "" {
			testtool.Convert(t, raw, src, f.qemu)
		} else {
			testtool.Convert(t, raw, src, f.qemu, f.opt)
		}
		for i, kind := range kinds {
			in := src
			if kind != "" {
				in = compress(t, src, kind)
			}
			outFmt := []string{"qcow2", "raw"}[i%2]
			t.Run(f.name+"/"+kind+"/"+outFmt, func(t *testing.T) {
				outDir := t.TempDir()
				out := filepath.Join(outDir, "out."+outFmt)
				p, err := run(t, Options{Source: in, Output: out, Format: outFmt})
				if err != nil {
					t.Fatal(err)
				}
				sameDisk(t, src, f.qemu, out)
				onlyFiles(t, outDir, "out."+outFmt)
				if want := strings.SplitN(f.name, "-", 2)[0]; p.SourceFormat != want {
					t.Errorf("source format %q, want %q", p.SourceFormat, want)
				}
			})
		}
	}
}

// TestNestedGzipXz: gzip(xz(raw)) and a tar.gz holding an xz'd disk
// peel layer by layer; seven nested gzip layers are refused (ErrNesting).
func TestNestedGzipXz(t *testing.T) {
	dir := t.TempDir()
	raw := testtool.OddRaw(t, dir, 2<<20, 3)
	gz := compress(t, compress(t, raw, "xz"), "gzip")
	out := filepath.Join(t.TempDir(), "o.qcow2")
	p, err := run(t, Options{Source: gz, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	sameDisk(t, raw, "raw", out)
	if strings.Join(p.Layers, ",") != "gzip,xz" {
		t.Errorf("layers %v", p.Layers)
	}
	deep := raw
	for i := 0; i < MaxLayers+1; i++ {
		deep = compress(t, deep, "gzip")
	}
	outDir := t.TempDir()
	if _, err := run(t, Options{Source: deep, Output: filepath.Join(outDir, "o.qcow2")}); !errors.Is(err, ErrNesting) {
		t.Fatalf("%d gzip layers: %v, want ErrNesting", MaxLayers+1, err)
	}
	onlyFiles(t, outDir)
}

func sha(t testing.TB, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestChecksumMismatchLeavesNothing: a wrong checksum fails the import
// (ErrChecksum) and leaves neither the output nor a temporary file; the
// right one (also from SHA256SUMS and Fedora CHECKSUM files, and in md5,
// sha1, sha512) passes.
func TestChecksumMismatchLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	raw := testtool.OddRaw(t, dir, 1<<20, 4)
	gz := compress(t, raw, "gzip")
	sum := sha(t, gz)
	bad := "sha256:" + strings.Repeat("0", 64)
	for _, format := range []string{"qcow2", "raw"} {
		outDir := t.TempDir()
		_, err := run(t, Options{Source: gz, Output: filepath.Join(outDir, "o"), Format: format, Checksum: bad})
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), sum) {
			t.Fatalf("%s: %v, want ErrChecksum naming %s", format, err, sum)
		}
		onlyFiles(t, outDir)
	}
	// a local image file is hashed too (in a pass of its own)
	outDir := t.TempDir()
	if _, err := run(t, Options{Source: raw, Output: filepath.Join(outDir, "o"), Checksum: bad}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("local raw: %v, want ErrChecksum", err)
	}
	onlyFiles(t, outDir)

	sums := filepath.Join(dir, "SHA256SUMS")
	os.WriteFile(sums, []byte(strings.Repeat("1", 64)+"  other.img\n"+sum+" *"+filepath.Base(gz)+"\n"), 0o644)
	fedora := filepath.Join(dir, "Fedora-CHECKSUM")
	os.WriteFile(fedora, []byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# "+filepath.Base(gz)+": 1 bytes\nSHA256 ("+filepath.Base(gz)+") = "+sum+"\n-----BEGIN PGP SIGNATURE-----\n"), 0o644)
	for _, o := range []Options{{ChecksumFile: sums}, {ChecksumFile: fedora}, {Checksum: "SHA256:" + strings.ToUpper(sum)}} {
		o.Source, o.Output = gz, filepath.Join(t.TempDir(), "o.qcow2")
		p, err := run(t, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if p.Checksum == nil || p.Checksum.Got != sum {
			t.Fatalf("checksum %+v", p.Checksum)
		}
	}
	b, _ := os.ReadFile(gz)
	for algo, h := range map[string]string{"md5": fmt.Sprintf("%x", md5sum(b)), "sha1": fmt.Sprintf("%x", sha1sum(b)), "sha512": fmt.Sprintf("%x", sha512sum(b))} {
		if _, err := run(t, Options{Source: gz, Output: filepath.Join(t.TempDir(), "o"), Checksum: algo + ":" + h}); err != nil {
			t.Fatalf("%s: %v", algo, err)
		}
	}
}

func tarOf(t testing.TB, out string, members ...string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range members {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: filepath.Base(m), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

const ovfTemplate = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>%s</References>
  <DiskSection><Info>Virtual disk information</Info>%s</DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
`

func ovf(t testing.TB, dir string, disks ...string) string {
	var refs, ds string
	for i, d := range disks {
		refs += fmt.Sprintf(`<File ovf:id="file%d" ovf:href="%s"/>`, i+1, filepath.Base(d))
		ds += fmt.Sprintf(`<Disk ovf:diskId="vmdisk%d" ovf:fileRef="file%d" ovf:capacity="1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`, i+1, i+1)
	}
	p := filepath.Join(dir, "vm.ovf")
	os.WriteFile(p, []byte(fmt.Sprintf(ovfTemplate, refs, ds)), 0o644)
	return p
}

// TestOVA: an OVA (tar: OVF first, then streamOptimized VMDKs) with one
// disk imports it; with two it is refused listing both unless --disk N
// picks one.
func TestOVA(t *testing.T) {
	dir := t.TempDir()
	var disks []string
	for i, seed := range []int64{5, 6} {
		sub := t.TempDir()
		raw := testtool.OddRaw(t, sub, 2<<20, seed)
		d := filepath.Join(dir, fmt.Sprintf("disk%d.vmdk", i+1))
		testtool.Convert(t, raw, d, "vmdk", "subformat=streamOptimized")
		disks = append(disks, d)
	}
	one := filepath.Join(dir, "one.ova")
	tarOf(t, one, ovf(t, t.TempDir(), disks[0]), disks[0])
	out := filepath.Join(t.TempDir(), "o.qcow2")
	p, err := run(t, Options{Source: one, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	sameDisk(t, disks[0], "vmdk", out)
	if p.Member != "disk1.vmdk" || p.Layers[0] != "ova" {
		t.Errorf("member %q layers %v", p.Member, p.Layers)
	}
	two := filepath.Join(dir, "two.ova")
	tarOf(t, two, ovf(t, t.TempDir(), disks...), disks[0], disks[1])
	outDir := t.TempDir()
	_, err = run(t, Options{Source: two, Output: filepath.Join(outDir, "o.qcow2")})
	if !errors.Is(err, ErrArchive) || !strings.Contains(err.Error(), "1: disk1.vmdk, 2: disk2.vmdk") {
		t.Fatalf("two disks: %v, want ErrArchive listing both", err)
	}
	onlyFiles(t, outDir)
	out = filepath.Join(t.TempDir(), "o.qcow2")
	if _, err := run(t, Options{Source: two, Output: out, Disk: 2}); err != nil {
		t.Fatal(err)
	}
	sameDisk(t, disks[1], "vmdk", out)
}

// TestTarAndZip: a tar.gz holding one disk imports it; a tar holding two
// files is refused listing them; a zip is read in place from a file and
// spooled from stdin.
func TestTarAndZip(t *testing.T) {
	dir := t.TempDir()
	raw := testtool.OddRaw(t, dir, 2<<20, 8)
	q := filepath.Join(dir, "d.qcow2")
	testtool.Convert(t, raw, q, "qcow2")
	tgz := filepath.Join(dir, "d.tar")
	tarOf(t, tgz, q)
	tgz = compress(t, tgz, "gzip")
	out := filepath.Join(t.TempDir(), "o.raw")
	if _, err := run(t, Options{Source: tgz, Output: out, Format: "raw"}); err != nil {
		t.Fatal(err)
	}
	sameDisk(t, q, "qcow2", out)

	two := filepath.Join(dir, "two.tar")
	readme := filepath.Join(dir, "README")
	os.WriteFile(readme, []byte("hello"), 0o644)
	tarOf(t, two, q, readme)
	outDir := t.TempDir()
	if _, err := run(t, Options{Source: two, Output: filepath.Join(outDir, "o")}); !errors.Is(err, ErrArchive) || !strings.Contains(err.Error(), "d.qcow2, README") {
		t.Fatalf("tar of two files: %v", err)
	}
	onlyFiles(t, outDir)

	zp := filepath.Join(dir, "d.zip")
	zf, _ := os.Create(zp)
	zw := zip.NewWriter(zf)
	w, _ := zw.Create("disk/d.qcow2")
	b, _ := os.ReadFile(q)
	w.Write(b)
	zw.Close()
	zf.Close()
	out = filepath.Join(t.TempDir(), "o.qcow2")
	p, err := run(t, Options{Source: zp, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	sameDisk(t, q, "qcow2", out)
	if p.Member != "disk/d.qcow2" {
		t.Errorf("member %q", p.Member)
	}
	zb, _ := os.ReadFile(zp)
	outDir = t.TempDir()
	out = filepath.Join(outDir, "o.qcow2")
	p, err = run(t, Options{Source: "-", Stdin: bytes.NewReader(zb), Output: out})
	if err != nil {
		t.Fatal(err)
	}
	sameDisk(t, q, "qcow2", out)
	if !p.Spooled {
		t.Error("a zip from stdin was not reported spooled")
	}
	onlyFiles(t, outDir, "o.qcow2")
}

// TestSizeAndExistingOutput: --size grows the output (refused below the
// source's size); an existing output is never replaced.
func TestSizeAndExistingOutput(t *testing.T) {
	dir := t.TempDir()
	raw := testtool.OddRaw(t, dir, 2<<20, 9)
	gz := compress(t, raw, "gzip")
	out := filepath.Join(t.TempDir(), "o.qcow2")
	p, err := run(t, Options{Source: gz, Output: out, Size: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if p.VirtualSize != 8<<20 {
		t.Fatalf("virtual size %d", p.VirtualSize)
	}
	sameDisk(t, raw, "raw", out)
	outDir := t.TempDir()
	if _, err := run(t, Options{Source: gz, Output: filepath.Join(outDir, "o"), Size: 1 << 20}); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("--size below the source: %v", err)
	}
	onlyFiles(t, outDir)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644&^umask(t) {
		t.Errorf("output mode %v, %v; want 0644 less the umask, as qemu-img creates", fi.Mode(), err)
	}
	if _, err := Import(context.Background(), Options{Source: gz, Output: out}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("existing output: %v", err)
	}
}

// TestOVAAfterDirectory: an OVA whose tar starts with a directory entry
// still finds its OVF (the first regular file), and a tar of many files
// is refused naming a bounded number of them.
func TestOVAAfterDirectory(t *testing.T) {
	dir := t.TempDir()
	raw := testtool.OddRaw(t, t.TempDir(), 1<<20, 15)
	d := filepath.Join(dir, "disk1.vmdk")
	testtool.Convert(t, raw, d, "vmdk", "subformat=streamOptimized")
	ova := filepath.Join(dir, "x.ova")
	f, _ := os.Create(ova)
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "vm/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatUSTAR})
	for _, m := range []string{ovf(t, t.TempDir(), d), d} {
		b, _ := os.ReadFile(m)
		tw.WriteHeader(&tar.Header{Name: filepath.Base(m), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
		tw.Write(b)
	}
	tw.Close()
	f.Close()
	out := filepath.Join(t.TempDir(), "o.qcow2")
	p, err := run(t, Options{Source: ova, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	sameDisk(t, d, "vmdk", out)
	if p.Layers[0] != "ova" {
		t.Errorf("layers %v", p.Layers)
	}

	many := filepath.Join(dir, "many.tar")
	var members []string
	for i := 0; i < 30; i++ {
		m := filepath.Join(t.TempDir(), fmt.Sprintf("f%02d", i))
		os.WriteFile(m, []byte("x"), 0o644)
		members = append(members, m)
	}
	tarOf(t, many, members...)
	_, err = run(t, Options{Source: many, Output: filepath.Join(t.TempDir(), "o")})
	if !errors.Is(err, ErrArchive) || !strings.Contains(err.Error(), "30 files") || !strings.Contains(err.Error(), "and 10 more") {
		t.Fatalf("tar of 30 files: %v", err)
	}
}

// TestISOImportsAsRaw: an ISO 9660 image (which detection names "iso")
// imports as the raw disk it is, from a file and from a gzip stream.
func TestISOImportsAsRaw(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "tree")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "hello"), []byte("hello"), 0o644)
	iso := filepath.Join(dir, "x.iso")
	testtool.Run(t, "genisoimage", "-quiet", "-o", iso, src)
	for _, in := range []string{iso, compress(t, iso, "gzip")} {
		out := filepath.Join(t.TempDir(), "o.qcow2")
		if _, err := run(t, Options{Source: in, Output: out}); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		sameDisk(t, iso, "raw", out)
	}
}

// umask is the process's umask, read from a file created 0777.
func umask(t testing.TB) os.FileMode {
	p := filepath.Join(t.TempDir(), "m")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o777)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(p)
	return 0o777 &^ fi.Mode().Perm()
}
