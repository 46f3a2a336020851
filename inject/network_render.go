package inject

import (
	"crypto/sha1"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
)

// NetFormat names a guest network configuration format.
type NetFormat string

// The formats the network injector writes.
const (
	FormatAuto           NetFormat = "auto"           // detect from the guest
	FormatIfupdown       NetFormat = "ifupdown"       // /etc/network/interfaces (Debian ifupdown, Alpine ifupdown-ng)
	FormatNetplan        NetFormat = "netplan"        // /etc/netplan/90-guestinject.yaml (Ubuntu, Debian 13 cloud)
	FormatNetworkManager NetFormat = "networkmanager" // a keyfile in /etc/NetworkManager/system-connections
	FormatNetworkd       NetFormat = "networkd"       // /etc/systemd/network/*.network
	FormatIfcfg          NetFormat = "ifcfg"          // /etc/sysconfig/network-scripts/ifcfg-IFACE (RHEL 7/8 family)
	FormatWicked         NetFormat = "wicked"         // /etc/sysconfig/network/ifcfg-IFACE (SUSE)
)

// NetFormats lists the concrete formats, in the order detection prefers
// them when several stacks are active (netplan renders for
// NetworkManager or networkd, so it comes first).
var NetFormats = []NetFormat{FormatNetplan, FormatIfcfg, FormatNetworkManager, FormatWicked, FormatNetworkd, FormatIfupdown}

// ParseNetFormat parses a --net-format value.
func ParseNetFormat(s string) (NetFormat, error) {
	if s == "" || s == string(FormatAuto) {
		return FormatAuto, nil
	}
	for _, f := range NetFormats {
		if s == string(f) {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w: unknown network format %q (want auto, ifupdown, netplan, networkmanager, networkd, ifcfg or wicked)", ErrInvalidNetwork, s)
}

// netFile is one file a renderer writes.
type netFile struct {
	path string
	data []byte
	mode fs.FileMode
}

// Directories and file names the renderers own.
const (
	NetplanPath     = "/etc/netplan/90-guestinject.yaml"
	nmDir           = "/etc/NetworkManager/system-connections"
	networkdDir     = "/etc/systemd/network"
	networkdPrefix  = "05-guestinject-"
	ifcfgDir        = "/etc/sysconfig/network-scripts"
	wickedDir       = "/etc/sysconfig/network"
	wickedConfig    = "/etc/sysconfig/network/config"
	netHeader       = "Written by guestinject."
	netplanModeFile = 0o600
)

// renderFiles renders validated interfaces in format f. wickedCfg is the
// guest's current /etc/sysconfig/network/config (wicked only; DNS is
// global there).
func renderFiles(f NetFormat, ifs []Interface, wickedCfg []byte) ([]netFile, error) {
	switch f {
	case FormatIfupdown:
		return []netFile{{InterfacesPath, RenderInterfaces(ifs), 0o644}}, nil
	case FormatNetplan:
		return []netFile{{NetplanPath, RenderNetplan(ifs), netplanModeFile}}, nil
	}
	var out []netFile
	for i := range ifs {
		ifc := &ifs[i]
		if f == FormatNetworkManager || f == FormatIfcfg {
			if err := dnsFamilies(ifc); err != nil {
				return nil, fmt.Errorf("%w: interface %q: %s: %w", ErrInvalidNetwork, ifc.Name, f, err)
			}
		}
		switch f {
		case FormatNetworkManager:
			out = append(out, netFile{nmPath(ifc.Name), RenderKeyfile(ifc), 0o600})
		case FormatNetworkd:
			out = append(out, netFile{networkdPath(ifc.Name), RenderNetworkd(ifc), 0o644})
		case FormatIfcfg:
			cfg, r4, r6 := RenderIfcfg(ifc)
			out = append(out, netFile{ifcfgDir + "/ifcfg-" + ifc.Name, cfg, 0o644},
				netFile{ifcfgDir + "/route-" + ifc.Name, r4, 0o644},
				netFile{ifcfgDir + "/route6-" + ifc.Name, r6, 0o644})
		case FormatWicked:
			cfg, routes, err := RenderWicked(ifc)
			if err != nil {
				return nil, fmt.Errorf("%w: interface %q: %w", ErrInvalidNetwork, ifc.Name, err)
			}
			out = append(out, netFile{wickedDir + "/ifcfg-" + ifc.Name, cfg, 0o600},
				netFile{wickedDir + "/ifroute-" + ifc.Name, routes, 0o600})
		default:
			return nil, fmt.Errorf("%w: unknown network format %q", ErrInvalidNetwork, f)
		}
	}
	if f == FormatWicked {
		if cfg, ok := wickedDNS(ifs, wickedCfg); ok {
			out = append(out, netFile{wickedConfig, cfg, 0o644})
		}
	}
	return out, nil
}

// dnsFamilies refuses a name server of an address family the interface
// does not configure: NetworkManager keeps name servers per family
// ([ipv4] dns, [ipv6] dns; ifcfg-rh sorts DNSn the same way) and rejects
// them where the family's method is disabled or ignored.
func dnsFamilies(ifc *Interface) error {
	for _, d := range ifc.DNS {
		if d.Is4() && !ifc.has4() || d.Is6() && !ifc.has6() {
			return fmt.Errorf("name server %v: the interface has no %s configuration", d, map[bool]string{true: "IPv4", false: "IPv6"}[d.Is4()])
		}
	}
	return nil
}

func nmPath(name string) string       { return nmDir + "/guestinject-" + name + ".nmconnection" }
func networkdPath(name string) string { return networkdDir + "/" + networkdPrefix + name + ".network" }

// split returns the addresses of one family.
func split(as []netip.Addr, v4 bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if a.Is4() == v4 {
			out = append(out, a)
		}
	}
	return out
}

// RenderNetplan renders validated interfaces as a netplan v2 file: one
// ethernets entry per interface, DHCP stated either way (so an earlier
// file's dhcp4: true does not survive the merge), default routes as
// routes to 0.0.0.0/0 and ::/0.
func RenderNetplan(ifs []Interface) []byte { return renderNetplan(ifs, false) }

// RenderCloudInitNetwork renders validated interfaces as cloud-init's
// network-config v2 (a seed's): the netplan dialect, with the default
// gateways as gateway4/gateway6 instead of default routes. cloud-init's
// ENI renderer (Debian 12's) writes a v2 route as "post-up route add",
// which needs net-tools a minimal guest lacks, so the default route was
// lost; gateway4 becomes the stanza's "gateway" line, which ifupdown
// applies with ip. cloud-init 22.4 also turns a route to ::/0 into ::/64.
func RenderCloudInitNetwork(ifs []Interface) []byte { return renderNetplan(ifs, true) }

func renderNetplan(ifs []Interface, gatewayKeys bool) []byte {
	var b strings.Builder
	b.WriteString("# " + netHeader + " See netplan(5).\n")
	b.WriteString("network:\n  version: 2\n  ethernets:\n")
	for i := range ifs {
		ifc := &ifs[i]
		fmt.Fprintf(&b, "    %q:\n", ifc.Name) // quoted: "1234" or "true" stay names
		w := func(format string, a ...any) { fmt.Fprintf(&b, "      "+format+"\n", a...) }
		if ifc.HWAddr != nil {
			w("match:")
			w("  macaddress: %q", ifc.HWAddr.String())
			w("set-name: %q", ifc.Name)
		}
		w("dhcp4: %t", ifc.DHCP)
		w("dhcp6: %t", ifc.IPv6.DHCP)
		if ifc.Address.IsValid() || ifc.IPv6.Address.IsValid() {
			w("addresses:")
			for _, p := range []netip.Prefix{ifc.Address, ifc.IPv6.Address} {
				if p.IsValid() {
					w("  - %q", p.String())
				}
			}
		}
		type rt struct{ to, via string }
		var routes []rt
		// Default routes as 0.0.0.0/0 and ::/0, not "default": older
		// netplan (before 0.103, Ubuntu 18.04) and cloud-init 22 reject
		// that keyword.
		switch {
		case gatewayKeys:
			if ifc.Gateway.IsValid() {
				w("gateway4: %q", ifc.Gateway.String())
			}
			if ifc.IPv6.Gateway.IsValid() {
				w("gateway6: %q", ifc.IPv6.Gateway.String())
			}
		default:
			if ifc.Gateway.IsValid() {
				routes = append(routes, rt{"0.0.0.0/0", ifc.Gateway.String()})
			}
			if ifc.IPv6.Gateway.IsValid() {
				routes = append(routes, rt{"::/0", ifc.IPv6.Gateway.String()})
			}
		}
		for _, r := range ifc.Routes {
			routes = append(routes, rt{r.To.String(), r.Via.String()})
		}
		if len(routes) > 0 {
			w("routes:")
			for _, r := range routes {
				w("  - to: %q", r.to)
				w("    via: %q", r.via)
			}
		}
		if len(ifc.DNS) > 0 || len(ifc.Search) > 0 {
			w("nameservers:")
			if len(ifc.DNS) > 0 {
				w("  addresses: [%s]", quoteJoin(addrStrings(ifc.DNS)))
			}
			if len(ifc.Search) > 0 {
				w("  search: [%s]", quoteJoin(ifc.Search))
			}
		}
		if ifc.MTU != 0 {
			w("mtu: %d", ifc.MTU)
		}
	}
	return []byte(b.String())
}

func addrStrings(as []netip.Addr) []string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return s
}

func quoteJoin(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// nmNamespace is the name space of the keyfile UUIDs (an arbitrary fixed
// UUID): the same interface name always gets the same connection UUID.
var nmNamespace = [16]byte{0x6b, 0x1d, 0x47, 0x0e, 0x93, 0x2a, 0x4f, 0x51, 0x8c, 0x3e, 0x0a, 0x5f, 0x27, 0xd4, 0x61, 0xb9}

// nmUUID is the RFC 9562 version 5 (SHA-1, name-based) UUID of name.
func nmUUID(name string) string {
	h := sha1.New()
	h.Write(nmNamespace[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// RenderKeyfile renders one validated interface as a NetworkManager
// keyfile. With a MAC the profile matches the device by its address
// (mac-address) instead of its name; autoconnect-priority makes it win over
// an older profile for the same device.
func RenderKeyfile(ifc *Interface) []byte {
	var b strings.Builder
	b.WriteString("# " + netHeader + " See nm-settings-keyfile(5).\n")
	fmt.Fprintf(&b, "[connection]\nid=%s\nuuid=%s\ntype=ethernet\n", ifc.Name, nmUUID(ifc.Name))
	if ifc.HWAddr == nil {
		fmt.Fprintf(&b, "interface-name=%s\n", ifc.Name)
	}
	b.WriteString("autoconnect=true\nautoconnect-priority=100\n")
	b.WriteString("\n[ethernet]\n")
	if ifc.HWAddr != nil {
		fmt.Fprintf(&b, "mac-address=%s\n", strings.ToUpper(ifc.HWAddr.String()))
	}
	if ifc.MTU != 0 {
		fmt.Fprintf(&b, "mtu=%d\n", ifc.MTU)
	}
	searchDone := false
	for _, v4 := range []bool{true, false} {
		sec, method := "ipv6", "ignore"
		addr, gw, dhcp := ifc.IPv6.Address, ifc.IPv6.Gateway, ifc.IPv6.DHCP
		if v4 {
			sec, method = "ipv4", "disabled"
			addr, gw, dhcp = ifc.Address, ifc.Gateway, ifc.DHCP
		}
		switch {
		case dhcp: // IPv6: router advertisements, and DHCPv6 when they say so
			method = "auto"
		case addr.IsValid():
			method = "manual"
		}
		fmt.Fprintf(&b, "\n[%s]\nmethod=%s\n", sec, method)
		if method == "ignore" || method == "disabled" {
			continue
		}
		if addr.IsValid() {
			fmt.Fprintf(&b, "address1=%s\n", addr)
		}
		if gw.IsValid() {
			fmt.Fprintf(&b, "gateway=%s\n", gw)
		}
		if dns := split(ifc.DNS, v4); len(dns) > 0 {
			fmt.Fprintf(&b, "dns=%s;\n", joinAddrs(dns, ";"))
		}
		if len(ifc.Search) > 0 && !searchDone {
			fmt.Fprintf(&b, "dns-search=%s;\n", strings.Join(ifc.Search, ";"))
			searchDone = true
		}
		n := 0
		for _, r := range ifc.Routes {
			if r.To.Addr().Is4() == v4 {
				n++
				fmt.Fprintf(&b, "route%d=%s,%s\n", n, r.To, r.Via)
			}
		}
	}
	return []byte(b.String())
}

// RenderNetworkd renders one validated interface as a systemd-networkd
// .network file, matched by MAC when one is given, else by name.
func RenderNetworkd(ifc *Interface) []byte {
	var b strings.Builder
	b.WriteString("# " + netHeader + " See systemd.network(5).\n[Match]\n")
	if ifc.HWAddr != nil {
		fmt.Fprintf(&b, "MACAddress=%s\n", ifc.HWAddr)
	} else {
		fmt.Fprintf(&b, "Name=%s\n", ifc.Name)
	}
	if ifc.MTU != 0 {
		fmt.Fprintf(&b, "\n[Link]\nMTUBytes=%d\n", ifc.MTU)
	}
	b.WriteString("\n[Network]\n")
	switch {
	case ifc.DHCP && ifc.IPv6.DHCP:
		b.WriteString("DHCP=yes\n")
	case ifc.DHCP:
		b.WriteString("DHCP=ipv4\n")
	case ifc.IPv6.DHCP:
		b.WriteString("DHCP=ipv6\n")
	}
	for _, p := range []netip.Prefix{ifc.Address, ifc.IPv6.Address} {
		if p.IsValid() {
			fmt.Fprintf(&b, "Address=%s\n", p)
		}
	}
	for _, gw := range []netip.Addr{ifc.Gateway, ifc.IPv6.Gateway} {
		if gw.IsValid() {
			fmt.Fprintf(&b, "Gateway=%s\n", gw)
		}
	}
	for _, d := range ifc.DNS {
		fmt.Fprintf(&b, "DNS=%s\n", d)
	}
	if len(ifc.Search) > 0 {
		fmt.Fprintf(&b, "Domains=%s\n", strings.Join(ifc.Search, " "))
	}
	for _, r := range ifc.Routes {
		fmt.Fprintf(&b, "\n[Route]\nDestination=%s\nGateway=%s\n", r.To, r.Via)
	}
	return []byte(b.String())
}

// RenderIfcfg renders one validated interface for RHEL's network-scripts
// (read by initscripts and by NetworkManager's ifcfg-rh plugin): the
// ifcfg file and the route-IFACE and route6-IFACE files in ip-route form
// (empty but for a comment when there is no route, so an older file's
// routes do not survive).
func RenderIfcfg(ifc *Interface) (cfg, route, route6 []byte) {
	var b strings.Builder
	w := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	b.WriteString("# " + netHeader + " See nm-settings-ifcfg-rh(5).\n")
	w("DEVICE", ifc.Name)
	w("NAME", ifc.Name)
	w("TYPE", "Ethernet")
	w("ONBOOT", "yes")
	if ifc.HWAddr != nil {
		w("HWADDR", ifc.HWAddr.String())
	}
	switch {
	case ifc.DHCP:
		w("BOOTPROTO", "dhcp")
	default:
		w("BOOTPROTO", "none")
	}
	if ifc.Address.IsValid() {
		w("IPADDR", ifc.Address.Addr().String())
		w("PREFIX", fmt.Sprint(ifc.Address.Bits()))
	}
	if ifc.Gateway.IsValid() {
		w("GATEWAY", ifc.Gateway.String())
	}
	if ifc.has6() {
		w("IPV6INIT", "yes")
		if ifc.IPv6.DHCP {
			w("DHCPV6C", "yes")
		} else {
			w("IPV6_AUTOCONF", "no")
			w("IPV6ADDR", ifc.IPv6.Address.String())
		}
		if ifc.IPv6.Gateway.IsValid() {
			w("IPV6_DEFAULTGW", ifc.IPv6.Gateway.String())
		}
	} else {
		w("IPV6INIT", "no")
	}
	for i, d := range ifc.DNS {
		w(fmt.Sprintf("DNS%d", i+1), d.String())
	}
	if len(ifc.Search) > 0 {
		w("DOMAIN", `"`+strings.Join(ifc.Search, " ")+`"`)
	}
	if ifc.MTU != 0 {
		w("MTU", fmt.Sprint(ifc.MTU))
	}
	var r4, r6 strings.Builder
	r4.WriteString("# " + netHeader + " IPv4 routes of " + ifc.Name + ".\n")
	r6.WriteString("# " + netHeader + " IPv6 routes of " + ifc.Name + ".\n")
	for _, r := range ifc.Routes {
		rb := &r6
		if r.To.Addr().Is4() {
			rb = &r4
		}
		fmt.Fprintf(rb, "%s via %s dev %s\n", r.To, r.Via, ifc.Name)
	}
	return []byte(b.String()), []byte(r4.String()), []byte(r6.String())
}

// RenderWicked renders one validated interface for SUSE's wicked: the
// ifcfg file (STARTMODE, BOOTPROTO, IPADDR with its prefix) and the
// ifroute-IFACE file (default routes too). wicked's BOOTPROTO cannot mix
// DHCP with static addresses of the other family: that is refused.
func RenderWicked(ifc *Interface) (cfg, routes []byte, err error) {
	dhcp := ifc.DHCP || ifc.IPv6.DHCP
	static := ifc.Address.IsValid() || ifc.IPv6.Address.IsValid()
	if dhcp && static {
		return nil, nil, fmt.Errorf("wicked cannot mix DHCP and static addresses on one interface")
	}
	var b strings.Builder
	w := func(k, v string) { fmt.Fprintf(&b, "%s='%s'\n", k, v) }
	b.WriteString("# " + netHeader + " See ifcfg(5).\n")
	w("STARTMODE", "auto")
	switch {
	case ifc.DHCP && ifc.IPv6.DHCP:
		w("BOOTPROTO", "dhcp")
	case ifc.DHCP:
		w("BOOTPROTO", "dhcp4")
	case ifc.IPv6.DHCP:
		w("BOOTPROTO", "dhcp6")
	default:
		w("BOOTPROTO", "static")
	}
	n := 0
	for _, p := range []netip.Prefix{ifc.Address, ifc.IPv6.Address} {
		if !p.IsValid() {
			continue
		}
		k := "IPADDR"
		if n > 0 {
			k = fmt.Sprintf("IPADDR_%d", n)
		}
		w(k, p.String())
		n++
	}
	if ifc.HWAddr != nil {
		w("LLADDR", ifc.HWAddr.String())
	}
	if ifc.MTU != 0 {
		w("MTU", fmt.Sprint(ifc.MTU))
	}
	var r strings.Builder
	r.WriteString("# " + netHeader + " Routes of " + ifc.Name + ": DESTINATION GATEWAY NETMASK INTERFACE, see routes(5).\n")
	for _, gw := range []netip.Addr{ifc.Gateway, ifc.IPv6.Gateway} {
		if gw.IsValid() {
			fmt.Fprintf(&r, "default %s - %s\n", gw, ifc.Name)
		}
	}
	for _, rt := range ifc.Routes {
		fmt.Fprintf(&r, "%s %s - %s\n", rt.To, rt.Via, ifc.Name)
	}
	return []byte(b.String()), []byte(r.String()), nil
}

// wickedDNS sets the static name servers and search list in SUSE's
// /etc/sysconfig/network/config (netconfig's NETCONFIG_DNS_STATIC_SERVERS
// and NETCONFIG_DNS_STATIC_SEARCHLIST: DNS is global there), keeping every
// other line. It reports false when no interface has DNS settings.
func wickedDNS(ifs []Interface, cfg []byte) ([]byte, bool) {
	var dns, search []string
	for i := range ifs {
		dns = append(dns, addrStrings(ifs[i].DNS)...)
		search = append(search, ifs[i].Search...)
	}
	if len(dns) == 0 && len(search) == 0 {
		return nil, false
	}
	set := map[string]string{}
	if len(dns) > 0 {
		set["NETCONFIG_DNS_STATIC_SERVERS"] = strings.Join(dns, " ")
	}
	if len(search) > 0 {
		set["NETCONFIG_DNS_STATIC_SEARCHLIST"] = strings.Join(search, " ")
	}
	return setShellVars(cfg, set), true
}

// setShellVars replaces the KEY=... lines of a sysconfig file for the keys
// in set (every such line, so no later one overrides) and appends the keys
// it did not find; other lines are kept byte for byte.
func setShellVars(file []byte, set map[string]string) []byte {
	var b strings.Builder
	done := map[string]bool{}
	text := string(file)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		k, _, ok := strings.Cut(strings.TrimLeft(line, " \t"), "=")
		if v, mine := set[k]; ok && mine {
			if !done[k] {
				fmt.Fprintf(&b, "%s=\"%s\"\n", k, v)
			}
			done[k] = true
			continue
		}
		b.WriteString(line)
	}
	for _, k := range []string{"NETCONFIG_DNS_STATIC_SERVERS", "NETCONFIG_DNS_STATIC_SEARCHLIST"} {
		if v, ok := set[k]; ok && !done[k] {
			fmt.Fprintf(&b, "%s=\"%s\"\n", k, v)
		}
	}
	return []byte(b.String())
}
