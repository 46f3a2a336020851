package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// layout is a raw test disk: how to build it, and where its guest root is.
type layout struct {
	name   string
	scheme string // inspect's partition_table.scheme
	root   int    // partition number of the guest root (0: whole disk)
	start  int64  // byte offset of the root filesystem
	size   int64  // bytes of the root filesystem
	build  func(t *testing.T, img string, withFS bool)
}

// The four partitionings the issue names. build writes the table and,
// with withFS, the filesystems (a guest root, plus swap and a data
// filesystem where the layout has them).
var layouts = []layout{
	{name: "whole", scheme: "none", root: 0, start: 0, size: 48 * mib, build: buildWhole},
	{name: "mbr", scheme: "mbr", root: 1, start: 2048 * 512, size: 40 * mib, build: buildMBR},
	{name: "mbr-logical", scheme: "mbr", root: 6, start: 55296 * 512, size: 20 * mib, build: buildLogical},
	{name: "gpt", scheme: "gpt", root: 3, start: 34816 * 512, size: 24 * mib, build: buildGPT},
}

func layoutNamed(name string) layout {
	for _, l := range layouts {
		if l.name == name {
			return l
		}
	}
	panic("no layout " + name)
}

func buildWhole(t *testing.T, img string, withFS bool) {
	emptyFile(t, img, 48*mib)
	if withFS {
		mkfsAt(t, img, 0, 48*mib, guestTree(t, "whole"))
	}
}

func buildMBR(t *testing.T, img string, withFS bool) {
	emptyFile(t, img, 48*mib)
	runStdin(t, "label: dos\nstart=2048, size=40M, type=83, bootable\n", "sfdisk", "--no-reread", "--no-tell-kernel", "-q", img)
	if withFS {
		mkfsAt(t, img, 2048*512, 40*mib, guestTree(t, "mbr"))
	}
}

// buildLogical: a data filesystem on 1, an extended partition 2 holding
// swap on 5 and the guest root on 6.
func buildLogical(t *testing.T, img string, withFS bool) {
	emptyFile(t, img, 64*mib)
	runStdin(t, "label: dos\n"+
		"start=2048, size=16M, type=83\n"+
		"start=34816, size=40M, type=5\n"+
		"start=36864, size=8M, type=82\n"+
		"start=55296, size=20M, type=83\n", "sfdisk", "--no-reread", "--no-tell-kernel", "-q", img)
	if withFS {
		mkfsAt(t, img, 2048*512, 16*mib, dataTree(t))
		mkswapAt(t, img, 36864*512, 8*mib)
		mkfsAt(t, img, 55296*512, 20*mib, guestTree(t, "mbr-logical"))
	}
}

// buildGPT (sgdisk): an empty EFI system partition, swap, the root.
func buildGPT(t *testing.T, img string, withFS bool) {
	emptyFile(t, img, 64*mib)
	testtool.Run(t, "sgdisk", "-o",
		"-n", "1:2048:+8M", "-t", "1:ef00", "-c", "1:EFI",
		"-n", "2:18432:+8M", "-t", "2:8200", "-c", "2:swap",
		"-n", "3:34816:+24M", "-t", "3:8300", "-c", "3:root", img)
	if withFS {
		mkswapAt(t, img, 18432*512, 8*mib)
		mkfsAt(t, img, 34816*512, 24*mib, guestTree(t, "gpt"))
	}
}

// disk builds the layout's raw disk in a new directory.
func (l layout) disk(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), l.name+".raw")
	l.build(t, img, true)
	return img
}

// container turns a raw disk into the image a test case works on.
type container struct {
	name  string
	chain int // backing files behind the image
	// make builds the image in dir from the raw disk and returns its path.
	make func(t *testing.T, l layout, raw, dir string) string
}

// qcow2With converts the raw disk to qcow2 with qemu-img convert args.
func qcow2With(args ...string) func(t *testing.T, l layout, raw, dir string) string {
	return func(t *testing.T, l layout, raw, dir string) string {
		out := filepath.Join(dir, "disk.qcow2")
		testtool.Run(t, "qemu-img", append(append([]string{"convert", "-q", "-f", "raw", "-O", "qcow2"}, args...), raw, out)...)
		return out
	}
}

var (
	rawContainer = container{name: "raw", make: func(t *testing.T, l layout, raw, dir string) string {
		return copyFile(t, raw, filepath.Join(dir, "disk.raw"))
	}}
	qcow2Container = container{name: "qcow2", make: qcow2With()}
	// overlay: an empty qcow2 overlay on a qcow2 base beside it.
	overlayContainer = container{name: "overlay", chain: 1, make: func(t *testing.T, l layout, raw, dir string) string {
		base := qcow2With()(t, l, raw, dir)
		must(t, os.Rename(base, filepath.Join(dir, "base.qcow2")))
		top := filepath.Join(dir, "top.qcow2")
		testtool.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", top)
		return top
	}}
	chain3Container = container{name: "chain3", chain: 2, make: makeChain3}
)

// makeChain3 builds raw <- qcow2 <- qcow2 where every layer holds part of
// the disk: base.raw has the partition table only, mid.qcow2 the
// filesystems (qemu-img convert -B stores only what differs from the
// base), top.qcow2 one more file written by debugfs.
func makeChain3(t *testing.T, l layout, raw, dir string) string {
	base := filepath.Join(dir, "base.raw")
	l.build(t, base, false)
	mid := filepath.Join(dir, "mid.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-B", "base.raw", "-F", "raw", raw, mid)
	third := copyFile(t, raw, filepath.Join(t.TempDir(), "third.raw"))
	src := filepath.Join(t.TempDir(), "layer")
	must(t, os.WriteFile(src, []byte("third layer\n"), 0o644))
	testtool.Run(t, "debugfs", "-w", "-R", "write "+src+" /etc/layer3", fsAt(third, l.start))
	top := filepath.Join(dir, "top.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-B", "mid.qcow2", "-F", "qcow2", third, top)
	return top
}

// qcow2Variants are the qcow2 options the issue lists, each one built on
// the GPT layout.
var qcow2Variants = []container{
	{name: "compat0.10", make: qcow2With("-o", "compat=0.10")},
	{name: "cluster512", make: qcow2With("-o", "cluster_size=512")},
	{name: "cluster2M", make: qcow2With("-o", "cluster_size=2M")},
	{name: "refcount1", make: qcow2With("-o", "refcount_bits=1")},
	{name: "refcount64", make: qcow2With("-o", "refcount_bits=64")},
	{name: "extended_l2", make: qcow2With("-o", "extended_l2=on")},
	{name: "compressed", make: qcow2With("-c")},
	{name: "zstd", make: qcow2With("-c", "-o", "compression_type=zstd")},
	{name: "lazy_refcounts", make: qcow2With("-o", "lazy_refcounts=on")},
	{name: "snapshot", make: func(t *testing.T, l layout, raw, dir string) string {
		img := qcow2With()(t, l, raw, dir)
		testtool.Run(t, "qemu-img", "snapshot", "-c", "before", img)
		return img
	}},
}
