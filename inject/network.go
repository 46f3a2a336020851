package inject

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// InterfacesPath is where the ifupdown configuration goes (Debian's
// ifupdown, Alpine's ifupdown-ng).
const InterfacesPath = "/etc/network/interfaces"

// Network is the guest's network configuration: either a verbatim
// interfaces(5) file or structured interfaces to render in the guest's own
// format.
type Network struct {
	Verbatim   []byte
	Interfaces []Interface
	// Format is the configuration format to write; "" or FormatAuto
	// detects it from the guest's files (see DetectNetFormat). A
	// verbatim file is an interfaces(5) file: its format must be (or be
	// detected as) FormatIfupdown.
	Format NetFormat
}

// Interface is one network interface to configure.
type Interface struct {
	Name    string
	DHCP    bool         // IPv4 by DHCP; Address and Gateway must be unset
	Address netip.Prefix // static IPv4 address and prefix length, e.g. 192.0.2.10/24
	Gateway netip.Addr   // optional IPv4 default gateway
	DNS     []netip.Addr // optional name servers (IPv4 or IPv6)
	// HWAddr is the interface's MAC address: the renderers that can
	// select a device by its address (netplan, NetworkManager,
	// systemd-networkd, ifcfg) match it; ifupdown and wicked set it.
	HWAddr net.HardwareAddr
	IPv6   IPv6 // optional static IPv6 or DHCPv6
	// Search lists DNS search domains.
	Search []string
	// MTU is the link MTU in bytes; 0 keeps the default.
	MTU int
	// Routes are static routes through a gateway on this interface.
	Routes []Route
}

// IPv6 is a static or DHCP IPv6 configuration; the zero value means none.
type IPv6 struct {
	Address netip.Prefix // e.g. 2001:db8::10/64
	Gateway netip.Addr
	DHCP    bool // DHCPv6; Address and Gateway must be unset
}

// Route is a static route: the network To reached through the gateway
// Via, both of one address family.
type Route struct {
	To  netip.Prefix // e.g. 10.0.0.0/8 (masked, not a default route)
	Via netip.Addr
}

// Limits of the model, so that a rendered file stays small.
const (
	maxRoutes = 64
	maxDNS    = 16
	maxSearch = 16
	minMTU    = 68
	minMTU6   = 1280
	maxMTU    = 65535
	maxIfaces = 64
	maxDomain = 253
	maxLabel  = 63
)

// validateNetwork validates n's verbatim file or interfaces.
func validateNetwork(n *Network) error {
	switch {
	case n.Verbatim != nil && len(n.Interfaces) > 0:
		return fmt.Errorf("%w: both a verbatim file and interfaces given", ErrInvalidNetwork)
	case n.Verbatim != nil:
		if len(n.Verbatim) == 0 || bytes.IndexByte(n.Verbatim, 0) >= 0 {
			return fmt.Errorf("%w: verbatim file is empty or holds a NUL byte", ErrInvalidNetwork)
		}
		return nil
	}
	return ValidateInterfaces(n.Interfaces)
}

// ValidateInterfaces checks interfaces for rendering: at least one, unique
// valid names, and consistent addresses. Errors wrap ErrInvalidNetwork.
func ValidateInterfaces(ifs []Interface) error {
	if len(ifs) == 0 {
		return fmt.Errorf("%w: no interfaces", ErrInvalidNetwork)
	}
	if len(ifs) > maxIfaces {
		return fmt.Errorf("%w: %d interfaces, at most %d", ErrInvalidNetwork, len(ifs), maxIfaces)
	}
	seen := map[string]bool{}
	for i := range ifs {
		ifc := &ifs[i]
		if seen[ifc.Name] {
			return fmt.Errorf("%w: interface %q given twice", ErrInvalidNetwork, ifc.Name)
		}
		seen[ifc.Name] = true
		if err := validateInterface(ifc); err != nil {
			return fmt.Errorf("%w: interface %q: %w", ErrInvalidNetwork, ifc.Name, err)
		}
	}
	return nil
}

func validateInterface(ifc *Interface) error {
	if err := validIfName(ifc.Name); err != nil {
		return err
	}
	switch {
	case ifc.DHCP && (ifc.Address.IsValid() || ifc.Gateway.IsValid()):
		return fmt.Errorf("dhcp together with a static address or gateway")
	case ifc.IPv6.DHCP && (ifc.IPv6.Address.IsValid() || ifc.IPv6.Gateway.IsValid()):
		return fmt.Errorf("dhcp6 together with a static IPv6 address or gateway")
	case !ifc.has4() && !ifc.has6():
		return fmt.Errorf("neither dhcp nor a static address")
	case ifc.HWAddr != nil && len(ifc.HWAddr) != 6:
		return fmt.Errorf("hwaddress %s is not a 6-byte Ethernet address", ifc.HWAddr)
	}
	if err := validV4(ifc.Address, ifc.Gateway); err != nil {
		return err
	}
	if err := validV6(ifc.IPv6); err != nil {
		return err
	}
	if len(ifc.DNS) > maxDNS {
		return fmt.Errorf("%d DNS servers, at most %d", len(ifc.DNS), maxDNS)
	}
	for _, d := range ifc.DNS {
		if !d.IsValid() || d.Is4In6() || d.Zone() != "" {
			return fmt.Errorf("invalid DNS server %v", d)
		}
	}
	if len(ifc.Search) > maxSearch {
		return fmt.Errorf("%d search domains, at most %d", len(ifc.Search), maxSearch)
	}
	for _, d := range ifc.Search {
		if err := validDomain(d); err != nil {
			return err
		}
	}
	if err := validMTU(ifc); err != nil {
		return err
	}
	return validRoutes(ifc)
}

// has4 and has6 report whether the interface configures each family.
func (ifc *Interface) has4() bool { return ifc.DHCP || ifc.Address.IsValid() }
func (ifc *Interface) has6() bool { return ifc.IPv6.DHCP || ifc.IPv6.Address.IsValid() }

// validDomain accepts a DNS search domain: dot-separated labels of
// letters, digits, '-' and '_' (1 to 63 bytes each, no '-' at either end),
// 253 bytes at most, no trailing dot.
func validDomain(d string) error {
	if d == "" || len(d) > maxDomain {
		return fmt.Errorf("search domain %q: want 1 to %d bytes", d, maxDomain)
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > maxLabel || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("search domain %q: bad label %q", d, l)
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("search domain %q: bad character %q", d, c)
			}
		}
	}
	return nil
}

func validMTU(ifc *Interface) error {
	lo := minMTU
	if ifc.has6() {
		lo = minMTU6 // IPv6 needs 1280 (RFC 8200)
	}
	if ifc.MTU != 0 && (ifc.MTU < lo || ifc.MTU > maxMTU) {
		return fmt.Errorf("mtu %d: want %d to %d", ifc.MTU, lo, maxMTU)
	}
	return nil
}

// validRoutes checks each route: a masked network that is not a default
// route (gw= and gw6= give those), a gateway of its family, the family
// configured on the interface, and no route twice.
func validRoutes(ifc *Interface) error {
	if len(ifc.Routes) > maxRoutes {
		return fmt.Errorf("%d routes, at most %d", len(ifc.Routes), maxRoutes)
	}
	seen := map[netip.Prefix]bool{}
	for _, r := range ifc.Routes {
		to, via := r.To, r.Via
		switch {
		case !to.IsValid() || !via.IsValid():
			return fmt.Errorf("route %v via %v: want NET/PREFIX via GATEWAY", to, via)
		case to.Addr().Is4In6() || via.Is4In6() || to.Addr().Zone() != "" || via.Zone() != "":
			return fmt.Errorf("route %v via %v: IPv4-mapped or zoned address", to, via)
		case to.Addr().Is4() != via.Is4():
			return fmt.Errorf("route %v via %v: network and gateway of different families", to, via)
		case to.Bits() == 0:
			return fmt.Errorf("route %v: a default route is given with gw= or gw6=", to)
		case to.Masked() != to:
			return fmt.Errorf("route %v: host bits set (the network is %v)", to, to.Masked())
		case to.Addr().Is4() && !ifc.has4():
			return fmt.Errorf("route %v: the interface has no IPv4 configuration", to)
		case to.Addr().Is6() && !ifc.has6():
			return fmt.Errorf("route %v: the interface has no IPv6 configuration", to)
		case seen[to]:
			return fmt.Errorf("route %v given twice", to)
		}
		seen[to] = true
	}
	return nil
}

// validIfName accepts 1 to 15 bytes of letters, digits, '-', '_', '.'
// and ':' (VLANs eth0.100, aliases eth0:1), not starting with '-' or '.';
// "lo" is rendered always. Linux takes more, but every other character is
// syntax in one of the formats written: a shell word in ifcfg files
// ('$', ';', quotes), a glob in networkd's Name=, a YAML indicator.
func validIfName(name string) error {
	if name == "" || len(name) > 15 || name == "lo" || name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("bad interface name")
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return fmt.Errorf("bad character %q in interface name (letters, digits, '-', '_', '.', ':')", c)
		}
	}
	return nil
}

func validV4(addr netip.Prefix, gw netip.Addr) error {
	if !addr.IsValid() {
		if gw.IsValid() {
			return fmt.Errorf("gateway %v without an IPv4 address", gw)
		}
		return nil
	}
	if !addr.Addr().Is4() || addr.Bits() < 1 {
		return fmt.Errorf("address %v is not an IPv4 address with a prefix length of 1 to 32", addr)
	}
	if gw.IsValid() && !gw.Is4() {
		return fmt.Errorf("gateway %v is not IPv4", gw)
	}
	a, net := addr.Addr(), addr.Masked()
	if addr.Bits() <= 30 {
		if a == net.Addr() {
			return fmt.Errorf("address %v is the network address of %v, not a host address (a host there is %v)", a, net, net.Addr().Next())
		}
		if a == lastAddr(net) {
			return fmt.Errorf("address %v is the broadcast address of %v, not a host address", a, net)
		}
	}
	switch {
	case !gw.IsValid():
	case gw == a:
		return fmt.Errorf("gateway %v is the interface's own address", gw)
	case addr.Bits() < 32 && !net.Contains(gw):
		return fmt.Errorf("gateway %v is outside the interface's subnet %v, so the guest cannot reach it (give the prefix that contains it, or a /32 address for an on-link gateway outside it)", gw, net)
	case addr.Bits() <= 30 && gw == lastAddr(net):
		return fmt.Errorf("gateway %v is the broadcast address of %v", gw, net)
	}
	return nil
}

// lastAddr is the highest address of an IPv4 prefix (its broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func validV6(v IPv6) error {
	if !v.Address.IsValid() {
		if v.Gateway.IsValid() {
			return fmt.Errorf("IPv6 gateway %v without an IPv6 address", v.Gateway)
		}
		return nil
	}
	a := v.Address.Addr()
	if !a.Is6() || a.Is4In6() || a.Zone() != "" || v.Address.Bits() < 1 {
		return fmt.Errorf("address %v is not an IPv6 address with a prefix length of 1 to 128", v.Address)
	}
	if v.Gateway.IsValid() && (!v.Gateway.Is6() || v.Gateway.Is4In6()) {
		return fmt.Errorf("IPv6 gateway %v is not IPv6", v.Gateway)
	}
	return nil
}

// RenderInterfaces renders validated interfaces as an interfaces(5) file in
// the shape nova's template produces: the loopback stanza, then per
// interface "auto NAME" and its inet (static or dhcp) and inet6 stanzas.
func RenderInterfaces(ifs []Interface) []byte { return renderENI(ifs, false) }

// renderENI renders for Debian's ifupdown, or for ifupdown-ng when ng
// (Alpine): it passes hwaddress to "ip link set address" as written, so
// it takes the MAC without Debian's "ether" class word.
func renderENI(ifs []Interface, ng bool) []byte {
	var b strings.Builder
	b.WriteString("# Network interfaces, written by guestinject. See interfaces(5).\n\n")
	b.WriteString("auto lo\niface lo inet loopback\n")
	for i := range ifs {
		b.WriteByte('\n')
		renderInterface(&b, &ifs[i], ng)
	}
	return []byte(b.String())
}

func renderInterface(b *strings.Builder, ifc *Interface, ng bool) {
	fmt.Fprintf(b, "auto %s\n", ifc.Name)
	first := true // the first stanza carries hwaddress and mtu
	dnsDone := false
	if ifc.has4() {
		if ifc.DHCP {
			fmt.Fprintf(b, "iface %s inet dhcp\n", ifc.Name)
			renderHW(b, ifc, ng)
		} else {
			fmt.Fprintf(b, "iface %s inet static\n", ifc.Name)
			renderHW(b, ifc, ng)
			renderV4(b, ifc.Address, ifc.Gateway)
		}
		renderMTU(b, ifc, ifc.DHCP)
		dnsDone = renderDNS(b, ifc)
		renderRoutes(b, ifc, true)
		first = false
	}
	if !ifc.has6() {
		return
	}
	if !first {
		b.WriteByte('\n')
	}
	if ifc.IPv6.DHCP {
		fmt.Fprintf(b, "iface %s inet6 dhcp\n", ifc.Name)
	} else {
		fmt.Fprintf(b, "iface %s inet6 static\n", ifc.Name)
	}
	if first {
		renderHW(b, ifc, ng)
	}
	if !ifc.IPv6.DHCP {
		fmt.Fprintf(b, "    address %s\n    netmask %d\n", ifc.IPv6.Address.Addr(), ifc.IPv6.Address.Bits())
		if ifc.IPv6.Gateway.IsValid() {
			fmt.Fprintf(b, "    gateway %s\n", ifc.IPv6.Gateway)
		}
	}
	if first {
		renderMTU(b, ifc, ifc.IPv6.DHCP)
	}
	if !dnsDone {
		renderDNS(b, ifc)
	}
	renderRoutes(b, ifc, false)
}

func renderHW(b *strings.Builder, ifc *Interface, ng bool) {
	switch {
	case ifc.HWAddr == nil:
	case ng:
		fmt.Fprintf(b, "    hwaddress %s\n", ifc.HWAddr)
	default:
		fmt.Fprintf(b, "    hwaddress ether %s\n", ifc.HWAddr)
	}
}

// renderMTU writes the MTU: the static methods take an mtu option; the
// dhcp methods have none, so the link is set before the client starts.
func renderMTU(b *strings.Builder, ifc *Interface, dhcp bool) {
	switch {
	case ifc.MTU == 0:
	case dhcp:
		fmt.Fprintf(b, "    pre-up ip link set dev %s mtu %d\n", ifc.Name, ifc.MTU)
	default:
		fmt.Fprintf(b, "    mtu %d\n", ifc.MTU)
	}
}

func renderV4(b *strings.Builder, p netip.Prefix, gw netip.Addr) {
	mask, bcast := v4MaskBroadcast(p)
	fmt.Fprintf(b, "    address %s\n    netmask %s\n", p.Addr(), mask)
	if bcast.IsValid() {
		fmt.Fprintf(b, "    broadcast %s\n", bcast)
	}
	if gw.IsValid() {
		fmt.Fprintf(b, "    gateway %s\n", gw)
	}
}

// renderDNS writes the resolvconf options (name servers, search domains)
// and reports whether it wrote any.
func renderDNS(b *strings.Builder, ifc *Interface) bool {
	if len(ifc.DNS) > 0 {
		fmt.Fprintf(b, "    dns-nameservers %s\n", joinAddrs(ifc.DNS, " "))
	}
	if len(ifc.Search) > 0 {
		fmt.Fprintf(b, "    dns-search %s\n", strings.Join(ifc.Search, " "))
	}
	return len(ifc.DNS) > 0 || len(ifc.Search) > 0
}

// renderRoutes adds the static routes of one family when the stanza comes
// up (ifupdown has no route option; taking the address down removes them).
func renderRoutes(b *strings.Builder, ifc *Interface, v4 bool) {
	for _, r := range ifc.Routes {
		switch {
		case r.To.Addr().Is4() != v4:
		case v4:
			fmt.Fprintf(b, "    up ip route add %s via %s dev %s\n", r.To, r.Via, ifc.Name)
		default:
			fmt.Fprintf(b, "    up ip -6 route add %s via %s dev %s\n", r.To, r.Via, ifc.Name)
		}
	}
}

func joinAddrs(as []netip.Addr, sep string) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, sep)
}

// v4MaskBroadcast returns the dotted netmask of p and its broadcast
// address; /31 and /32 have no broadcast (RFC 3021).
func v4MaskBroadcast(p netip.Prefix) (netip.Addr, netip.Addr) {
	bits := p.Bits()
	m := ^uint32(0) << (32 - bits)
	a4 := p.Addr().As4()
	a := uint32(a4[0])<<24 | uint32(a4[1])<<16 | uint32(a4[2])<<8 | uint32(a4[3])
	mask := u32Addr(m)
	if bits >= 31 {
		return mask, netip.Addr{}
	}
	return mask, u32Addr(a | ^m)
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// eniStanza reports whether a line of an interfaces(5) file starts a
// stanza (ifupdown's and ifupdown-ng's keywords).
func eniStanza(line string) (keyword string, args []string, ok bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", nil, false
	}
	switch k := f[0]; {
	case k == "iface", k == "interface", k == "mapping", k == "auto", k == "source", k == "source-directory",
		k == "template", k == "rename", strings.HasPrefix(k, "allow-"):
		return k, f[1:], true
	}
	return "", nil, false
}

// MergeInterfaces returns the interfaces(5) file old with every stanza of
// the interfaces in ifs taken out (their iface stanzas with their options,
// their names from auto and allow-* lines) and the rendering of ifs
// appended: the loopback and every other interface, comment and source
// line stay as they were. It also returns the stanzas it took out. With
// no old file it is RenderInterfaces.
func MergeInterfaces(old []byte, ifs []Interface) ([]byte, []string) {
	return mergeENI(old, ifs, false)
}

// mergeENI is MergeInterfaces for ifupdown (ng false) or ifupdown-ng.
func mergeENI(old []byte, ifs []Interface, ng bool) ([]byte, []string) {
	if len(bytes.TrimSpace(old)) == 0 {
		return renderENI(ifs, ng), nil
	}
	ours := map[string]bool{}
	for i := range ifs {
		ours[ifs[i].Name] = true
	}
	lines := strings.Split(strings.TrimRight(string(old), "\n"), "\n")
	var kept, removed []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		kw, args, ok := eniStanza(line)
		switch {
		case !ok:
			kept = append(kept, line)
		case (kw == "iface" || kw == "interface") && len(args) > 0 && ours[args[0]]:
			removed = append(removed, strings.TrimSpace(line))
			// Its options run to the next stanza; blank and comment
			// lines just before that stanza are kept.
			end := i + 1
			for end < len(lines) {
				if _, _, st := eniStanza(lines[end]); st {
					break
				}
				end++
			}
			last := end
			for last > i+1 {
				t := strings.TrimSpace(lines[last-1])
				if t != "" && t[0] != '#' {
					break
				}
				last--
			}
			for _, l := range lines[last:end] { // no second blank line where the stanza was
				if strings.TrimSpace(l) != "" || len(kept) == 0 || strings.TrimSpace(kept[len(kept)-1]) != "" {
					kept = append(kept, l)
				}
			}
			i = end - 1
		case kw == "auto" || strings.HasPrefix(kw, "allow-"):
			var rest []string
			for _, a := range args {
				if !ours[a] {
					rest = append(rest, a)
				}
			}
			switch {
			case len(rest) == len(args):
				kept = append(kept, line)
			case len(rest) == 0:
				removed = append(removed, strings.TrimSpace(line))
			default:
				removed = append(removed, strings.TrimSpace(line))
				kept = append(kept, kw+" "+strings.Join(rest, " "))
			}
		default:
			kept = append(kept, line)
		}
	}
	for len(kept) > 0 && strings.TrimSpace(kept[len(kept)-1]) == "" {
		kept = kept[:len(kept)-1]
	}
	var b strings.Builder
	for _, l := range kept {
		b.WriteString(l + "\n")
	}
	for i := range ifs {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		renderInterface(&b, &ifs[i], ng)
	}
	return []byte(b.String()), removed
}
