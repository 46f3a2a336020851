package inject

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// layout is a guest's network-related files: path -> content, "->TARGET"
// for a symlink, "" with a trailing "/" in the path for a directory, and
// "-" to remove the demo guest's file.
type layout map[string]string

func osRel(id, like, version string) string {
	return "ID=" + id + "\nID_LIKE=\"" + like + "\"\nVERSION_ID=\"" + version + "\"\n"
}

const (
	unitLink = "->/usr/lib/systemd/system/x.service"
	nmWants  = "/etc/systemd/system/multi-user.target.wants/NetworkManager.service"
	ndWants  = "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
)

// Guests as the distributions ship them, reduced to what detection reads.
var (
	ubuntu = layout{
		"/etc/os-release": osRel("ubuntu", "debian", "24.04"), InterfacesPath: "-",
		"/usr/sbin/netplan": "bin", "/usr/lib/systemd/systemd-networkd": "bin", ndWants: unitLink,
		"/etc/netplan/50-cloud-init.yaml": "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n",
	}
	fedora = layout{
		"/etc/os-release": osRel("fedora", "", "40"), InterfacesPath: "-",
		"/usr/sbin/NetworkManager": "bin", nmWants: unitLink,
		"/etc/NetworkManager/system-connections/cloud-init-eth0.nmconnection": "[connection]\nid=cloud-init eth0\ninterface-name=eth0\n",
	}
	rhel8 = layout{
		"/etc/os-release": osRel("rhel", "fedora", "8.9"), InterfacesPath: "-",
		"/usr/sbin/NetworkManager": "bin", nmWants: unitLink,
		"/etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nBOOTPROTO=dhcp\n",
		"/etc/sysconfig/network-scripts/ifcfg-eth1": "DEVICE=eth1\nBOOTPROTO=dhcp\n",
	}
	rocky9 = layout{
		"/etc/os-release": osRel("rocky", "rhel centos fedora", "9.3"), InterfacesPath: "-",
		"/usr/sbin/NetworkManager": "bin", nmWants: unitLink,
		"/etc/sysconfig/network-scripts/readme-ifcfg-rh.txt": "moved to keyfiles\n",
	}
	arch = layout{
		"/etc/os-release": osRel("arch", "", ""), InterfacesPath: "-",
		"/usr/lib/systemd/systemd-networkd": "bin", ndWants: unitLink,
		"/etc/systemd/network/20-wired.network": "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n",
	}
	suse = layout{
		"/etc/os-release": osRel("opensuse-leap", "suse opensuse", "15.5"), InterfacesPath: "-",
		"/usr/sbin/wicked": "bin", "/etc/systemd/system/network.service": "->/usr/lib/systemd/system/wicked.service",
		"/etc/sysconfig/network/ifcfg-lo":   "STARTMODE=nfsroot\n",
		"/etc/sysconfig/network/config":     "## Path: System\nNETCONFIG_DNS_POLICY=\"auto\"\nNETCONFIG_DNS_STATIC_SERVERS=\"\"\n",
		"/etc/sysconfig/network/ifcfg-eth0": "BOOTPROTO='dhcp'\n",
	}
	debian     = layout{"/sbin/ifup": "bin", "/etc/systemd/system/multi-user.target.wants/networking.service": unitLink}
	debianDHCP = layout{"/sbin/ifup": "bin", InterfacesPath: "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n"}
	alpine     = layout{"/etc/os-release": osRel("alpine", "", "3.20.0"), "/sbin/ifupdown": "bin", "/sbin/ifup": "->ifupdown",
		"/usr/libexec/ifupdown-ng/link":  "#!/bin/sh\n",
		"/etc/network/interfaces.d/eth0": "auto eth0\niface eth0 inet dhcp\n"}
	debianDesktop = layout{"/sbin/ifup": "bin", "/usr/sbin/NetworkManager": "bin", nmWants: unitLink,
		"/etc/systemd/system/dbus-org.freedesktop.NetworkManager.service": unitLink}
	nmMasked = layout{"/sbin/ifup": "bin", "/usr/sbin/NetworkManager": "bin", nmWants: unitLink,
		"/etc/systemd/system/NetworkManager.service": "->/dev/null"}
	nothing     = layout{InterfacesPath: "-"}
	twoPassive  = layout{"/etc/netplan/01-netcfg.yaml": "network: {version: 2}\n"}
	networkdBad = layout{"/etc/os-release": osRel("arch", "", ""), InterfacesPath: "-",
		"/usr/lib/systemd/systemd-networkd": "bin", ndWants: unitLink,
		"/etc/systemd/network/00-all.network": "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n"}
)

// setup lays l over the demo guest in fsys.
func (l layout) setup(t *testing.T, fsys vfs.FS) {
	t.Helper()
	for p, c := range l {
		switch {
		case c == "-":
			must(t, fsys.(vfs.Remover).Remove(p))
		case strings.HasSuffix(p, "/"):
			must(t, fsys.MakePath(strings.TrimSuffix(p, "/")))
		case strings.HasPrefix(c, "->"):
			must(t, fsys.MakePath(path.Dir(p)))
			must(t, fsys.(vfs.Symlinker).Symlink(c[2:], p))
		default:
			must(t, fsys.MakePath(path.Dir(p)))
			must(t, fsys.ReplaceFile(p, []byte(c)))
		}
	}
}

var eth0 = []Interface{{Name: "eth0", Address: pfx("192.0.2.10/24"), Gateway: addr("192.0.2.1"),
	DNS: []netip.Addr{addr("192.0.2.53")}, Search: []string{"example.com"}}}

// TestDetectAndApplyPerDistribution detects each distribution's stack,
// writes the interface in its format, with the mode and owner it expects,
// and reports the choice, the files replaced and the ones left alone.
func TestDetectAndApplyPerDistribution(t *testing.T) {
	cases := []struct {
		name     string
		l        layout
		format   NetFormat
		file     string
		mode     fs.FileMode
		reason   string // in the reason
		replaced []string
		also     []string // prefixes of AlsoConfigured entries
	}{
		{"ubuntu", ubuntu, FormatNetplan, NetplanPath, 0o600, "also active: networkd", nil, []string{"/etc/netplan/50-cloud-init.yaml"}},
		{"fedora", fedora, FormatNetworkManager, nmPath("eth0"), 0o600, "enabled: " + nmWants, nil, []string{"/etc/NetworkManager/system-connections/cloud-init-eth0.nmconnection"}},
		{"rhel8", rhel8, FormatIfcfg, ifcfgDir + "/ifcfg-eth0", 0o644, "reads ifcfg files first", []string{ifcfgDir + "/ifcfg-eth0"}, nil},
		{"rocky9", rocky9, FormatNetworkManager, nmPath("eth0"), 0o600, "installed and enabled", nil, nil},
		{"arch", arch, FormatNetworkd, networkdPath("eth0"), 0o644, "enabled: " + ndWants, nil, []string{"/etc/systemd/network/20-wired.network"}},
		{"opensuse", suse, FormatWicked, wickedDir + "/ifcfg-eth0", 0o600, "wicked.service", []string{wickedDir + "/ifcfg-eth0", wickedConfig}, nil},
		{"debian", debian, FormatIfupdown, InterfacesPath, 0o644, "installed: /sbin/ifup", []string{InterfacesPath}, nil},
		{"debian-eth0-dhcp", debianDHCP, FormatIfupdown, InterfacesPath, 0o644, "installed: /sbin/ifup", []string{InterfacesPath + ` (its stanzas ["auto eth0" "iface eth0 inet dhcp"])`}, nil},
		{"alpine", alpine, FormatIfupdown, InterfacesPath, 0o644, "installed: /sbin/ifup", []string{InterfacesPath}, []string{"/etc/network/interfaces.d/eth0"}},
		{"debian-desktop", debianDesktop, FormatNetworkManager, nmPath("eth0"), 0o600, "also active: ifupdown", nil, nil},
		{"nm-masked", nmMasked, FormatIfupdown, InterfacesPath, 0o644, "installed: /sbin/ifup", []string{InterfacesPath}, nil},
		{"demo-guest", layout{}, FormatIfupdown, InterfacesPath, 0o644, "only ifupdown's files were found", []string{InterfacesPath}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachGuest(t, func(t *testing.T, g guest) {
				c.l.setup(t, g.fs)
				oldENI, _, err := readGuestOptional(g.fs, InterfacesPath)
				must(t, err)
				rep, err := Apply(g.fs, &Data{Network: &Network{Interfaces: eth0}}, nil)
				must(t, err)
				nr := rep.Items[0].Network
				if nr == nil || nr.Format != c.format || !strings.Contains(nr.Reason, c.reason) {
					t.Fatalf("network report %+v, want format %s, reason with %q", nr, c.format, c.reason)
				}
				if rep.Items[0].Path != c.file || !strings.Contains(rep.Items[0].Summary, string(c.format)) {
					t.Errorf("item %+v", rep.Items[0])
				}
				files, err := renderFiles(c.format, eth0, nil)
				must(t, err)
				if c.format == FormatIfupdown {
					files[0].data, _ = MergeInterfaces(oldENI, eth0)
				}
				if c.format != FormatWicked { // wicked's config is an edit of the guest's own
					for _, f := range files {
						if got := read(t, g.fs, f.path); got != string(f.data) {
							t.Errorf("%s = %q, want %q", f.path, got, f.data)
						}
					}
				}
				wantAttr(t, g.fs, c.file, c.mode, 0, 0)
				if strings.Join(nr.Replaced, " ") != strings.Join(c.replaced, " ") {
					t.Errorf("replaced %v, want %v", nr.Replaced, c.replaced)
				}
				if len(nr.AlsoConfigured) != len(c.also) {
					t.Errorf("also configured %v, want %v", nr.AlsoConfigured, c.also)
				}
				for i := range c.also {
					if i < len(nr.AlsoConfigured) && !strings.HasPrefix(nr.AlsoConfigured[i], c.also[i]) {
						t.Errorf("also configured %v, want %v", nr.AlsoConfigured, c.also)
					}
				}
			})
		})
	}
}

// TestWickedDNSKeepsConfig: SUSE's DNS is global; only netconfig's two
// static keys change, every other line of the config file stays.
func TestWickedDNSKeepsConfig(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		suse.setup(t, g.fs)
		_, err := Apply(g.fs, &Data{Network: &Network{Interfaces: eth0}}, nil)
		must(t, err)
		want := "## Path: System\nNETCONFIG_DNS_POLICY=\"auto\"\nNETCONFIG_DNS_STATIC_SERVERS=\"192.0.2.53\"\nNETCONFIG_DNS_STATIC_SEARCHLIST=\"example.com\"\n"
		if got := read(t, g.fs, wickedConfig); got != want {
			t.Errorf("config = %q, want %q", got, want)
		}
		if got := read(t, g.fs, wickedDir+"/ifroute-eth0"); !strings.Contains(got, "default 192.0.2.1 - eth0\n") {
			t.Errorf("ifroute-eth0 = %q", got)
		}
	})
}

// TestNetworkRefusals: an undetectable stack, an ambiguous one, a
// networkd file that would shadow ours, a verbatim interfaces(5) file for
// a guest that does not read one, and wicked's unsupported mix are
// refused before anything is written.
func TestNetworkRefusals(t *testing.T) {
	mixed := []Interface{{Name: "eth0", DHCP: true, IPv6: IPv6{Address: pfx("2001:db8::2/64")}}}
	cases := []struct {
		name string
		l    layout
		n    *Network
		want error
	}{
		{"nothing to detect", nothing, &Network{Interfaces: eth0}, ErrNetworkStackUnknown},
		{"two stacks none active", twoPassive, &Network{Interfaces: eth0}, ErrNetworkStackUnknown},
		{"networkd file sorts first", networkdBad, &Network{Interfaces: eth0}, ErrNetworkConflict},
		{"verbatim on NetworkManager", fedora, &Network{Verbatim: []byte("auto eth0\n")}, ErrInvalidNetwork},
		{"verbatim forced netplan", layout{}, &Network{Verbatim: []byte("auto eth0\n"), Format: FormatNetplan}, ErrInvalidNetwork},
		{"wicked mixed dhcp and static", suse, &Network{Interfaces: mixed}, ErrInvalidNetwork},
		{"unknown format", layout{}, &Network{Interfaces: eth0, Format: "systemd"}, ErrInvalidNetwork},
		{"NetworkManager IPv6 name server on IPv4 only", fedora, &Network{Interfaces: []Interface{{Name: "eth0", DHCP: true, DNS: []netip.Addr{addr("2001:db8::53")}}}}, ErrInvalidNetwork},
		{"ifcfg IPv4 name server on IPv6 only", rhel8, &Network{Interfaces: []Interface{{Name: "eth0", IPv6: IPv6{DHCP: true}, DNS: []netip.Addr{addr("192.0.2.53")}}}}, ErrInvalidNetwork},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachGuest(t, func(t *testing.T, g guest) {
				c.l.setup(t, g.fs)
				before := snapshot(t, g.fs)
				for _, run := range []func(vfs.FS, *Data, *Options) (*Report, error){Plan, Apply} {
					rep, err := run(g.fs, &Data{Network: c.n, Meta: map[string]string{"a": "b"}}, nil)
					wantErr(t, err, c.want)
					if ie := findItemError(err, KindNetwork); ie == nil {
						t.Errorf("error %v is not the network item's", err)
					}
					if rep.Items[0].Status != StatusFailed || rep.Items[1].Status != StatusSkipped {
						t.Errorf("report %+v", rep.Items)
					}
				}
				if after := snapshot(t, g.fs); after != before {
					t.Errorf("guest changed:\n%s\nwant\n%s", after, before)
				}
			})
		})
	}
}

// TestNetFormatGiven: a given format is written whatever the guest
// looks like, and reported as given.
func TestNetFormatGiven(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		nothing.setup(t, g.fs)
		rep, err := Apply(g.fs, &Data{Network: &Network{Interfaces: eth0, Format: FormatNetworkd}}, nil)
		must(t, err)
		if nr := rep.Items[0].Network; nr.Format != FormatNetworkd || !strings.Contains(nr.Reason, "--net-format networkd") || len(nr.Candidates) != 0 {
			t.Errorf("%+v", nr)
		}
		if got := read(t, g.fs, networkdPath("eth0")); got != string(RenderNetworkd(&eth0[0])) {
			t.Errorf("got %q", got)
		}
		wantAttr(t, g.fs, "/etc/systemd/network", 0o755, 0, 0)
	})
}

// TestDetectNetFormatCandidates: every stack found is listed with its
// evidence, the active ones marked.
func TestDetectNetFormatCandidates(t *testing.T) {
	g := memGuest(t)
	ubuntu.setup(t, g)
	d, err := DetectNetFormat(g)
	must(t, err)
	if len(d.Candidates) != 2 || d.Candidates[0].Format != FormatNetplan || !d.Candidates[0].Active ||
		d.Candidates[1].Format != FormatNetworkd || !d.Candidates[1].Active {
		t.Errorf("%+v", d)
	}
	// The demo guest's interfaces file (ifupdown not installed) beside an
	// active netplan: netplan is chosen, the other named in the reason.
	g = memGuest(t)
	layout{"/usr/sbin/netplan": "bin", "/etc/netplan/": ""}.setup(t, g)
	d, err = DetectNetFormat(g)
	must(t, err)
	if d.Format != FormatNetplan || !strings.Contains(d.Reason, "also found, not installed and enabled: ifupdown (/etc/network/interfaces exists)") {
		t.Errorf("%+v", d)
	}
	g = memGuest(t)
	nothing.setup(t, g)
	if _, err := DetectNetFormat(g); !errors.Is(err, ErrNetworkStackUnknown) {
		t.Errorf("error %v", err)
	}
}

// TestIfupdownNGHWAddress: ifupdown-ng (Alpine) hands hwaddress to "ip
// link set address" as written, so its guests get the MAC without
// Debian's "ether" word (which would fail the link); the dialect is
// reported. An "interface" stanza (ifupdown-ng's alias of iface) naming
// the interface is replaced too.
func TestIfupdownNGHWAddress(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		alpine.setup(t, g.fs)
		must(t, g.fs.ReplaceFile(InterfacesPath, []byte("auto lo\niface lo inet loopback\n\nauto eth0\ninterface eth0\n    use dhcp\n")))
		ifs := []Interface{{Name: "eth0", DHCP: true, HWAddr: mac("52:54:00:12:34:56")}}
		rep, err := Apply(g.fs, &Data{Network: &Network{Interfaces: ifs}}, nil)
		must(t, err)
		want := "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n    hwaddress 52:54:00:12:34:56\n"
		if got := read(t, g.fs, InterfacesPath); got != want {
			t.Errorf("interfaces = %q, want %q", got, want)
		}
		if nr := rep.Items[0].Network; !strings.HasPrefix(nr.Dialect, "ifupdown-ng (") || !strings.Contains(rep.Items[0].Summary, "for ifupdown-ng") {
			t.Errorf("report %+v", rep.Items[0])
		}
	})
}

// TestNetworkScanBudget: the conflict scan reads at most maxProbeBytes in
// all; a guest with more NetworkManager profiles than that is refused
// (ErrTooLarge), not read whole, and is left unchanged.
func TestNetworkScanBudget(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		fedora.setup(t, g.fs)
		big := []byte("[connection]\nid=x\n#" + strings.Repeat("x", maxProbeFile-32) + "\n")
		for i := 0; i <= maxProbeBytes/len(big); i++ {
			must(t, g.fs.ReplaceFile(fmt.Sprintf("%s/big%02d.nmconnection", nmDir, i), big))
		}
		before := snapshot(t, g.fs)
		_, err := Apply(g.fs, &Data{Network: &Network{Interfaces: eth0}}, nil)
		wantErr(t, err, ErrTooLarge)
		if snapshot(t, g.fs) != before {
			t.Error("guest changed")
		}
	})
}
