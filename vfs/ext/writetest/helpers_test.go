package writetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext"
)

// demoKeyFile is an SSH public key the injector accepts.
const demoKeyFile = "../../../fixtures/demo-key.pub"

var (
	sharedTreeOnce sync.Once
	sharedTreeDir  string
	sharedTreeErr  error
)

// sharedGuest is one guest tree for every image of a test run (mke2fs -d
// only reads it). It lives until the process exits; the OS temp dir
// cleanup is left to TestMain.
func sharedGuest(t testing.TB) string {
	t.Helper()
	sharedTreeOnce.Do(func() {
		sharedTreeDir, sharedTreeErr = os.MkdirTemp("", "writetest-guest-")
		if sharedTreeErr != nil {
			return
		}
		sharedTreeErr = copyGuest(sharedTreeDir)
	})
	must(t, sharedTreeErr)
	return sharedTreeDir
}

func copyGuest(root string) error { return testtool.CopyDemoGuest(root) }

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range []string{sharedTreeDir, sharedBenchDir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

// imageSpec is one filesystem mke2fs makes.
type imageSpec struct {
	name string
	mb   int      // size in MiB (the file is sparse)
	args []string // mke2fs options
	// refusable are the words a refusal may name: the features of this
	// image the engine is allowed to refuse to write. A refusal of an
	// image without any is a failure.
	refusable []string
	// indirect: files use ext2/ext3 block maps.
	indirect bool
}

// matrix is the image matrix of issue 3.
var matrix = []imageSpec{
	{name: "ext2-1k", mb: 32, args: []string{"-t", "ext2", "-b", "1024"}, indirect: true},
	{name: "ext2-4k", mb: 32, args: []string{"-t", "ext2", "-b", "4096"}, indirect: true},
	{name: "ext3-4k", mb: 32, args: []string{"-t", "ext3", "-b", "4096"}, indirect: true},
	{name: "ext3-1k-128", mb: 32, args: []string{"-t", "ext3", "-b", "1024", "-I", "128"}, indirect: true},
	{name: "ext4", mb: 32, args: []string{"-t", "ext4", "-b", "4096"}},
	{name: "ext4-no64bit", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "^64bit"}},
	{name: "ext4-nocsum", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum"}},
	{name: "ext4-noflex", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "^flex_bg"}},
	{name: "ext4-1k", mb: 32, args: []string{"-t", "ext4", "-b", "1024"}},
	{name: "ext4-2k", mb: 32, args: []string{"-t", "ext4", "-b", "2048"}},
	{name: "ext4-64k", mb: 128, args: []string{"-t", "ext4", "-b", "65536"}},
	{name: "ext4-inline", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "inline_data"}, refusable: []string{"inline_data", "inline data"}},
	{name: "ext4-metabg", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "meta_bg,^resize_inode"}, refusable: []string{"meta_bg"}},
	{name: "ext4-nojournal", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "^has_journal"}},
	{name: "ext4-bigalloc", mb: 128, args: []string{"-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "16384"}},
	{name: "ext4-largedir", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "large_dir"}, refusable: []string{"large_dir"}},
	{name: "ext4-casefold", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "casefold"}, refusable: []string{"casefold"}},
	{name: "ext4-eainode", mb: 32, args: []string{"-t", "ext4", "-b", "4096", "-O", "ea_inode"}, refusable: []string{"ea_inode"}},
}

// beyond are filesystems mke2fs 1.47 makes outside the matrix: each must
// be written correctly or refused cleanly, naming the feature.
var beyond = []imageSpec{
	{name: "ext2-rev0", mb: 32, args: []string{"-t", "ext2", "-r", "0"}, indirect: true},
	{name: "ext3-nodirindex", mb: 32, args: []string{"-t", "ext3", "-O", "^dir_index"}, indirect: true},
	{name: "ext4-gdtcsum", mb: 32, args: []string{"-t", "ext4", "-O", "^metadata_csum,uninit_bg"}},
	{name: "ext4-nohugefile", mb: 32, args: []string{"-t", "ext4", "-O", "^huge_file"}},
	{name: "ext4-csumseed", mb: 32, args: []string{"-t", "ext4", "-O", "metadata_csum_seed"}},
	{name: "ext4-sparse2", mb: 32, args: []string{"-t", "ext4", "-O", "sparse_super2"}},
	{name: "ext4-mmp", mb: 32, args: []string{"-t", "ext4", "-O", "mmp"}, refusable: []string{"mmp", "MMP"}},
	{name: "ext4-quota", mb: 32, args: []string{"-t", "ext4", "-O", "quota"}},
	{name: "ext4-project", mb: 32, args: []string{"-t", "ext4", "-I", "256", "-O", "quota,project"}},
	{name: "ext4-prjquota-1k", mb: 32, args: []string{"-t", "ext4", "-b", "1024", "-I", "256", "-O", "quota,project", "-E", "quotatype=usrquota:grpquota:prjquota"}},
	{name: "ext4-encrypt", mb: 32, args: []string{"-t", "ext4", "-O", "encrypt"}, refusable: []string{"encrypt"}},
	{name: "ext4-verity", mb: 32, args: []string{"-t", "ext4", "-O", "verity"}, refusable: []string{"verity"}},
	{name: "ext4-stableino", mb: 32, args: []string{"-t", "ext4", "-O", "stable_inodes"}, refusable: []string{"stable_inodes"}},
	{name: "ext4-orphanfile", mb: 32, args: []string{"-t", "ext4", "-O", "orphan_file"}, refusable: []string{"orphan_file"}},
	{name: "ext4-128inode", mb: 32, args: []string{"-t", "ext4", "-I", "128"}},
	{name: "ext4-bigalloc-64k", mb: 256, args: []string{"-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "65536"}},
	{name: "ext4-1k-bigalloc", mb: 64, args: []string{"-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384"}},
	{name: "ext4-1k-inline-largedir", mb: 32, args: []string{"-t", "ext4", "-b", "1024", "-O", "inline_data,large_dir"}, refusable: []string{"inline_data", "inline data", "large_dir"}},
}

func specByName(t testing.TB, name string) imageSpec {
	t.Helper()
	for _, s := range append(append([]imageSpec{}, matrix...), beyond...) {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no image %q in the matrix", name)
	return imageSpec{}
}

// mkfs builds the image of spec from src (empty: no -d) in a temporary
// directory, with extra mke2fs options, and returns its path.
func mkfs(t testing.TB, spec imageSpec, src string, extra ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), spec.name+".img")
	args := []string{"-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0"}
	args = append(args, spec.args...)
	args = append(args, extra...)
	if src != "" {
		args = append(args, "-d", src)
	}
	args = append(args, img, strconv.Itoa(spec.mb)+"M")
	testtool.Run(t, "mke2fs", args...)
	if src != "" && hasQuota(spec) {
		// mke2fs 1.47.0 -d leaves the quota files counting the tree
		// before it was copied in: let e2fsck settle them first, so the
		// test starts from a clean filesystem.
		testtool.Output(t, "e2fsck", "-fy", img)
		if out, ok := fsck(t, img); !ok {
			t.Fatalf("mke2fs made an unclean %s:\n%s", spec.name, out)
		}
	}
	return img
}

func hasQuota(spec imageSpec) bool {
	for _, a := range spec.args {
		if strings.Contains(a, "quota") {
			return true
		}
	}
	return false
}

// image is an image file open through the write engine. Every write the
// engine makes passes through it, so a step that wrote nothing provably
// left the image unchanged.
type image struct {
	path   string
	file   *os.File
	size   int64
	writes int // WriteAt calls so far
	mu     sync.Mutex
}

func (im *image) ReadAt(p []byte, off int64) (int, error) { return im.file.ReadAt(p, off) }

func (im *image) WriteAt(p []byte, off int64) (int, error) {
	im.mu.Lock()
	im.writes++
	im.mu.Unlock()
	return im.file.WriteAt(p, off)
}

func (im *image) writeCount() int {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.writes
}

// openImage opens path read-write (the file) and the engine with opts
// (Writable forced on). The file is closed at cleanup.
func openImage(t testing.TB, path string, opts ext.Options) (*image, *ext.FS, error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	must(t, err)
	im := &image{path: path, file: f, size: st.Size()}
	opts.Writable = true
	fsys, err := ext.Open(im, im.size, &opts)
	return im, fsys, err
}

// openRead opens path read-only through the engine (a fresh view, no
// cache shared with the writer).
func openRead(t testing.TB, path string) *ext.FS {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	must(t, err)
	fsys, err := ext.Open(f, st.Size(), &ext.Options{})
	if err != nil {
		t.Fatalf("reopen %s read-only: %v", path, err)
	}
	return fsys
}

// fileSHA is the SHA-256 of a whole image file.
func fileSHA(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	must(t, err)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// fsck runs e2fsck -fn and returns its output and whether it exited 0.
func fsck(t testing.TB, img string) (string, bool) {
	t.Helper()
	out, code := testtool.Output(t, "e2fsck", "-fn", img)
	return string(out), code == 0
}

// debugfs runs one read-only debugfs request and returns its stdout and
// stderr together.
func debugfs(t testing.TB, img, req string) string {
	t.Helper()
	out, _ := testtool.Output(t, "debugfs", "-R", req, img)
	return string(out)
}

// debugfsOut runs one debugfs request and returns only its stdout (cat's
// bytes, exactly).
func debugfsOut(t testing.TB, img, req string) ([]byte, error) {
	t.Helper()
	p := testtool.Need(t, "debugfs")[0]
	var out, errb bytes.Buffer
	cmd := exec.Command(p, "-R", req, img)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("debugfs -R %q: %v: %s", req, err, errb.String())
	}
	if s := errb.String(); strings.Contains(s, "not found") || strings.Contains(s, "File not found") {
		return nil, fmt.Errorf("debugfs -R %q: %s", req, s)
	}
	return out.Bytes(), nil
}

// dstat is what debugfs' stat says of an inode.
type dstat struct {
	typ        string // regular, directory, symlink, ...
	perm       uint32 // 07777 bits
	uid, gid   uint32
	size       int64
	flags      uint32
	fastTarget string // "Fast link dest"
	found      bool
	raw        string
}

var (
	reType  = regexp.MustCompile(`Type: (\S+)\s+Mode:\s+([0-7]+)\s+Flags: (0x[0-9a-f]+)`)
	reOwner = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
	reSize  = regexp.MustCompile(`Size: (\d+)`)
	reFast  = regexp.MustCompile(`Fast link dest: "(.*)"`)
)

// debugfsStat parses `debugfs -R "stat PATH"`.
func debugfsStat(t testing.TB, img, p string) dstat {
	t.Helper()
	out := debugfs(t, img, "stat "+quoteDebugfs(p))
	st := dstat{raw: out}
	m := reType.FindStringSubmatch(out)
	o := reOwner.FindStringSubmatch(out)
	s := reSize.FindStringSubmatch(out)
	if m == nil || o == nil || s == nil {
		return st
	}
	st.found = true
	st.typ = m[1]
	perm, _ := strconv.ParseUint(m[2], 8, 32)
	st.perm = uint32(perm)
	fl, _ := strconv.ParseUint(m[3], 0, 32)
	st.flags = uint32(fl)
	u, _ := strconv.ParseUint(o[1], 10, 32)
	g, _ := strconv.ParseUint(o[2], 10, 32)
	st.uid, st.gid = uint32(u), uint32(g)
	st.size, _ = strconv.ParseInt(s[1], 10, 64)
	if f := reFast.FindStringSubmatch(out); f != nil {
		st.fastTarget = f[1]
	}
	return st
}

// quoteDebugfs quotes a path for a debugfs request when it needs it.
func quoteDebugfs(p string) string {
	if strings.ContainsAny(p, " \t\"") {
		return `"` + strings.ReplaceAll(p, `"`, `\"`) + `"`
	}
	return p
}

// Inode flags debugfs prints.
const (
	flagIndex   = 0x1000
	flagExtents = 0x80000
	flagInline  = 0x10000000
)

// extentDepth is the depth of a file's extent tree as debugfs' ex reports
// it (0: the extents fit in the inode), and the number of leaf extents.
func extentDepth(t testing.TB, img, p string) (depth, leaves int) {
	t.Helper()
	out := debugfs(t, img, "ex "+p)
	re := regexp.MustCompile(`(?m)^\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+`)
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		lvl, _ := strconv.Atoi(m[1])
		max, _ := strconv.Atoi(m[2])
		depth = max
		if lvl == max {
			leaves++
		}
	}
	return depth, leaves
}

// htreeLeaves counts the leaf blocks `debugfs -R "htree DIR"` walks.
func htreeLeaves(t testing.TB, img, dir string) int {
	t.Helper()
	out := debugfs(t, img, "htree "+dir)
	return strings.Count(out, "Reading directory block")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pattern is n bytes of recognisable content, different per seed.
func pattern(n int, seed string) []byte {
	b := make([]byte, n)
	s := sha256.Sum256([]byte(seed))
	for i := range b {
		b[i] = 'a' + (s[i%32]+byte(i/32))%26
		if i%61 == 60 {
			b[i] = '\n'
		}
	}
	return b
}
