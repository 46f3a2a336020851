package inject

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// renderAll renders a case in format f as one text: each file behind a
// "==> PATH (MODE) <==" line.
func renderAll(t *testing.T, f NetFormat, ifs []Interface) string {
	t.Helper()
	files, err := renderFiles(f, ifs, nil)
	if err != nil {
		return "refused: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, nf := range files {
		fmt.Fprintf(&b, "==> %s (%04o) <==\n%s", nf.path, nf.mode, nf.data)
	}
	return b.String()
}

// TestRenderFormatsGolden compares every case in every format other than
// ifupdown (TestRenderInterfacesGolden) with testdata/FORMAT/NAME.golden.
func TestRenderFormatsGolden(t *testing.T) {
	for _, f := range NetFormats {
		if f == FormatIfupdown {
			continue
		}
		for _, c := range goldenNetworks {
			t.Run(string(f)+"/"+c.name, func(t *testing.T) {
				must(t, ValidateInterfaces(c.ifs))
				got := renderAll(t, f, c.ifs)
				golden := filepath.Join("testdata", string(f), c.name+".golden")
				if *update {
					must(t, os.MkdirAll(filepath.Dir(golden), 0o755))
					must(t, os.WriteFile(golden, []byte(got), 0o644))
				}
				want, err := os.ReadFile(golden)
				must(t, err)
				if got != string(want) {
					t.Errorf("rendered:\n%s\nwant (%s):\n%s", got, golden, want)
				}
			})
		}
	}
}

// netSettings is what a networkd .network file configures, normalised so
// that two renderings of one model compare equal.
type netSettings struct {
	Match     []string // "MACAddress=..." or "Name=..."
	Addresses []string
	Routes    []string // "DEST via GW", default routes as 0.0.0.0/0 and ::/0
	DNS       []string
	Domains   []string
	DHCP      string
	MTU       string
}

// parseNetworkd parses a .network file strictly: only the sections and
// keys of systemd.network(5) this project writes or netplan generates, no
// key outside a section, no line that is not a comment, a section or
// KEY=VALUE.
func parseNetworkd(t *testing.T, name, text string) netSettings {
	t.Helper()
	var s netSettings
	section := ""
	var route map[string]string
	flush := func() {
		if route != nil {
			s.Routes = append(s.Routes, route["Destination"]+" via "+route["Gateway"])
			route = nil
		}
	}
	known := map[string]map[string]bool{
		"[Match]":        {"Name": true, "MACAddress": true, "PermanentMACAddress": true},
		"[Link]":         {"MTUBytes": true, "RequiredForOnline": true},
		"[Address]":      {"Address": true},
		"[Network]":      {"DHCP": true, "Address": true, "Gateway": true, "DNS": true, "Domains": true, "LinkLocalAddressing": true, "IPv6AcceptRA": true, "ConfigureWithoutCarrier": true},
		"[Route]":        {"Destination": true, "Gateway": true, "GatewayOnLink": true},
		"[DHCP]":         {"RouteMetric": true, "UseMTU": true},
		"[DHCPv4]":       {"RouteMetric": true, "UseMTU": true},
		"[DHCPv6]":       {"RouteMetric": true, "UseMTU": true},
		"[IPv6AcceptRA]": {"RouteMetric": true, "UseMTU": true},
	}
	for i, line := range strings.Split(text, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
			continue
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			flush()
			if known[l] == nil {
				t.Fatalf("%s:%d: unknown section %s", name, i+1, l)
			}
			section = l
			if l == "[Route]" {
				route = map[string]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || section == "" || !known[section][k] || v == "" || strings.TrimSpace(v) != v {
			t.Fatalf("%s:%d: bad line %q in %s", name, i+1, line, section)
		}
		switch {
		case section == "[Match]": // the permanent MAC is the one matched before a rename
			s.Match = append(s.Match, strings.TrimPrefix(k, "Permanent")+"="+strings.ToLower(v))
		case section == "[Link]" && k == "MTUBytes":
			s.MTU = v
		case section == "[Route]":
			route[k] = v
		case k == "DHCP":
			s.DHCP = v
		case k == "Address":
			s.Addresses = append(s.Addresses, v)
		case k == "Gateway":
			def := "0.0.0.0/0"
			if netip.MustParseAddr(v).Is6() {
				def = "::/0"
			}
			s.Routes = append(s.Routes, def+" via "+v)
		case k == "DNS":
			s.DNS = append(s.DNS, strings.Fields(v)...)
		case k == "Domains":
			s.Domains = append(s.Domains, strings.Fields(v)...)
		}
	}
	flush()
	for _, l := range [][]string{s.Match, s.Addresses, s.Routes, s.DNS} {
		sort.Strings(l)
	}
	if s.DHCP == "no" {
		s.DHCP = ""
	}
	return s
}

// TestNetworkdParsesAsModel parses each rendered .network file strictly
// and checks it says what the model says.
func TestNetworkdParsesAsModel(t *testing.T) {
	for _, c := range goldenNetworks {
		for i := range c.ifs {
			ifc := &c.ifs[i]
			got := parseNetworkd(t, c.name, string(RenderNetworkd(ifc)))
			want := modelSettings(ifc)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s/%s: parsed %+v, want %+v", c.name, ifc.Name, got, want)
			}
		}
	}
}

// modelSettings is what the networkd rendering of ifc must configure.
func modelSettings(ifc *Interface) netSettings {
	var s netSettings
	if ifc.HWAddr != nil {
		s.Match = []string{"MACAddress=" + ifc.HWAddr.String()}
	} else {
		s.Match = []string{"Name=" + strings.ToLower(ifc.Name)}
	}
	for _, p := range []netip.Prefix{ifc.Address, ifc.IPv6.Address} {
		if p.IsValid() {
			s.Addresses = append(s.Addresses, p.String())
		}
	}
	if ifc.Gateway.IsValid() {
		s.Routes = append(s.Routes, "0.0.0.0/0 via "+ifc.Gateway.String())
	}
	if ifc.IPv6.Gateway.IsValid() {
		s.Routes = append(s.Routes, "::/0 via "+ifc.IPv6.Gateway.String())
	}
	for _, r := range ifc.Routes {
		s.Routes = append(s.Routes, r.To.String()+" via "+r.Via.String())
	}
	s.DNS = addrStrings(ifc.DNS)
	s.Domains = ifc.Search
	switch {
	case ifc.DHCP && ifc.IPv6.DHCP:
		s.DHCP = "yes"
	case ifc.DHCP:
		s.DHCP = "ipv4"
	case ifc.IPv6.DHCP:
		s.DHCP = "ipv6"
	}
	if ifc.MTU != 0 {
		s.MTU = fmt.Sprint(ifc.MTU)
	}
	for _, l := range [][]string{s.Match, s.Addresses, s.Routes, s.DNS} {
		sort.Strings(l)
	}
	if len(s.DNS) == 0 {
		s.DNS = nil
	}
	return s
}

// TestNetplanGenerateOracle: netplan's own generator (Debian netplan.io)
// must accept every netplan file we write, and the systemd-networkd
// configuration it generates from it must say what our own networkd
// rendering of the same model says.
func TestNetplanGenerateOracle(t *testing.T) {
	netplan, err := exec.LookPath("netplan")
	if err != nil {
		t.Fatalf("netplan not found (Debian package netplan.io): %v", err)
	}
	for _, c := range goldenNetworks {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			must(t, os.MkdirAll(filepath.Join(root, "etc/netplan"), 0o755))
			yaml := filepath.Join(root, NetplanPath)
			must(t, os.WriteFile(yaml, RenderNetplan(c.ifs), 0o600))
			out, err := exec.Command(netplan, "generate", "--root-dir", root).CombinedOutput()
			if err != nil || strings.Contains(string(out), "WARNING") || strings.Contains(string(out), "rror") {
				t.Fatalf("netplan generate: %v\n%s\n%s", err, out, RenderNetplan(c.ifs))
			}
			for i := range c.ifs {
				ifc := &c.ifs[i]
				gen := filepath.Join(root, "run/systemd/network/10-netplan-"+ifc.Name+".network")
				b, err := os.ReadFile(gen)
				must(t, err)
				got := parseNetworkd(t, gen, string(b))
				want := parseNetworkd(t, "ours", string(RenderNetworkd(ifc)))
				if ifc.HWAddr != nil { // netplan matches the MAC and, after set-name, the name
					want.Match = append(want.Match, "Name="+ifc.Name)
					sort.Strings(want.Match)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: netplan generated\n%s\nparsed %+v\nours parsed %+v", ifc.Name, b, got, want)
				}
			}
		})
	}
}

// keyfile is a parsed NetworkManager keyfile: group -> key -> value.
type keyfile map[string]map[string]string

// parseKeyfile parses the GLib key file grammar NetworkManager reads:
// comments, [group] headers, KEY=VALUE lines with keys of letters,
// digits, '-' and '.', no key twice in a group, no group twice, nothing
// before the first group; values without control characters.
func parseKeyfile(t *testing.T, name, text string) keyfile {
	t.Helper()
	kf := keyfile{}
	group := ""
	keyRE := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)
	for i, line := range strings.Split(text, "\n") {
		switch {
		case line == "" || line[0] == '#':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || strings.ContainsAny(line[1:len(line)-1], "[]") {
				t.Fatalf("%s:%d: bad group line %q", name, i+1, line)
			}
			group = line[1 : len(line)-1]
			if kf[group] != nil {
				t.Fatalf("%s:%d: group %s twice", name, i+1, group)
			}
			kf[group] = map[string]string{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || group == "" || !keyRE.MatchString(k) || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' }) {
			t.Fatalf("%s:%d: bad line %q", name, i+1, line)
		}
		if _, dup := kf[group][k]; dup {
			t.Fatalf("%s:%d: key %s twice in [%s]", name, i+1, k, group)
		}
		kf[group][k] = v
	}
	return kf
}

// TestKeyfileGrammarAndModel parses every keyfile we render and checks
// each setting against nm-settings-keyfile(5)'s value forms and against
// the model.
func TestKeyfileGrammarAndModel(t *testing.T) {
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	allowed := map[string]map[string]bool{
		"connection": {"id": true, "uuid": true, "type": true, "interface-name": true, "autoconnect": true, "autoconnect-priority": true},
		"ethernet":   {"mac-address": true, "mtu": true},
		"ipv4":       {"method": true, "address1": true, "gateway": true, "dns": true, "dns-search": true},
		"ipv6":       {"method": true, "address1": true, "gateway": true, "dns": true, "dns-search": true},
	}
	uuids := map[string]string{}
	for _, c := range goldenNetworks {
		for i := range c.ifs {
			ifc := &c.ifs[i]
			kf := parseKeyfile(t, c.name, string(RenderKeyfile(ifc)))
			for g, kv := range kf {
				for k := range kv {
					if !allowed[g][k] && !regexp.MustCompile(`^route[1-9][0-9]*$`).MatchString(k) {
						t.Errorf("%s: unknown key [%s] %s", c.name, g, k)
					}
				}
			}
			con := kf["connection"]
			if !uuidRE.MatchString(con["uuid"]) || con["type"] != "ethernet" || con["id"] != ifc.Name {
				t.Errorf("%s: [connection] %v", c.name, con)
			}
			if prev, ok := uuids[ifc.Name]; ok && prev != con["uuid"] {
				t.Errorf("%s: uuid %s, earlier %s: not deterministic", ifc.Name, con["uuid"], prev)
			}
			uuids[ifc.Name] = con["uuid"]
			if (ifc.HWAddr == nil) != (con["interface-name"] == ifc.Name) || ifc.HWAddr != nil && !macIs(kf["ethernet"]["mac-address"], ifc.HWAddr) {
				t.Errorf("%s: device match %v %v", c.name, con, kf["ethernet"])
			}
			if ifc.MTU != 0 && kf["ethernet"]["mtu"] != fmt.Sprint(ifc.MTU) {
				t.Errorf("%s: mtu %v", c.name, kf["ethernet"])
			}
			var dns, search []string
			var routes []string
			for _, fam := range []struct {
				g    string
				addr netip.Prefix
				gw   netip.Addr
				dhcp bool
				none string
			}{{"ipv4", ifc.Address, ifc.Gateway, ifc.DHCP, "disabled"}, {"ipv6", ifc.IPv6.Address, ifc.IPv6.Gateway, ifc.IPv6.DHCP, "ignore"}} {
				s := kf[fam.g]
				want := fam.none
				switch {
				case fam.dhcp:
					want = "auto"
				case fam.addr.IsValid():
					want = "manual"
				}
				if s["method"] != want {
					t.Errorf("%s: [%s] method %q, want %q", c.name, fam.g, s["method"], want)
				}
				if fam.addr.IsValid() != (s["address1"] != "") || fam.addr.IsValid() && netip.MustParsePrefix(s["address1"]) != fam.addr {
					t.Errorf("%s: [%s] address1 %q, want %v", c.name, fam.g, s["address1"], fam.addr)
				}
				if fam.gw.IsValid() != (s["gateway"] != "") || fam.gw.IsValid() && netip.MustParseAddr(s["gateway"]) != fam.gw {
					t.Errorf("%s: [%s] gateway %q, want %v", c.name, fam.g, s["gateway"], fam.gw)
				}
				for _, k := range []string{"dns", "dns-search"} {
					if v, ok := s[k]; ok && !strings.HasSuffix(v, ";") {
						t.Errorf("%s: [%s] %s=%q is not a ;-terminated list", c.name, fam.g, k, v)
					}
				}
				for _, d := range strings.Split(strings.TrimSuffix(s["dns"], ";"), ";") {
					if d != "" {
						if a := netip.MustParseAddr(d); a.Is4() != (fam.g == "ipv4") {
							t.Errorf("%s: [%s] dns %s of the other family", c.name, fam.g, d)
						}
						dns = append(dns, d)
					}
				}
				if v := strings.TrimSuffix(s["dns-search"], ";"); v != "" {
					search = append(search, strings.Split(v, ";")...)
				}
				for k, v := range s {
					if strings.HasPrefix(k, "route") {
						to, via, _ := strings.Cut(v, ",")
						r := Route{netip.MustParsePrefix(to), netip.MustParseAddr(via)}
						if r.To.Addr().Is4() != (fam.g == "ipv4") {
							t.Errorf("%s: [%s] %s=%s of the other family", c.name, fam.g, k, v)
						}
						routes = append(routes, fmt.Sprint(r))
					}
				}
			}
			wantRoutes := []string{}
			for _, r := range ifc.Routes {
				wantRoutes = append(wantRoutes, fmt.Sprint(r))
			}
			sort.Strings(routes)
			sort.Strings(wantRoutes)
			wantDNS := append(addrStrings(split(ifc.DNS, true)), addrStrings(split(ifc.DNS, false))...)
			if fmt.Sprint(dns) != fmt.Sprint(wantDNS) || fmt.Sprint(search) != fmt.Sprint(ifc.Search) || fmt.Sprint(routes) != fmt.Sprint(wantRoutes) {
				t.Errorf("%s: dns %v search %v routes %v, want %v %v %v", c.name, dns, search, routes, wantDNS, ifc.Search, wantRoutes)
			}
		}
	}
}

// TestShellVarsSourceAsModel sources every ifcfg and wicked file we
// render with sh (they are shell variable files) and checks the values.
func TestShellVarsSourceAsModel(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	source := func(t *testing.T, data []byte, vars ...string) map[string]string {
		f := filepath.Join(t.TempDir(), "cfg")
		must(t, os.WriteFile(f, data, 0o644))
		script := "set -eu; . \"$1\"; shift; for v; do eval \"printf '%s=%s\\n' \\\"\\$v\\\" \\\"\\${$v-}\\\"\"; done"
		out, err := exec.Command(sh, append([]string{"-c", script, "sh", f}, vars...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("sh: %v\n%s\n%s", err, out, data)
		}
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(l, "=")
			m[k] = v
		}
		return m
	}
	for _, c := range goldenNetworks {
		for i := range c.ifs {
			ifc := &c.ifs[i]
			cfg, _, _ := RenderIfcfg(ifc)
			m := source(t, cfg, "DEVICE", "BOOTPROTO", "IPADDR", "PREFIX", "GATEWAY", "IPV6ADDR", "IPV6_DEFAULTGW", "DNS1", "DOMAIN", "MTU", "HWADDR", "DHCPV6C")
			want := map[string]string{"DEVICE": ifc.Name, "BOOTPROTO": "none", "IPADDR": "", "PREFIX": "", "GATEWAY": "", "IPV6ADDR": "", "IPV6_DEFAULTGW": "", "DNS1": "", "DOMAIN": strings.Join(ifc.Search, " "), "MTU": "", "HWADDR": "", "DHCPV6C": ""}
			if ifc.DHCP {
				want["BOOTPROTO"] = "dhcp"
			}
			if ifc.Address.IsValid() {
				want["IPADDR"], want["PREFIX"] = ifc.Address.Addr().String(), fmt.Sprint(ifc.Address.Bits())
			}
			if ifc.Gateway.IsValid() {
				want["GATEWAY"] = ifc.Gateway.String()
			}
			if ifc.IPv6.Address.IsValid() {
				want["IPV6ADDR"] = ifc.IPv6.Address.String()
			}
			if ifc.IPv6.DHCP {
				want["DHCPV6C"] = "yes"
			}
			if ifc.IPv6.Gateway.IsValid() {
				want["IPV6_DEFAULTGW"] = ifc.IPv6.Gateway.String()
			}
			if len(ifc.DNS) > 0 {
				want["DNS1"] = ifc.DNS[0].String()
			}
			if ifc.MTU != 0 {
				want["MTU"] = fmt.Sprint(ifc.MTU)
			}
			if ifc.HWAddr != nil {
				want["HWADDR"] = ifc.HWAddr.String()
			}
			if fmt.Sprint(m) != fmt.Sprint(want) {
				t.Errorf("%s/%s ifcfg: sourced %v, want %v", c.name, ifc.Name, m, want)
			}
			wcfg, _, err := RenderWicked(ifc)
			if err != nil {
				continue // mixed DHCP and static: refused, see the golden file
			}
			m = source(t, wcfg, "STARTMODE", "BOOTPROTO", "IPADDR", "IPADDR_1", "MTU")
			var addrs []string
			for _, p := range []netip.Prefix{ifc.Address, ifc.IPv6.Address} {
				if p.IsValid() {
					addrs = append(addrs, p.String())
				}
			}
			if m["STARTMODE"] != "auto" || strings.TrimSpace(m["IPADDR"]+" "+m["IPADDR_1"]) != strings.Join(addrs, " ") {
				t.Errorf("%s/%s wicked: sourced %v, want addresses %v", c.name, ifc.Name, m, addrs)
			}
		}
	}
	got := source(t, setShellVars([]byte("A=1\nNETCONFIG_DNS_STATIC_SERVERS=\"old\"\nB='x y'\nNETCONFIG_DNS_STATIC_SERVERS=\"older\""),
		map[string]string{"NETCONFIG_DNS_STATIC_SERVERS": "192.0.2.53 2001:db8::53", "NETCONFIG_DNS_STATIC_SEARCHLIST": "example.com"}),
		"A", "B", "NETCONFIG_DNS_STATIC_SERVERS", "NETCONFIG_DNS_STATIC_SEARCHLIST")
	if fmt.Sprint(got) != "map[A:1 B:x y NETCONFIG_DNS_STATIC_SEARCHLIST:example.com NETCONFIG_DNS_STATIC_SERVERS:192.0.2.53 2001:db8::53]" {
		t.Errorf("setShellVars: %v", got)
	}
}

// TestCloudInitCrossCheck: cloud-init's own renderer (Debian cloud-init,
// `cloud-init devel net-convert`) reads each netplan file we write as a
// network-config v2 and renders systemd-networkd files; they must say
// what our networkd rendering of the same model says.
func TestCloudInitCrossCheck(t *testing.T) {
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		t.Fatalf("cloud-init not found (Debian package cloud-init): %v", err)
	}
	for _, c := range goldenNetworks {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "network-config.yaml")
			must(t, os.WriteFile(in, RenderNetplan(c.ifs), 0o600))
			out := filepath.Join(dir, "out")
			cmd := exec.Command(ci, "devel", "net-convert", "-p", in, "-k", "yaml", "-d", out, "-D", "debian", "-O", "networkd")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("cloud-init net-convert: %v\n%s", err, b)
			}
			for i := range c.ifs {
				ifc := &c.ifs[i]
				gen := filepath.Join(out, "etc/systemd/network/10-cloud-init-"+ifc.Name+".network")
				b, err := os.ReadFile(gen)
				must(t, err)
				got := parseNetworkd(t, gen, string(b))
				want := parseNetworkd(t, "ours", string(RenderNetworkd(ifc)))
				if ifc.HWAddr != nil { // cloud-init matches the MAC and the set-name too
					want.Match = append(want.Match, "Name="+ifc.Name)
					sort.Strings(want.Match)
				}
				if gw := ifc.IPv6.Gateway; gw.IsValid() {
					// cloud-init 22.4 (bookworm) turns a v2 route to ::/0
					// into one to ::/64 (netplan itself keeps ::/0, see
					// TestNetplanGenerateOracle): a seed's network-config
					// must say gateway6 for it.
					for j, r := range got.Routes {
						if r == "::/64 via "+gw.String() {
							got.Routes[j] = "::/0 via " + gw.String()
						}
					}
					sort.Strings(got.Routes)
				}
				if !ifc.Address.IsValid() && !ifc.IPv6.Address.IsValid() {
					// cloud-init 22.4 renders name servers and search
					// domains for static subnets only.
					got.DNS, got.Domains, want.DNS, want.Domains = nil, nil, nil, nil
				}
				if len(got.Domains) == 0 {
					got.Domains = nil
				}
				if len(want.Domains) == 0 {
					want.Domains = nil
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: cloud-init rendered\n%s\nparsed %+v\nours parsed %+v", ifc.Name, b, got, want)
				}
			}
		})
	}
}

// TestCloudInitSysconfigCrossCheck: cloud-init's sysconfig renderer (RHEL
// flavour) makes ifcfg files from the same netplan file; sourced by sh,
// they must hold the values ours hold (cloud-init writes NETMASK where we
// write PREFIX, compared as a prefix length; routes are compared by the
// networkd cross-check, cloud-init writes them in the old ADDRESSn form).
func TestCloudInitSysconfigCrossCheck(t *testing.T) {
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		t.Fatalf("cloud-init not found (Debian package cloud-init): %v", err)
	}
	vars := []string{"BOOTPROTO", "DEVICE", "DNS1", "DNS2", "DOMAIN", "GATEWAY", "HWADDR", "IPADDR", "PREFIX", "NETMASK",
		"IPV6INIT", "IPV6ADDR", "DHCPV6C", "MTU", "ONBOOT"}
	script := "set -eu; . \"$1\"; shift; for v; do eval \"printf '%s=%s\\n' \\\"\\$v\\\" \\\"\\${$v-}\\\"\"; done"
	source := func(t *testing.T, file string) map[string]string {
		out, err := exec.Command("sh", append([]string{"-c", script, "sh", file}, vars...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("sh %s: %v\n%s", file, err, out)
		}
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(l, "=")
			m[k] = v
		}
		if m["NETMASK"] != "" { // as a prefix length
			m["PREFIX"] = fmt.Sprint(netip.MustParsePrefix(m["IPADDR"]+"/32").Bits() - 32 + bitsOfMask(t, m["NETMASK"]))
		}
		delete(m, "NETMASK")
		return m
	}
	for _, c := range goldenNetworks {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "network-config.yaml")
			must(t, os.WriteFile(in, RenderNetplan(c.ifs), 0o600))
			out := filepath.Join(dir, "out")
			if b, err := exec.Command(ci, "devel", "net-convert", "-p", in, "-k", "yaml", "-d", out, "-D", "rhel", "-O", "sysconfig").CombinedOutput(); err != nil {
				t.Fatalf("cloud-init net-convert: %v\n%s", err, b)
			}
			for i := range c.ifs {
				ifc := &c.ifs[i]
				theirs := source(t, filepath.Join(out, "etc/sysconfig/network-scripts/ifcfg-"+ifc.Name))
				cfg, _, _ := RenderIfcfg(ifc)
				mine := filepath.Join(dir, "ifcfg-"+ifc.Name)
				must(t, os.WriteFile(mine, cfg, 0o644))
				ours := source(t, mine)
				if ours["IPV6INIT"] == "no" { // initscripts' and ifcfg-rh's default
					ours["IPV6INIT"] = ""
				}
				if !ifc.Address.IsValid() && !ifc.IPv6.Address.IsValid() {
					// cloud-init 22.4 renders name servers and search
					// domains for static subnets only.
					for _, k := range []string{"DNS1", "DNS2", "DOMAIN"} {
						ours[k], theirs[k] = "", ""
					}
				}
				if fmt.Sprint(theirs) != fmt.Sprint(ours) {
					t.Errorf("%s: cloud-init's ifcfg %v\nours %v", ifc.Name, theirs, ours)
				}
			}
		})
	}
}

func bitsOfMask(t *testing.T, mask string) int {
	t.Helper()
	a := netip.MustParseAddr(mask).As4()
	n := 0
	for _, b := range a {
		for ; b != 0; b <<= 1 {
			n++
		}
	}
	return n
}

// TestNetplanOverridesCloudInitDHCP: on a guest whose cloud-init left
// 50-cloud-init.yaml with dhcp4: true for the interface, our later file's
// dhcp4: false wins in netplan's merge (netplan generate as the oracle),
// so the guest comes up static, not by DHCP. Sequences (addresses, name
// servers) are merged, which is why such files are reported.
func TestNetplanOverridesCloudInitDHCP(t *testing.T) {
	netplan, err := exec.LookPath("netplan")
	if err != nil {
		t.Fatalf("netplan not found (Debian package netplan.io): %v", err)
	}
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc/netplan"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/netplan/50-cloud-init.yaml"),
		[]byte("network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      dhcp6: true\n"), 0o600))
	ifs := []Interface{{Name: "eth0", Address: pfx("192.0.2.10/24"), Gateway: addr("192.0.2.1")}}
	must(t, os.WriteFile(filepath.Join(root, NetplanPath), RenderNetplan(ifs), 0o600))
	if out, err := exec.Command(netplan, "generate", "--root-dir", root).CombinedOutput(); err != nil {
		t.Fatalf("netplan generate: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(root, "run/systemd/network/10-netplan-eth0.network"))
	must(t, err)
	got := parseNetworkd(t, "generated", string(b))
	if got.DHCP != "" || fmt.Sprint(got.Addresses) != "[192.0.2.10/24]" || fmt.Sprint(got.Routes) != "[0.0.0.0/0 via 192.0.2.1]" {
		t.Errorf("generated:\n%s", b)
	}
}

// nmSettings reduces a keyfile to what configures the device: the match,
// the MTU, and per family the method, address, default gateway (gateway=
// or a route to the default network), name servers and other routes; the
// search domains of both sections as one list.
func nmSettings(kf keyfile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mac=%s mtu=%s", strings.ToLower(kf["ethernet"]["mac-address"]), kf["ethernet"]["mtu"])
	if kf["ethernet"]["mac-address"] == "" {
		fmt.Fprintf(&b, " name=%s", kf["connection"]["interface-name"])
	}
	search := map[string]bool{}
	for _, fam := range []string{"ipv4", "ipv6"} {
		s := kf[fam]
		method := s["method"]
		if method == "disabled" || method == "link-local" || method == "ignore" {
			method = "off"
		}
		gw := s["gateway"]
		var routes []string
		for k, v := range s {
			if !strings.HasPrefix(k, "route") || strings.Contains(k, "_") {
				continue
			}
			if to, via, _ := strings.Cut(v, ","); to == "0.0.0.0/0" || to == "::/0" {
				gw = via
			} else {
				routes = append(routes, v)
			}
		}
		sort.Strings(routes)
		fmt.Fprintf(&b, " %s[method=%s addr=%s gw=%s dns=%s routes=%v]", fam, method, s["address1"], gw, s["dns"], routes)
		for _, d := range strings.Split(s["dns-search"], ";") {
			if d != "" {
				search[d] = true
			}
		}
	}
	var ds []string
	for d := range search {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	fmt.Fprintf(&b, " search=%v", ds)
	return b.String()
}

// TestNetplanNetworkManagerOracle: on a netplan guest whose netplan
// renders for NetworkManager (Ubuntu desktop's 01-network-manager-all.yaml),
// netplan generate turns our netplan file into a keyfile that configures
// what our own keyfile rendering of the model configures.
func TestNetplanNetworkManagerOracle(t *testing.T) {
	netplan, err := exec.LookPath("netplan")
	if err != nil {
		t.Fatalf("netplan not found (Debian package netplan.io): %v", err)
	}
	for _, c := range goldenNetworks {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			must(t, os.MkdirAll(filepath.Join(root, "etc/netplan"), 0o755))
			must(t, os.WriteFile(filepath.Join(root, "etc/netplan/01-network-manager-all.yaml"), []byte("network:\n  version: 2\n  renderer: NetworkManager\n"), 0o600))
			must(t, os.WriteFile(filepath.Join(root, NetplanPath), RenderNetplan(c.ifs), 0o600))
			if out, err := exec.Command(netplan, "generate", "--root-dir", root).CombinedOutput(); err != nil {
				t.Fatalf("netplan generate: %v\n%s", err, out)
			}
			for i := range c.ifs {
				ifc := &c.ifs[i]
				gen := filepath.Join(root, "run/NetworkManager/system-connections/netplan-"+ifc.Name+".nmconnection")
				b, err := os.ReadFile(gen)
				must(t, err)
				theirs, ours := parseKeyfile(t, gen, string(b)), parseKeyfile(t, "ours", string(RenderKeyfile(ifc)))
				if ifc.HWAddr != nil {
					// netplan renames the MAC's device to the name (a
					// .link file) and matches the name; we match the MAC.
					if theirs["connection"]["interface-name"] != ifc.Name || !macIs(ours["ethernet"]["mac-address"], ifc.HWAddr) {
						t.Errorf("%s: netplan matches %v, we match %v", ifc.Name, theirs["connection"], ours["ethernet"])
					}
					delete(ours["ethernet"], "mac-address")
					ours["connection"]["interface-name"] = ifc.Name
				}
				got, want := nmSettings(theirs), nmSettings(ours)
				if got != want {
					t.Errorf("%s: netplan's keyfile\n%s\n%s\nours\n%s", ifc.Name, b, got, want)
				}
			}
		})
	}
}

// TestCloudInitNetworkENIGateway: the seed's network-config, rendered by
// cloud-init's ENI renderer (Debian 12 cloud-init's choice on an ifupdown
// guest), gives the default gateway as the stanza's "gateway" line, not as
// "post-up route add" (net-tools, absent from minimal guests: the boot
// test's cloud-init guest came up without a default route).
func TestCloudInitNetworkENIGateway(t *testing.T) {
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		t.Fatalf("cloud-init not found (Debian package cloud-init): %v", err)
	}
	ifs := []Interface{{Name: "eth0", Address: netip.MustParsePrefix("10.0.2.50/24"), Gateway: netip.MustParseAddr("10.0.2.2")}}
	dir := t.TempDir()
	in := filepath.Join(dir, "network-config")
	must(t, os.WriteFile(in, RenderCloudInitNetwork(ifs), 0o600))
	out := filepath.Join(dir, "out")
	if b, err := exec.Command(ci, "devel", "net-convert", "-p", in, "-k", "yaml", "-d", out, "-D", "debian", "-O", "eni").CombinedOutput(); err != nil {
		t.Fatalf("cloud-init net-convert: %v\n%s", err, b)
	}
	var eni strings.Builder
	must(t, filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, rerr := os.ReadFile(p)
			eni.Write(b)
			return rerr
		}
		return err
	}))
	if !strings.Contains(eni.String(), "gateway 10.0.2.2") || strings.Contains(eni.String(), "route add") {
		t.Errorf("cloud-init's ENI rendering of the seed does not set the gateway with ifupdown's gateway line:\n%s", eni.String())
	}
}
