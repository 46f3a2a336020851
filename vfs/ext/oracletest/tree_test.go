package oracletest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// treeOptions selects the costly parts of the source tree, which only a
// few images carry.
type treeOptions struct {
	manyEntries int  // entries in /many (hard links to one file), 0 for none
	casefold    bool // /cf: a directory of mixed-case names made casefold after mkfs
	// noTrailingHoles leaves out the files that end in a hole.
	noTrailingHoles bool
}

// Source tree facts the tests check beyond comparing with the tree.
const (
	sparseSize    = 5<<30 + 12345 // /data/sparse-5g: over 4 GiB, mostly hole
	sparseDataOff = 4<<30 + 100   // where its second piece of data sits
	deepDepth     = 40            // directories above /deep/.../leaf.txt
	cfEntries     = 300           // entries in /cf
)

// buildTree creates the source tree under dir (which must exist and be
// empty). It needs root for chown and mknod; CI runs as root.
func buildTree(t testing.TB, dir string, o treeOptions) {
	t.Helper()
	b := &treeBuilder{t: t, root: dir, rnd: rand.New(rand.NewPCG(7, 11))}
	b.basics()
	b.sizes()
	b.holes(o.noTrailingHoles)
	b.links()
	b.specials()
	b.owners()
	b.xattrs()
	b.deep()
	if o.manyEntries > 0 {
		b.many(o.manyEntries)
	}
	if o.casefold {
		b.casefoldDir()
	}
}

type treeBuilder struct {
	t    testing.TB
	root string
	rnd  *rand.Rand
}

func (b *treeBuilder) p(rel string) string { return filepath.Join(b.root, rel) }

func (b *treeBuilder) check(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *treeBuilder) mkdir(rel string, perm os.FileMode) {
	b.t.Helper()
	b.check(os.MkdirAll(b.p(rel), 0o755))
	b.check(os.Chmod(b.p(rel), perm))
}

func (b *treeBuilder) file(rel string, data []byte, perm os.FileMode) {
	b.t.Helper()
	b.check(os.MkdirAll(filepath.Dir(b.p(rel)), 0o755))
	b.check(os.WriteFile(b.p(rel), data, 0o600))
	b.check(os.Chmod(b.p(rel), perm))
}

func (b *treeBuilder) random(n int) []byte {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(b.rnd.Uint32())
	}
	return buf
}

func (b *treeBuilder) basics() {
	b.file("etc/passwd", []byte("root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n"), 0o644)
	b.file("etc/group", []byte("root:x:0:\nuser:x:1000:\nodd:x:77:\n"), 0o644)
	b.file("etc/hostname", []byte("oracle\n"), 0o644)
	b.file("etc/shadow", []byte("root:*:19000:0:99999:7:::\n"), 0o640)
	b.file("empty", nil, 0o644)
	b.mkdir("emptydir", 0o755)
	b.file("name with spaces & ünïcödé", []byte("odd name\n"), 0o644)
	b.file(strings.Repeat("L", 255), []byte("longest name\n"), 0o644)
}

// sizes writes files around the block and inline-data boundaries.
func (b *treeBuilder) sizes() {
	for _, n := range []int{1, 59, 60, 61, 100, 1023, 1024, 1025, 2048, 4095, 4096, 4097,
		12*1024 + 1, 65535, 65536, 65537, 300*1024 + 7, 3<<20 + 5} {
		b.file(fmt.Sprintf("sizes/f%07d", n), b.random(n), 0o644)
	}
}

// holes writes files with holes at the start, middle and end; mkfs -d
// keeps holes (it copies with SEEK_DATA/SEEK_HOLE).
func (b *treeBuilder) holes(noTrailing bool) {
	b.mkdir("data", 0o755)
	write := func(rel string, size int64, pieces map[int64][]byte) {
		f, err := os.Create(b.p(rel))
		b.check(err)
		for off, d := range pieces {
			_, err := f.WriteAt(d, off)
			b.check(err)
		}
		b.check(f.Truncate(size))
		b.check(f.Close())
	}
	write("data/hole-middle", 3<<20, map[int64][]byte{0: b.random(5000), 2 << 20: b.random(70000), 3<<20 - 3: []byte("end")})
	write("data/hole-start", 1<<20+10, map[int64][]byte{1 << 20: []byte("0123456789")})
	if !noTrailing {
		write("data/hole-end", 8<<20, map[int64][]byte{0: b.random(4096)})
		write("data/all-hole", 1<<20, nil)
	}
	write("data/sparse-5g", sparseSize, map[int64][]byte{0: b.random(8192), sparseDataOff: b.random(70000), sparseSize - 5: []byte("tail!")})
}

func (b *treeBuilder) links() {
	b.mkdir("links", 0o755)
	b.file("links/target", []byte("linked content\n"), 0o644)
	b.check(os.Link(b.p("links/target"), b.p("links/hard1")))
	b.check(os.Link(b.p("links/target"), b.p("etc/hard2")))
	syms := map[string]string{
		"links/fast-rel":  "target",
		"links/fast-abs":  "/etc/passwd",
		"links/up":        "../etc/hostname",
		"links/dir":       "../sizes",
		"links/dangling":  "does/not/exist",
		"links/loop-a":    "loop-b",
		"links/loop-b":    "loop-a",
		"links/self":      "self",
		"links/escape":    "../../../../../../etc/passwd",
		"links/slow-60":   strings.Repeat("s", 60),
		"links/fast-59":   strings.Repeat("f", 59),
		"links/slow-long": "/" + strings.Repeat("abcdefgh/", 100) + "end",
		"links/slow-1000": strings.Repeat("x/", 499) + "yz", // must fit a 1 KiB block
		"links/to-dangle": "dangling",
		"links/chain":     "fast-abs",
	}
	for name, target := range syms {
		b.check(os.Symlink(target, b.p(name)))
	}
}

func (b *treeBuilder) specials() {
	b.mkdir("dev", 0o755)
	b.check(unix.Mkfifo(b.p("dev/fifo"), 0o640))
	b.check(unix.Mknod(b.p("dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	b.check(unix.Mknod(b.p("dev/sda"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 0))))
	b.check(unix.Mknod(b.p("dev/big-major"), unix.S_IFCHR|0o600, int(unix.Mkdev(300, 70000))))
	b.file("bin/setuid", []byte("#!/bin/sh\n"), 0o4755)
	b.file("bin/setgid", []byte("#!/bin/sh\n"), 0o2711)
	b.mkdir("tmp", 0o1777)
	b.mkdir("shared", 0o2775)
	b.file("perm/000", []byte("x"), 0)
	b.file("perm/7777", []byte("x"), 0o7777)
}

func (b *treeBuilder) owners() {
	b.file("home/user/.profile", []byte("export PS1='$ '\n"), 0o600)
	b.check(os.Chown(b.p("home/user"), 1000, 1000))
	b.check(os.Chown(b.p("home/user/.profile"), 1000, 1000))
	b.file("odd/owned", []byte("odd owner\n"), 0o640)
	b.check(os.Chown(b.p("odd"), 4242, 77))
	b.check(os.Chown(b.p("odd/owned"), 4242, 77))
	b.check(os.Symlink("owned", b.p("odd/link")))
	b.check(os.Lchown(b.p("odd/link"), 4242, 77))
	b.file("odd/big-ids", []byte("ids over 65535\n"), 0o644)
	b.check(os.Chown(b.p("odd/big-ids"), 100000, 200000))
}

// xattrs sets attributes that fit every layout: on 1 KiB blocks the
// in-inode space and one xattr block must hold them.
func (b *treeBuilder) xattrs() {
	b.file("xattr/file", []byte("has attributes\n"), 0o644)
	set := func(rel, name string, val []byte) {
		b.t.Helper()
		b.check(unix.Lsetxattr(b.p(rel), name, val, 0))
	}
	set("xattr/file", "user.small", []byte("v"))
	set("xattr/file", "user.empty", nil)
	set("xattr/file", "user.binary", b.random(64))
	set("xattr/file", "user.medium", bytes.Repeat([]byte("m"), 600))
	set("xattr/file", "trusted.oracle", []byte("trusted value"))
	set("xattr", "user.on-dir", []byte("dir attr"))
	b.file("xattr/shared1", []byte("1"), 0o644)
	b.file("xattr/shared2", []byte("2"), 0o644)
	set("xattr/shared1", "user.same", bytes.Repeat([]byte("s"), 300))
	set("xattr/shared2", "user.same", bytes.Repeat([]byte("s"), 300))
}

func (b *treeBuilder) deep() {
	rel := "deep"
	for i := range deepDepth {
		rel = filepath.Join(rel, fmt.Sprintf("d%02d", i))
	}
	b.file(filepath.Join(rel, "leaf.txt"), []byte("bottom\n"), 0o644)
}

// many fills /many with n hard links to one file (hard links keep mkfs -d
// from allocating n inodes); names vary in length so entries do too.
func (b *treeBuilder) many(n int) {
	b.file("many/0-target", []byte("one of many\n"), 0o644)
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("e%06d%s", i, strings.Repeat("n", i%23))
		b.check(os.Link(b.p("many/0-target"), b.p("many/"+name)))
	}
}

// casefoldDir fills /cf with names that stay distinct after folding;
// the image builder sets EXT4_CASEFOLD_FL on it (see casefoldFixup).
func (b *treeBuilder) casefoldDir() {
	b.mkdir("cf", 0o755)
	for i := range cfEntries {
		b.file(fmt.Sprintf("cf/Mixed_Case_Name_%03d.TXT", i), []byte(fmt.Sprintf("cf %d\n", i)), 0o644)
	}
	b.file("cf/Straße", []byte("strasse\n"), 0o644)
	b.file("cf/Émile", []byte("emile\n"), 0o644)
}
