package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/internal/testtool"
)

// fedoraDir turns a demo guest directory into a Fedora-like one:
// NetworkManager installed and enabled, no /etc/network/interfaces.
func fedoraDir(t *testing.T) string {
	t.Helper()
	src := guestDir(t)
	must(t, os.Remove(filepath.Join(src, "etc/network/interfaces")))
	must(t, os.WriteFile(filepath.Join(src, "etc/os-release"), []byte("ID=fedora\nVERSION_ID=40\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(src, "usr/sbin"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "usr/sbin/NetworkManager"), []byte("bin"), 0o755))
	wants := filepath.Join(src, "etc/systemd/system/multi-user.target.wants")
	must(t, os.MkdirAll(wants, 0o755))
	must(t, os.Symlink("/usr/lib/systemd/system/NetworkManager.service", filepath.Join(wants, "NetworkManager.service")))
	return src
}

const fedoraIP = "eth0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53,search=example.com,mtu=1400,route=10.0.0.0/8 via 192.0.2.254"

// TestImageNetworkManagerKeyfile: on an ext4 image of a Fedora-like guest
// --ip is detected as NetworkManager and written as a keyfile, 0600
// root:root, that debugfs reads back; e2fsck is clean; --json says which
// format was chosen and why.
func TestImageNetworkManagerKeyfile(t *testing.T) {
	src := fedoraDir(t)
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", src, img, "8M")
	out, errOut, code := cli("--json", "--ip", fedoraIP, img)
	if !injected(t, code, errOut) {
		return
	}
	var rep struct {
		Items []struct {
			Path    string
			Network struct {
				Format, Reason string
				Files          []string
			}
		}
	}
	must(t, json.Unmarshal([]byte(out), &rep))
	keyfile := "/etc/NetworkManager/system-connections/guestinject-eth0.nmconnection"
	if len(rep.Items) != 1 || rep.Items[0].Path != keyfile || rep.Items[0].Network.Format != "networkmanager" ||
		!strings.Contains(rep.Items[0].Network.Reason, "/usr/sbin/NetworkManager") {
		t.Fatalf("json report:\n%s", out)
	}
	e2fsckClean(t, img)
	ifc, err := parseIP(fedoraIP)
	must(t, err)
	if got := debugfsCat(t, img, keyfile); got != string(inject.RenderKeyfile(&ifc)) {
		t.Errorf("keyfile read back by debugfs:\n%s", got)
	}
	wantStat(t, img, keyfile, "regular", 0o600, 0, 0)
	wantStat(t, img, "/etc/NetworkManager/system-connections", "directory", 0o755, 0, 0)
}

// TestDirNetFormatGiven: --net-format writes that format into a guest
// directory whatever it looks like, and the text report says so.
func TestDirNetFormatGiven(t *testing.T) {
	dir := guestDir(t)
	out, errOut, code := cli("--net-format", "netplan", "--ip", "eth0=dhcp,ip6=dhcp", dir)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "rendered as netplan; chosen because given (--net-format netplan)") {
		t.Errorf("report:\n%s", out)
	}
	p := filepath.Join(dir, "etc/netplan/90-guestinject.yaml")
	if got := readHost(t, p); !strings.Contains(got, "dhcp4: true\n      dhcp6: true\n") {
		t.Errorf("netplan file:\n%s", got)
	}
	if mode, _, _ := hostAttr(t, p); mode.Perm() != 0o600 {
		t.Errorf("netplan file mode %v, want 0600", mode)
	}
}

// TestDirNetUndetectable: a guest without any network stack is refused,
// the error points at --net-format, and nothing is written.
func TestDirNetUndetectable(t *testing.T) {
	dir := guestDir(t)
	must(t, os.Remove(filepath.Join(dir, "etc/network/interfaces")))
	before := tree(t, dir)
	_, errOut, code := cli("--meta", "a=b", "--ip", "eth0=dhcp", dir)
	wantCode(t, code, exitFail, errOut)
	if !strings.Contains(errOut, "--net-format") || !strings.Contains(errOut, "network stack") {
		t.Errorf("stderr: %s", errOut)
	}
	if tree(t, dir) != before {
		t.Error("guest changed")
	}
}
