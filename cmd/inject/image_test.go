package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// extImage makes an 8 MiB ext4 image of the demo guest with mkfs.ext4 -d,
// preceded by lead bytes of zeros, and returns its path.
func extImage(t *testing.T, lead int64) string {
	t.Helper()
	src := guestDir(t)
	must(t, os.Symlink("/etc/os-release", filepath.Join(src, "root/release")))
	fsImg := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", src, fsImg, "8M")
	if lead == 0 {
		return fsImg
	}
	body, err := os.ReadFile(fsImg)
	must(t, err)
	img := filepath.Join(t.TempDir(), "disk.img")
	must(t, os.WriteFile(img, append(make([]byte, lead), body...), 0o644))
	return img
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return sha256.Sum256(b)
}

func TestImageCatAndLs(t *testing.T) {
	img := extImage(t, 0)
	sum := fileSum(t, img)
	out, errOut, code := cli("cat", img, "/etc/passwd", "/root/release")
	wantCode(t, code, exitOK, errOut)
	want := readHost(t, filepath.Join(demoGuest, "etc/passwd")) + readHost(t, filepath.Join(demoGuest, "etc/os-release"))
	if out != want {
		t.Errorf("cat from image %q", out)
	}
	out, errOut, code = cli("ls", "-l", img, "/")
	wantCode(t, code, exitOK, errOut)
	for _, re := range []string{`(?m)^drwx------ +0 +0 +\d+ root$`, `(?m)^drwxr-xr-x +0 +0 +\d+ etc$`, `(?m)^drwx------ +0 +0 +\d+ lost\+found$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ls -l / lacks %s:\n%s", re, out)
		}
	}
	out, errOut, code = cli("ls", "-l", img, "/root")
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, " release -> /etc/os-release\n") {
		t.Errorf("ls -l /root:\n%s", out)
	}
	if fileSum(t, img) != sum {
		t.Error("reading changed the image")
	}
}

// TestImageDryRunOpensReadOnly: a dry run plans against the image and
// leaves every byte of it alone.
func TestImageDryRunOpensReadOnly(t *testing.T) {
	img := extImage(t, 0)
	sum := fileSum(t, img)
	out, errOut, code := cli("--dry-run", "--key", demoKeyFile, "--root-password", "password:x", img)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "keys     planned /root/.ssh/authorized_keys") || !strings.Contains(out, "    replace   /etc/shadow (") {
		t.Errorf("dry run on image:\n%s", out)
	}
	if fileSum(t, img) != sum {
		t.Error("image changed")
	}
}

func TestImageOffset(t *testing.T) {
	const lead = 1 << 20
	img := extImage(t, lead)
	out, errOut, code := cli("cat", "--offset", strconv.Itoa(lead), img, "/etc/hostname")
	wantCode(t, code, exitOK, errOut)
	if out != "demo-guest\n" {
		t.Errorf("cat %q", out)
	}
	out, errOut, code = cli("ls", img, "--offset", "0x100000", "/home")
	wantCode(t, code, exitOK, errOut)
	if out != "debian\n" {
		t.Errorf("ls %q", out)
	}
	_, errOut, code = cli("cat", img, "/etc/hostname")
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "no guest root filesystem found") || !strings.Contains(errOut, "whole disk: unrecognised") || !strings.Contains(errOut, img) {
		t.Errorf("stderr %q", errOut)
	}
	_, errOut, code = cli("cat", "--offset", "99999999999", img, "/etc/hostname")
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "outside") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestTargetNotFileOrDir(t *testing.T) {
	_, errOut, code := cli("cat", "/dev/null", "/etc/passwd")
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "/dev/null") {
		t.Errorf("stderr %q", errOut)
	}
}
