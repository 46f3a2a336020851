package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
// injected authorized_keys carries matchpathcon's label; on an ext image
// (whose engine cannot write xattrs yet) the run is refused, image
// unchanged.
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
	sum := fileSum(t, img)
	_, errOut, code = cli("--selinux-relabel", "--mkdir", "/etc/selinux/default/contexts/files", "--upload",
		"/etc/selinux/default/contexts/files/file_contexts:/etc/selinux/default/contexts/files/file_contexts",
		"--write", "/etc/selinux/config:SELINUXTYPE=default", "--key", demoKeyFile, img)
	if code == exitOK {
		e2fsckClean(t, img)
		t.Log("the ext engine writes xattrs now")
	} else if fileSum(t, img) != sum || !strings.Contains(errOut, "extended attributes") {
		t.Errorf("refusal: code %d, stderr %q, image changed %v", code, errOut, fileSum(t, img) != sum)
	}
}
