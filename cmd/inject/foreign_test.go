package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// TestReadVerbsOpenForeignFormats: cat, ls and inspect read VMDK, VHD,
// VHDX and VDI images directly; an injection into one, its dry run too, is
// refused (exit 1) with a message pointing at `inject import`, and the
// file is left unchanged.
func TestReadVerbsOpenForeignFormats(t *testing.T) {
	img := extImage(t, 0)
	dir := t.TempDir()
	for _, c := range []struct{ name, format, opt, shown string }{
		{"d.vmdk", "vmdk", "subformat=streamOptimized", "vmdk"},
		{"f.vmdk", "vmdk", "subformat=monolithicFlat", "vmdk"},
		{"d.vhd", "vpc", "subformat=dynamic", "vhd"},
		{"d.vhdx", "vhdx", "subformat=dynamic", "vhdx"},
		{"d.vdi", "vdi", "static=off", "vdi"},
	} {
		p := filepath.Join(dir, c.name)
		testtool.Convert(t, img, p, c.format, c.opt)
		sum := fileSum(t, p)
		out, errOut, code := cli("cat", p, "/etc/passwd")
		wantCode(t, code, exitOK, errOut)
		if out != readHost(t, filepath.Join(demoGuest, "etc/passwd")) {
			t.Errorf("%s: cat /etc/passwd = %q", c.name, out)
		}
		out, errOut, code = cli("ls", p, "/etc")
		wantCode(t, code, exitOK, errOut)
		if !strings.Contains(out, "passwd") {
			t.Errorf("%s: ls /etc = %q", c.name, out)
		}
		out, errOut, code = cli("inspect", p)
		wantCode(t, code, exitOK, errOut)
		if !strings.Contains(out, c.shown) {
			t.Errorf("%s: inspect does not name %s:\n%s", c.name, c.shown, out)
		}
		key := filepath.Join(demoGuest, "..", "demo-key.pub")
		for _, dry := range []bool{false, true} {
			args := []string{"--key", key, p}
			if dry {
				args = append([]string{"--dry-run"}, args...)
			}
			_, errOut, code = cli(args...)
			wantCode(t, code, exitFail, errOut)
			if !strings.Contains(errOut, "inject import") {
				t.Errorf("%s (dry run %v): refusal does not point at inject import: %s", c.name, dry, errOut)
			}
		}
		if fileSum(t, p) != sum {
			t.Errorf("%s changed", c.name)
		}
	}
}
