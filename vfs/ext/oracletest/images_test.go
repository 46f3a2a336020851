package oracletest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/internal/testtool"
)

// layout is one image of the oracle matrix (issue 3).
type layout struct {
	name string
	mkfs string   // mkfs.ext2, mkfs.ext3 or mkfs.ext4
	args []string // extra mkfs arguments
	size string   // image size given to mkfs (the file is sparse)
	tree treeOptions
	// fixup runs debugfs/e2fsck steps after mkfs -d (casefold, ea_inode).
	fixup func(t testing.TB, img string)
	// sparseLeaves makes e2fsck -D put one entry in each htree leaf
	// (indexed_dir_slack_percentage = 100), so that 20,000 entries need a
	// 3-level tree on 1 KiB blocks.
	sparseLeaves bool
	// htreeLevels is the indirect_levels /many must end with.
	htreeLevels int
}

// matrix is kept in step with fixtures/ext/mkimages.sh.
var matrix = []layout{
	{name: "ext2-1k", mkfs: "mkfs.ext2", args: []string{"-b", "1024"}, size: "96M"},
	{name: "ext2-4k", mkfs: "mkfs.ext2", args: []string{"-b", "4096"}, size: "96M"},
	{name: "ext3-4k", mkfs: "mkfs.ext3", args: []string{"-b", "4096"}, size: "96M"},
	{name: "ext3-1k-128", mkfs: "mkfs.ext3", args: []string{"-b", "1024", "-I", "128"}, size: "96M"},
	// /many with 3,000 entries: a one-level htree on 4 KiB blocks (the
	// 20,000-entry directory is in ext4-largedir; mkfs -d is quadratic in
	// directory size, so only one layout pays for it).
	{name: "ext4", mkfs: "mkfs.ext4", size: "160M", tree: treeOptions{manyEntries: 3000}, htreeLevels: 0},
	{name: "ext4-no64bit", mkfs: "mkfs.ext4", args: []string{"-O", "^64bit"}, size: "96M"},
	{name: "ext4-nocsum", mkfs: "mkfs.ext4", args: []string{"-O", "^metadata_csum,uninit_bg"}, size: "96M"},
	{name: "ext4-noflex", mkfs: "mkfs.ext4", args: []string{"-O", "^flex_bg"}, size: "96M"},
	{name: "ext4-1k", mkfs: "mkfs.ext4", args: []string{"-b", "1024"}, size: "96M"},
	{name: "ext4-2k", mkfs: "mkfs.ext4", args: []string{"-b", "2048"}, size: "96M"},
	{name: "ext4-64k", mkfs: "mkfs.ext4", args: []string{"-b", "65536"}, size: "256M"},
	// mke2fs 1.47.0 -d with inline_data cuts a file that ends in a hole
	// at its last data block (and stores an all-hole file as inline data
	// with i_size 1 MiB); the tree leaves such files out.
	{name: "ext4-inline", mkfs: "mkfs.ext4", args: []string{"-O", "inline_data"}, size: "96M",
		tree: treeOptions{noTrailingHoles: true}},
	{name: "ext4-metabg", mkfs: "mkfs.ext4", args: []string{"-O", "meta_bg,^resize_inode"}, size: "96M"},
	{name: "ext4-nojournal", mkfs: "mkfs.ext4", args: []string{"-O", "^has_journal"}, size: "96M"},
	{name: "ext4-bigalloc", mkfs: "mkfs.ext4", args: []string{"-O", "bigalloc", "-C", "16384"}, size: "128M"},
	{name: "ext4-casefold", mkfs: "mkfs.ext4", args: []string{"-O", "casefold"}, size: "96M",
		tree: treeOptions{casefold: true}, fixup: casefoldFixup},
	// A 3-level htree (indirect_levels 2) on 1 KiB blocks with
	// metadata_csum needs more than 123*126 = 15,498 leaves: with one entry
	// per leaf, 15,499 entries is the smallest count; /many has 20,000.
	{name: "ext4-largedir", mkfs: "mkfs.ext4", args: []string{"-b", "1024", "-O", "large_dir"}, size: "160M",
		tree: treeOptions{manyEntries: 20000}, sparseLeaves: true, htreeLevels: 2},
	{name: "ext4-eainode", mkfs: "mkfs.ext4", args: []string{"-O", "ea_inode"}, size: "96M", fixup: eaInodeFixup},
}

// mke2fsConf pins mke2fs's defaults so that images do not depend on the
// host's /etc/mke2fs.conf (Debian 1.47.0's defaults, except that small
// filesystems keep 4 KiB blocks unless a layout asks otherwise).
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext3 = {
		features = has_journal
	}
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	small = {
		inode_ratio = 16384
	}
	floppy = {
		inode_ratio = 16384
	}
`

// builtImage is an image of the matrix and the tree it was made from.
type builtImage struct {
	layout layout
	path   string
	src    string
	extra  map[string]map[string][]byte // xattrs added after mkfs: path -> name -> value
}

// buildImage makes one image of the matrix in dir.
func buildImage(t testing.TB, dir string, l layout) builtImage {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buildTree(t, src, l.tree)
	tTree := time.Since(start)
	img := filepath.Join(dir, l.name+".img")
	conf := filepath.Join(dir, "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1"}, l.args...)
	args = append(args, "-d", src, img, l.size)
	mkfs(t, conf, l.mkfs, args...)
	tMkfs := time.Since(start)
	bi := builtImage{layout: l, path: img, src: src}
	if l.fixup != nil {
		l.fixup(t, img)
	}
	// e2fsck -fyD indexes the directories mkfs -d left linear; the image
	// must then be clean.
	e2fsckD(t, dir, img, l.sparseLeaves)
	if out, rc := testtool.Output(t, "e2fsck", "-fn", img); rc != 0 {
		t.Fatalf("e2fsck -fn %s after build: exit %d\n%s", l.name, rc, out)
	}
	t.Logf("%s: tree %v, mkfs %v, fixup+e2fsck %v", l.name, tTree, tMkfs-tTree, time.Since(start)-tMkfs)
	if l.name == "ext4-eainode" {
		bi.extra = map[string]map[string][]byte{"/xattr/file": {"user.huge": hugeXattr()}}
	}
	return bi
}

// mkfs runs a mkfs tool with MKE2FS_CONFIG pointing at conf.
func mkfs(t testing.TB, conf, tool string, args ...string) {
	t.Helper()
	cmd := exec.Command(testtool.Need(t, tool)[0], args...)
	cmd.Env = append(os.Environ(), "MKE2FS_CONFIG="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
}

// e2fsckConf is the e2fsck.conf of sparseLeaves layouts.
const e2fsckConf = "[options]\n\tindexed_dir_slack_percentage = 100\n"

// e2fsckD runs e2fsck -fyD, which indexes the directories mkfs -d left
// linear (exit 1: it changed the filesystem, as asked).
func e2fsckD(t testing.TB, dir, img string, sparseLeaves bool) {
	t.Helper()
	cmd := exec.Command(testtool.Need(t, "e2fsck")[0], "-fyD", img)
	conf := filepath.Join(dir, "e2fsck.conf")
	if err := os.WriteFile(conf, []byte(e2fsckConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if sparseLeaves {
		cmd.Env = append(os.Environ(), "E2FSCK_CONFIG="+conf)
	} else {
		cmd.Env = append(os.Environ(), "E2FSCK_CONFIG=/dev/null")
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("e2fsck -fyD %s: %v\n%s", img, err, out)
	}
}

// debugfsW runs debugfs -w with the given requests.
func debugfsW(t testing.TB, img string, reqs ...string) {
	t.Helper()
	f := filepath.Join(filepath.Dir(img), "debugfs.cmds")
	if err := os.WriteFile(f, []byte(strings.Join(reqs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := testtool.Run(t, "debugfs", "-w", "-f", f, img)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, ": ") && !strings.HasPrefix(line, "debugfs") {
			t.Fatalf("debugfs -w %s: %s", img, out)
		}
	}
}

// casefoldFixup makes /cf a casefold directory: mkfs -d cannot set
// EXT4_CASEFOLD_FL (the host directory has no such flag), so set it with
// debugfs while /cf is still a linear directory, then let e2fsck -fD
// (run by buildImage) index it with casefolded hashes.
func casefoldFixup(t testing.TB, img string) {
	t.Helper()
	const casefoldFL = 0x40000000
	out := testtool.Run(t, "debugfs", "-R", "stat /cf", img)
	var flags uint32
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "Flags: 0x"); i >= 0 {
			fmt.Sscanf(line[i+len("Flags: "):], "0x%x", &flags)
		}
	}
	debugfsW(t, img, fmt.Sprintf("set_inode_field /cf flags 0x%x", flags|casefoldFL))
}

// hugeXattr is the ea_inode image's value larger than a 4 KiB block
// (printable: debugfs takes it on its command line).
func hugeXattr() []byte {
	v := make([]byte, 6000)
	for i := range v {
		v[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i%36]
	}
	return v
}

// eaInodeFixup adds an xattr larger than a block (stored in its own inode
// with ea_inode): the host filesystem cannot hold it, so mkfs -d cannot
// copy it; debugfs ea_set can write it (ea_set -f would read only one
// block of the value file, so the value goes on the command line).
func eaInodeFixup(t testing.TB, img string) {
	t.Helper()
	out := testtool.Run(t, "debugfs", "-w", "-R", "ea_set /xattr/file user.huge "+string(hugeXattr()), img)
	if strings.Count(string(out), "\n") > 1 {
		t.Fatalf("debugfs ea_set: %s", out)
	}
}
