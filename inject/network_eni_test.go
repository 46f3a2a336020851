package inject

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ifquery runs Debian's ifquery (package ifupdown) on an interfaces file:
// the oracle of the interfaces(5) grammar. args are ifquery's.
func ifquery(t *testing.T, file string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("ifquery")
	if err != nil {
		t.Fatalf("ifquery not found (Debian package ifupdown): %v", err)
	}
	cmd := exec.Command(bin, append([]string{"-i", file, "--state-dir", t.TempDir()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ifquery %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func writeTmp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "interfaces")
	must(t, os.WriteFile(p, data, 0o644))
	return p
}

// TestENIIfqueryOracle: ifupdown's own parser reads every rendered file,
// lists lo and the interfaces as auto, and reports each option the model
// asks for.
func TestENIIfqueryOracle(t *testing.T) {
	for _, c := range goldenNetworks {
		t.Run(c.name, func(t *testing.T) {
			f := writeTmp(t, RenderInterfaces(c.ifs))
			want := "lo\n"
			for _, ifc := range c.ifs {
				want += ifc.Name + "\n"
			}
			if got := ifquery(t, f, "--list"); got != want {
				t.Errorf("--list: %q, want %q", got, want)
			}
			for i := range c.ifs {
				ifc := &c.ifs[i]
				got := ifquery(t, f, ifc.Name)
				var wants []string
				if ifc.Address.IsValid() {
					mask, _ := v4MaskBroadcast(ifc.Address)
					wants = append(wants, "address: "+ifc.Address.Addr().String(), "netmask: "+mask.String())
				}
				if ifc.Gateway.IsValid() {
					wants = append(wants, "gateway: "+ifc.Gateway.String())
				}
				if ifc.IPv6.Address.IsValid() {
					wants = append(wants, "address: "+ifc.IPv6.Address.Addr().String(), fmt.Sprintf("netmask: %d", ifc.IPv6.Address.Bits()))
				}
				if ifc.IPv6.Gateway.IsValid() {
					wants = append(wants, "gateway: "+ifc.IPv6.Gateway.String())
				}
				if ifc.HWAddr != nil {
					wants = append(wants, "hwaddress: "+ifc.HWAddr.String())
				}
				if len(ifc.DNS) > 0 {
					wants = append(wants, "dns-nameservers: "+joinAddrs(ifc.DNS, " "))
				}
				if len(ifc.Search) > 0 {
					wants = append(wants, "dns-search: "+strings.Join(ifc.Search, " "))
				}
				if ifc.MTU != 0 && ifc.DHCP {
					wants = append(wants, fmt.Sprintf("pre-up: ip link set dev %s mtu %d", ifc.Name, ifc.MTU))
				} else if ifc.MTU != 0 {
					wants = append(wants, fmt.Sprintf("mtu: %d", ifc.MTU))
				}
				for _, r := range ifc.Routes {
					six := ""
					if r.To.Addr().Is6() {
						six = "-6 "
					}
					wants = append(wants, fmt.Sprintf("up: ip %sroute add %s via %s dev %s", six, r.To, r.Via, ifc.Name))
				}
				for _, w := range wants {
					if !strings.Contains("\n"+got, "\n"+w+"\n") {
						t.Errorf("%s: ifquery lacks %q:\n%s", ifc.Name, w, got)
					}
				}
			}
		})
	}
}

// TestMergeInterfacesKeepsOthers: injecting eth0 into a file that also
// configures lo and eth1 (and includes a directory) replaces eth0's
// stanzas and its auto/allow-hotplug entries only; ifquery reads lo and
// eth1 exactly as before, and eth0 as rendered.
func TestMergeInterfacesKeepsOthers(t *testing.T) {
	old := []byte(`# interfaces(5) file used by ifup(8) and ifdown(8)
source-directory /etc/network/interfaces.d

auto lo eth0 eth1
iface lo inet loopback

allow-hotplug eth0
# the old uplink
iface eth0 inet dhcp
    hostname old
# IPv6 too

iface eth0 inet6 auto

# the storage network
iface eth1 inet static
    address 10.9.8.7/24
    mtu 9000
`)
	ifs := []Interface{{Name: "eth0", Address: pfx("192.0.2.10/24"), Gateway: addr("192.0.2.1"), MTU: 1400}}
	merged, removed := MergeInterfaces(old, ifs)
	wantRemoved := []string{"auto lo eth0 eth1", "allow-hotplug eth0", "iface eth0 inet dhcp", "iface eth0 inet6 auto"}
	if fmt.Sprint(removed) != fmt.Sprint(wantRemoved) {
		t.Errorf("removed %q, want %q", removed, wantRemoved)
	}
	fo, fm, fr := writeTmp(t, old), writeTmp(t, merged), writeTmp(t, RenderInterfaces(ifs))
	for _, name := range []string{"lo", "eth1"} {
		if a, b := ifquery(t, fo, name), ifquery(t, fm, name); a != b {
			t.Errorf("%s changed:\n%s\nwas\n%s", name, b, a)
		}
	}
	if a, b := ifquery(t, fr, "eth0"), ifquery(t, fm, "eth0"); a != b {
		t.Errorf("eth0 in the merged file:\n%s\nrendered alone:\n%s\nfile:\n%s", b, a, merged)
	}
	if got := ifquery(t, fm, "--list"); got != "lo\neth1\neth0\n" {
		t.Errorf("--list %q:\n%s", got, merged)
	}
	if got := ifquery(t, fm, "--list", "--allow", "hotplug"); got != "" {
		t.Errorf("--allow hotplug %q", got)
	}
	for _, keep := range []string{"source-directory /etc/network/interfaces.d\n", "# the old uplink\n", "# the storage network\n"} {
		if !strings.Contains(string(merged), keep) {
			t.Errorf("merged file lost %q:\n%s", keep, merged)
		}
	}
	// Merging again changes nothing: the stanzas are replaced, not added.
	again, _ := MergeInterfaces(merged, ifs)
	if string(again) != string(merged) {
		t.Errorf("second merge:\n%s\nfirst:\n%s", again, merged)
	}
}
