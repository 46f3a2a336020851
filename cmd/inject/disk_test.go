package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject/diskimage"
	"github.com/guestinject/guestinject/internal/testtool"
)

func TestImageFlagUsageErrors(t *testing.T) {
	img := extImage(t, 0)
	dir := guestDir(t)
	for name, args := range map[string][]string{
		"bad format":             {"cat", "--format", "vmdk", img, "/etc/passwd"},
		"bad backing":            {"ls", "--backing", "sometimes", img, "/"},
		"partition zero":         {"cat", "--partition", "0", img, "/etc/passwd"},
		"partition word":         {"--partition", "root", "--meta", "a=b", img},
		"offset and partition":   {"cat", "--offset", "0", "--partition", "1", img, "/etc/passwd"},
		"size on a directory":    {"--size", "1G", "--meta", "a=b", dir},
		"size with offset":       {"--size", "1G", "--offset", "0", "--meta", "a=b", img},
		"bad size":               {"--overlay", "x.qcow2", "--size", "12Q", "--meta", "a=b", img},
		"zero size":              {"--overlay", "x.qcow2", "--size", "0", "--meta", "a=b", img},
		"format on a directory":  {"cat", "--format", "raw", dir, "/etc/passwd"},
		"partition on directory": {"--partition", "1", "--meta", "a=b", dir},
		"overlay on a directory": {"--overlay", filepath.Join(t.TempDir(), "o.qcow2"), "--meta", "a=b", dir},
		"inspect two images":     {"inspect", img, img},
		"inspect a directory":    {"inspect", dir},
		"inspect with offset":    {"inspect", "--offset", "0", img},
	} {
		_, errOut, code := cli(args...)
		if code != exitUsage || !strings.Contains(errOut, "--help") {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "4K": 4 << 10, "20G": 20 << 30, "1T": 1 << 40, "3MiB": 3 << 20, "2g": 2 << 30, "7GB": 7 << 30, "1.5G": 3 << 29, "0.5K": 512, "2.25M": 9 << 18} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "0", "1.3K", "1.5", "1e3", "1/2G", "1P", "99999999T", "x"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// qcowImage converts the demo guest image to qcow2.
func qcowImage(t *testing.T) (raw, qcow string) {
	t.Helper()
	raw = extImage(t, 0)
	qcow = filepath.Join(t.TempDir(), "disk.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow)
	return raw, qcow
}

func TestInspectTextAndJSON(t *testing.T) {
	_, qcow := qcowImage(t)
	out, errOut, code := cli("inspect", qcow)
	wantCode(t, code, exitOK, errOut)
	for _, want := range []string{"format:         qcow2 (version 3, cluster 64 KiB", "virtual size:   8 MiB",
		"partition table: none", "filesystem on whole disk: ext4 UUID ", "clean: yes; journal: internal",
		"guest root:     whole disk: Debian GNU/Linux 12 (bookworm) (id debian, version 12)"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	out, errOut, code = cli("inspect", "--json", qcow)
	wantCode(t, code, exitOK, errOut)
	var r diskimage.Report
	must(t, json.Unmarshal([]byte(out), &r))
	if r.Format != "qcow2" || r.VirtualSize != 8<<20 || r.Qcow2 == nil || r.Qcow2.ClusterSize != 64<<10 ||
		len(r.Partitions) != 1 || r.Partitions[0].Filesystem == nil || r.Root == nil || r.Root.OSID != "debian" {
		t.Errorf("inspect --json:\n%s", out)
	}
	_, errOut, code = cli("inspect", "--partition", "3", qcow)
	wantCode(t, code, exitOK, errOut) // the table is still described; the root says why not
	out, _, _ = cli("inspect", "--partition", "3", qcow)
	if !strings.Contains(out, "guest root:     none: ") {
		t.Errorf("inspect --partition 3:\n%s", out)
	}
}

func TestFormatOverride(t *testing.T) {
	_, qcow := qcowImage(t)
	// Read as raw, a qcow2 file holds no ext filesystem.
	_, errOut, code := cli("cat", "--format", "raw", qcow, "/etc/hostname")
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, qcow) || !strings.Contains(errOut, "no guest root") {
		t.Errorf("stderr %q", errOut)
	}
	out, errOut, code := cli("cat", "--format", "qcow2", qcow, "/etc/hostname")
	wantCode(t, code, exitOK, errOut)
	if out != "demo-guest\n" {
		t.Errorf("cat %q", out)
	}
}

func TestBackingPolicyFlags(t *testing.T) {
	raw, _ := qcowImage(t)
	over := filepath.Join(t.TempDir(), "over.qcow2") // another directory: the base's name is absolute
	testtool.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", raw, over)
	for _, args := range [][]string{{"cat", over, "/etc/hostname"}, {"cat", "--backing", "deny", over, "/etc/hostname"}} {
		_, errOut, code := cli(args...)
		wantCode(t, code, exitFail, errOut)
		if !strings.Contains(errOut, "backing file denied") || !strings.Contains(errOut, "--backing allow") {
			t.Errorf("%v: stderr %q", args, errOut)
		}
	}
	out, errOut, code := cli("cat", "--backing", "allow", over, "/etc/hostname")
	wantCode(t, code, exitOK, errOut)
	if out != "demo-guest\n" {
		t.Errorf("cat through the overlay: %q", out)
	}
	out, errOut, code = cli("inspect", "--backing", "allow", over)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "backing chain:  1. "+raw+" (raw, 8 MiB)") {
		t.Errorf("inspect:\n%s", out)
	}
}

// TestImageInUse: an image another process holds for writing is refused
// by every verb, with an error saying so, and nothing is written.
func TestImageInUse(t *testing.T) {
	img := extImage(t, 0)
	holder, err := formats.Open(img, formats.Options{})
	must(t, err)
	defer holder.Close()
	sum := fileSum(t, img)
	for _, args := range [][]string{
		{"cat", img, "/etc/hostname"}, {"ls", img, "/"}, {"inspect", img},
		{"--meta", "a=b", img}, {"--dry-run", "--meta", "a=b", img},
		{"--overlay", filepath.Join(t.TempDir(), "o.qcow2"), "--meta", "a=b", img},
	} {
		_, errOut, code := cli(args...)
		wantCode(t, code, exitFail, errOut)
		if !strings.Contains(errOut, "image is in use") || !strings.Contains(errOut, img) {
			t.Errorf("%v: stderr %q", args, errOut)
		}
	}
	if fileSum(t, img) != sum {
		t.Error("image changed")
	}
}

// TestOverlayRefusals: a size smaller than the base, an existing overlay
// path, or a failed injection leave no overlay behind and the base as it was.
func TestOverlayRefusals(t *testing.T) {
	_, qcow := qcowImage(t)
	sum := fileSum(t, qcow)
	dir := t.TempDir()
	over := filepath.Join(dir, "vm.qcow2")
	_, errOut, code := cli("--overlay", over, "--size", "4M", "--meta", "a=b", qcow)
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "size smaller than the base") || !strings.Contains(errOut, qcow) {
		t.Errorf("too small: %q", errOut)
	}
	if _, err := os.Stat(over); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("too small left %s: %v", over, err)
	}
	// A dry run checks the request and creates nothing.
	out, errOut, code := cli("--dry-run", "--overlay", over, "--size", "16M", "--meta", "a=b", qcow)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "planned /meta.js") {
		t.Errorf("dry run: %s", out)
	}
	out, errOut, code = cli("--json", "--dry-run", "--overlay", over, "--meta", "a=b", qcow)
	wantCode(t, code, exitOK, errOut)
	var r jsonReport
	must(t, json.Unmarshal([]byte(out), &r))
	if r.Filesystem != qcow+" (whole disk)" || r.Overlay != "" || !r.OK {
		t.Errorf("dry run --json: %s", out)
	}
	if _, err := os.Stat(over); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run created %s: %v", over, err)
	}
	// An injection that fails after the overlay was made removes it.
	_, errOut, code = cli("--overlay", over, "--key", demoKeyFile, "--key-user", "nobody-here", qcow)
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "removed the overlay "+over) || !strings.Contains(errOut, "nobody-here") {
		t.Errorf("failed injection: %q", errOut)
	}
	if _, err := os.Stat(over); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed injection left %s: %v", over, err)
	}
	// An existing file is never overwritten.
	must(t, os.WriteFile(over, []byte("mine"), 0o644))
	_, errOut, code = cli("--overlay", over, "--meta", "a=b", qcow)
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "file already exists") || readHost(t, over) != "mine" {
		t.Errorf("existing overlay path: %q", errOut)
	}
	if fileSum(t, qcow) != sum {
		t.Error("the base changed")
	}
}

// TestHostileAndUnsupportedImages: a backing path of /etc/shadow is
// denied by the default policy, and an empty vmdk is read as a vmdk (not
// as raw: no filesystem in it) and refused for writing.
func TestHostileAndUnsupportedImages(t *testing.T) {
	dir := t.TempDir()
	shadow := filepath.Join(dir, "shadow.qcow2")
	testtool.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", "/etc/shadow", shadow, "8M")
	for _, args := range [][]string{{"cat", shadow, "/etc/passwd"}, {"--meta", "a=b", shadow}} {
		_, errOut, code := cli(args...)
		wantCode(t, code, exitFail, errOut)
		if !strings.Contains(errOut, "backing file denied") || !strings.Contains(errOut, "/etc/shadow") {
			t.Errorf("%v: %q", args, errOut)
		}
	}
	// inspect describes the image and reports the denied backing file.
	out, errOut, code := cli("inspect", shadow)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, `backing file:   "/etc/shadow", not opened:`) || !strings.Contains(out, "backing file denied") {
		t.Errorf("inspect:\n%s", out)
	}
	vmdk := filepath.Join(dir, "disk.vmdk")
	testtool.Run(t, "qemu-img", "create", "-q", "-f", "vmdk", vmdk, "8M")
	sum := fileSum(t, vmdk)
	_, errOut, code = cli("ls", vmdk, "/")
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "no guest root filesystem") {
		t.Errorf("ls of an empty vmdk: %q", errOut)
	}
	out, errOut, code = cli("inspect", vmdk)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "format:         vmdk") {
		t.Errorf("inspect of an empty vmdk:\n%s", out)
	}
	_, errOut, code = cli("--meta", "a=b", vmdk)
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "vmdk") || !strings.Contains(errOut, "inject import") {
		t.Errorf("injection into a vmdk: %q", errOut)
	}
	if fileSum(t, vmdk) != sum {
		t.Error("the vmdk changed")
	}
}
