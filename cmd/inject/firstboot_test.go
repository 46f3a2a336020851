package main

import (
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
