package main

import (
	"strings"
	"testing"
)

// TestSysprepOnExtImage: the default operations and a customisation on an
// ext image, in one transaction, e2fsck clean; an unknown operation is a
// usage error that leaves the image unchanged.
func TestSysprepOnExtImage(t *testing.T) {
	img := extImage(t, 0)
	_, errOut, code := cli("--mkdir", "/etc/ssh", "--write", "/etc/ssh/ssh_host_rsa_key:k", "--write", "/etc/machine-id:0123",
		"--mkdir", "/tmp", "--write", "/tmp/junk:x", "--write", "/root/.bash_history:ls", img)
	wantCode(t, code, exitOK, errOut)
	sum := fileSum(t, img)
	_, errOut, code = cli("sysprep", "--operations", "machine-id,nosuch", img)
	if code != exitUsage || !strings.Contains(errOut, `"nosuch"`) || fileSum(t, img) != sum {
		t.Fatalf("unknown operation: code %d, %s", code, errOut)
	}
	_, errOut, code = cli("sysprep", "--operations", "machine-id", "--write", "/etc/motd:x", img)
	if code != exitUsage || !strings.Contains(errOut, "customize") || fileSum(t, img) != sum {
		t.Fatalf("customisation without customize: code %d, %s", code, errOut)
	}
	out, errOut, code := cli("sysprep", "--json", "--hostname", "clone1", img)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, `"op": "--sysprep ssh-hostkeys"`) {
		t.Errorf("report:\n%s", out)
	}
	e2fsckClean(t, img)
	out, _, _ = cli("ls", img, "/etc/ssh")
	if strings.Contains(out, "ssh_host_rsa_key") {
		t.Errorf("host key left: %s", out)
	}
	out, _, _ = cli("ls", img, "/tmp")
	if strings.TrimSpace(out) != "" {
		t.Errorf("/tmp not emptied: %q", out)
	}
	out, errOut, code = cli("cat", img, "/etc/machine-id", "/etc/hostname")
	wantCode(t, code, exitOK, errOut)
	if out != "clone1\n" {
		t.Errorf("machine-id + hostname: %q", out)
	}
	// keys given to sysprep land after ssh-userdir removed the old ones
	_, errOut, code = cli("--ssh-inject", "root:string:"+otherKey, img)
	wantCode(t, code, exitOK, errOut)
	_, errOut, code = cli("sysprep", "--ssh-inject", "root:file:"+demoKeyFile, img)
	wantCode(t, code, exitOK, errOut)
	e2fsckClean(t, img)
	out, _, _ = cli("cat", img, "/root/.ssh/authorized_keys")
	if out != readHost(t, demoKeyFile) {
		t.Errorf("authorized_keys after sysprep: %q", out)
	}
	out, errOut, code = cli("sysprep", "--list-operations")
	wantCode(t, code, exitOK, errOut)
	for _, name := range []string{"machine-id *", "ssh-hostkeys *", "random-seed *", "customize *", "net-hwaddr *"} {
		if !strings.Contains(out, name) {
			t.Errorf("--list-operations lacks %q:\n%s", name, out)
		}
	}
	out, _, code = cli("help", "sysprep")
	if code != exitOK || !strings.Contains(out, "--operations LIST") || !strings.Contains(out, "package-manager-cache *") {
		t.Errorf("help sysprep:\n%s", out)
	}
}
