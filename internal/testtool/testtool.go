// Package testtool gives tests the reference tools they use as oracles
// (e2fsck, debugfs, mkfs.ext4, qemu-img, sfdisk, sgdisk). A missing tool
// fails the test loudly: CI installs them all, and a test that skipped
// silently there would prove nothing.
package testtool

import (
	"bytes"
	"os/exec"
	"testing"
)

// Need returns the path of each named tool, failing the test if one is
// not installed. It names the Debian package that provides it.
func Need(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			// Debian keeps e2fsprogs and fdisk tools in /sbin and /usr/sbin.
			for _, dir := range []string{"/usr/sbin/", "/sbin/"} {
				if p2, err2 := exec.LookPath(dir + n); err2 == nil {
					p, err = p2, nil
					break
				}
			}
		}
		if err != nil {
			t.Fatalf("reference tool %q is missing (install Debian package %s; .ci/run does): %v", n, Package(n), err)
		}
		paths[i] = p
	}
	return paths
}

// Package names the Debian package that ships a reference tool.
func Package(tool string) string {
	switch tool {
	case "mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "mke2fs", "e2fsck", "debugfs", "dumpe2fs", "tune2fs", "e2image":
		return "e2fsprogs"
	case "qemu-img", "qemu-io", "qemu-nbd":
		return "qemu-utils"
	case "mkswap", "blkid":
		return "util-linux"
	case "sfdisk", "fdisk":
		return "fdisk"
	case "sgdisk", "gdisk":
		return "gdisk"
	case "growpart":
		return "cloud-guest-utils"
	case "guestfish", "virt-customize":
		return "libguestfs-tools"
	case "qemu-system-x86_64":
		return "qemu-system-x86"
	case "debootstrap":
		return "debootstrap"
	}
	return "?"
}

// Run runs a reference tool and returns its combined output, failing the
// test with that output if it exits non-zero.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	p := Need(t, name)[0]
	cmd := exec.Command(p, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return out.Bytes()
}

// Output runs a reference tool and returns its combined output and exit
// status without failing the test on a non-zero status.
func Output(t testing.TB, name string, args ...string) ([]byte, int) {
	t.Helper()
	p := Need(t, name)[0]
	cmd := exec.Command(p, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.Bytes(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.Bytes(), 0
}
