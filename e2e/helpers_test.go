package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

const mib = 1 << 20

// injectBin is the inject command built once for the whole package.
var injectBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-inject-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	injectBin = filepath.Join(dir, "inject")
	if out, err := exec.Command("go", "build", "-o", injectBin, "../cmd/inject").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building inject: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the command.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the built inject command.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(injectBin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{o.String(), e.String(), 0}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("inject %v: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// mustCLI runs the command and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	r := cli(t, args...)
	if r.code != 0 {
		t.Fatalf("inject %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// runStdin runs a reference tool with stdin.
func runStdin(t *testing.T, stdin, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(testtool.Need(t, name)[0], args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// guestTree is the demo guest (testtool.DemoGuest: Debian's modes and owners), plus a marker naming the image it was built for.
func guestTree(t *testing.T, name string) string {
	t.Helper()
	root := testtool.DemoGuest(t)
	must(t, os.WriteFile(filepath.Join(root, "etc/image-name"), []byte(name+"\n"), 0o644))
	return root
}

// dataTree is a filesystem that is no guest root.
func dataTree(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	must(t, os.WriteFile(filepath.Join(d, "data.bin"), []byte("data\n"), 0o644))
	return d
}

// emptyFile creates a sparse file of size bytes.
func emptyFile(t *testing.T, p string, size int64) string {
	t.Helper()
	f, err := os.Create(p)
	must(t, err)
	must(t, f.Truncate(size))
	must(t, f.Close())
	return p
}

// mkfsAt makes an ext4 filesystem of size bytes at byte off of img,
// filled from dir (mkfs.ext4 -E offset= -d).
func mkfsAt(t *testing.T, img string, off, size int64, dir string) {
	t.Helper()
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-E", "offset="+itoa(off), "-d", dir, img, itoa(size/1024)+"k")
}

// mkswapAt writes a swap signature into the partition at off.
func mkswapAt(t *testing.T, img string, off, size int64) {
	t.Helper()
	swap := emptyFile(t, filepath.Join(t.TempDir(), "swap"), size)
	testtool.Run(t, "mkswap", swap)
	copyInto(t, swap, img, off)
}

// copyInto writes the file src into dst at byte offset off.
func copyInto(t *testing.T, src, dst string, off int64) {
	t.Helper()
	in, err := os.Open(src)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	must(t, err)
	defer out.Close()
	_, err = io.Copy(io.NewOffsetWriter(out, off), in)
	must(t, err)
}

// copyFile copies src to dst, keeping holes where src has whole zero
// blocks (images are sparse).
func copyFile(t *testing.T, src, dst string) string {
	t.Helper()
	testtool.Run(t, "cp", "--sparse=always", src, dst)
	return dst
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	must(t, err)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// toRaw converts any image (and its chain) to a raw file with qemu-img.
func toRaw(t *testing.T, img string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "flat.raw")
	testtool.Run(t, "qemu-img", "convert", "-O", "raw", img, out)
	return out
}

// e2fsckClean fails unless e2fsck -fn finds nothing wrong with the
// filesystem at byte off of the raw disk.
func e2fsckClean(t *testing.T, raw string, off int64) {
	t.Helper()
	if out, code := testtool.Output(t, "e2fsck", "-fn", fsAt(raw, off)); code != 0 {
		t.Errorf("e2fsck -fn on the filesystem at %d: exit %d\n%s", off, code, out)
	}
}

// fsAt names the filesystem at byte off of a raw file the way e2fsprogs
// reads it (the unix I/O manager's offset option).
func fsAt(raw string, off int64) string {
	if off == 0 {
		return raw
	}
	return raw + "?offset=" + itoa(off)
}

// debugfsCat reads a guest file with debugfs.
func debugfsCat(t *testing.T, raw string, off int64, p string) string {
	t.Helper()
	cmd := exec.Command(testtool.Need(t, "debugfs")[0], "-R", "cat "+p, fsAt(raw, off))
	out, err := cmd.Output() // stdout only: debugfs prints its banner on stderr
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", p, err)
	}
	return string(out)
}

// qemuCheckClean fails unless qemu-img check finds no errors and no leaks.
func qemuCheckClean(t *testing.T, img string) {
	t.Helper()
	out, code := testtool.Output(t, "qemu-img", "check", img)
	if code != 0 || !strings.Contains(string(out), "No errors were found") || strings.Contains(string(out), "leaked") {
		t.Errorf("qemu-img check %s: exit %d\n%s", img, code, out)
	}
}

// qemuIdentical fails unless qemu-img compare says the two images hold
// the same guest-visible bytes.
func qemuIdentical(t *testing.T, a, b string) {
	t.Helper()
	out, code := testtool.Output(t, "qemu-img", "compare", a, b)
	if code != 0 || !strings.Contains(string(out), "Images are identical") {
		t.Errorf("qemu-img compare %s %s: exit %d\n%s", a, b, code, out)
	}
}
