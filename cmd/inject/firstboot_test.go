package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// TestFirstbootOnExtImage: --firstboot and --firstboot-command in order
// on an ext image, with the systemd unit's wants link and the sysvinit
// links, e2fsck clean afterwards.
func TestFirstbootOnExtImage(t *testing.T) {
	img := extImage(t, 0)
	script := writeTemp(t, "hello.sh", "#!/bin/sh\necho hello\n")
	_, errOut, code := cli("--mkdir", "/etc/systemd/system", "--mkdir", "/etc/init.d",
		"--firstboot", script, "--firstboot-command", "echo two", img)
	wantCode(t, code, exitOK, errOut)
	e2fsckClean(t, img)
	out, errOut, code := cli("ls", "-l", img, "/usr/lib/virt-sysprep/scripts")
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "0001-hello-sh") || !strings.Contains(out, "0002-echo-two") || !strings.Contains(out, "-rwxr-xr-x") {
		t.Errorf("scripts:\n%s", out)
	}
	out, _, _ = cli("ls", "-l", img, "/etc/systemd/system/multi-user.target.wants")
	if !strings.Contains(out, "guestfs-firstboot.service -> /usr/lib/systemd/system/guestfs-firstboot.service") {
		t.Errorf("wants link:\n%s", out)
	}
	out, _, _ = cli("ls", "-l", img, "/etc/rc3.d")
	if !strings.Contains(out, "S99guestfs-firstboot -> ../init.d/guestfs-firstboot") {
		t.Errorf("rc3.d:\n%s", out)
	}
}

// TestSELinuxRelabelFlag: on a guest directory with Debian's policy the
// injected authorized_keys carries matchpathcon's label, on an ext image
// too (read back by debugfs), e2fsck clean.
func TestSELinuxRelabelFlag(t *testing.T) {
	dir := guestDir(t)
	must(t, os.MkdirAll(filepath.Join(dir, "etc/selinux/default/contexts/files"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "etc/selinux/config"), []byte("SELINUXTYPE=default\n"), 0o644))
	b, err := os.ReadFile("/etc/selinux/default/contexts/files/file_contexts")
	if err != nil {
		t.Fatalf("Debian's selinux-policy-default must be installed: %v", err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "etc/selinux/default/contexts/files/file_contexts"), b, 0o644))
	b, err = os.ReadFile("/etc/selinux/default/contexts/files/file_contexts.homedirs")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "etc/selinux/default/contexts/files/file_contexts.homedirs"), b, 0o644))
	out, errOut, code := cli("--dry-run", "--selinux-relabel", "--key", demoKeyFile, dir)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "modify    /root/.ssh/authorized_keys (label unconfined_u:object_r:ssh_home_t:s0)") {
		t.Errorf("dry run plan lacks the label:\n%s", out)
	}
	img := extImage(t, 0)
	_, errOut, code = cli("--selinux-relabel", "--mkdir", "/etc/selinux/default/contexts/files", "--upload",
		"/etc/selinux/default/contexts/files/file_contexts:/etc/selinux/default/contexts/files/file_contexts",
		"--upload", "/etc/selinux/default/contexts/files/file_contexts.homedirs:/etc/selinux/default/contexts/files/file_contexts.homedirs",
		"--write", "/etc/selinux/config:SELINUXTYPE=default", "--key", demoKeyFile, img)
	wantCode(t, code, exitOK, errOut)
	e2fsckClean(t, img)
	ea, code := testtool.Output(t, "debugfs", "-R", "ea_get /root/.ssh/authorized_keys security.selinux", img)
	if code != 0 || !strings.Contains(string(ea), `security.selinux (36) = "unconfined_u:object_r:ssh_home_t:s0\000"`) {
		t.Errorf("debugfs ea_get (exit %d):\n%s", code, ea)
	}
}
