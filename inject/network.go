package inject

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/guestinject/guestinject/vfs"
)

// InterfacesPath is where the network configuration goes (Debian's
// ifupdown).
const InterfacesPath = "/etc/network/interfaces"

// Network is the guest's network configuration: either a verbatim
// interfaces(5) file or structured interfaces to render.
type Network struct {
	Verbatim   []byte
	Interfaces []Interface
}

// Interface is one network interface to configure.
type Interface struct {
	Name    string
	DHCP    bool         // IPv4 by DHCP; Address and Gateway must be unset
	Address netip.Prefix // static IPv4 address and prefix length, e.g. 192.0.2.10/24
	Gateway netip.Addr   // optional IPv4 default gateway
	DNS     []netip.Addr // optional name servers (IPv4 or IPv6)
	HWAddr  net.HardwareAddr
	IPv6    IPv6 // optional static IPv6
}

// IPv6 is a static IPv6 configuration; the zero value means none.
type IPv6 struct {
	Address netip.Prefix // e.g. 2001:db8::10/64
	Gateway netip.Addr
}

func prepareNetwork(fsys vfs.FS, n *Network) *item {
	it := newItem(KindNetwork, InterfacesPath)
	content, err := networkContent(n)
	if err != nil {
		return it.fail(err)
	}
	if _, err := checkDirPath(fsys, "/etc/network"); err != nil {
		return it.fail(err)
	}
	if err := checkNotDir(fsys, InterfacesPath); err != nil {
		return it.fail(err)
	}
	it.mkdir("/etc/network")
	it.replace(InterfacesPath, content)
	if n.Verbatim != nil {
		it.rep.Summary = "verbatim"
	} else {
		it.rep.Summary = fmt.Sprintf("%d interface(s) rendered", len(n.Interfaces))
	}
	return it
}

// networkContent validates n and returns the file to write.
func networkContent(n *Network) ([]byte, error) {
	switch {
	case n.Verbatim != nil && len(n.Interfaces) > 0:
		return nil, fmt.Errorf("%w: both a verbatim file and interfaces given", ErrInvalidNetwork)
	case n.Verbatim != nil:
		if len(n.Verbatim) == 0 || bytes.IndexByte(n.Verbatim, 0) >= 0 {
			return nil, fmt.Errorf("%w: verbatim file is empty or holds a NUL byte", ErrInvalidNetwork)
		}
		return n.Verbatim, nil
	}
	if err := ValidateInterfaces(n.Interfaces); err != nil {
		return nil, err
	}
	return RenderInterfaces(n.Interfaces), nil
}

// ValidateInterfaces checks interfaces for rendering: at least one, unique
// valid names, and consistent addresses. Errors wrap ErrInvalidNetwork.
func ValidateInterfaces(ifs []Interface) error {
	if len(ifs) == 0 {
		return fmt.Errorf("%w: no interfaces", ErrInvalidNetwork)
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
	case !ifc.DHCP && !ifc.Address.IsValid() && !ifc.IPv6.Address.IsValid():
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
	for _, d := range ifc.DNS {
		if !d.IsValid() || d.Is4In6() {
			return fmt.Errorf("invalid DNS server %v", d)
		}
	}
	return nil
}

// validIfName accepts the names Linux and ifupdown accept: 1 to 15 bytes,
// no whitespace, '/', '#' or control characters; "lo" is rendered always.
func validIfName(name string) error {
	if name == "" || len(name) > 15 || name == "lo" || name == "." || name == ".." {
		return fmt.Errorf("bad interface name")
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || c == '/' || c == '#' {
			return fmt.Errorf("bad character %q in interface name", c)
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
	return nil
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
func RenderInterfaces(ifs []Interface) []byte {
	var b strings.Builder
	b.WriteString("# Network interfaces, written by guestinject. See interfaces(5).\n\n")
	b.WriteString("auto lo\niface lo inet loopback\n")
	for i := range ifs {
		b.WriteByte('\n')
		renderInterface(&b, &ifs[i])
	}
	return []byte(b.String())
}

func renderInterface(b *strings.Builder, ifc *Interface) {
	fmt.Fprintf(b, "auto %s\n", ifc.Name)
	dnsDone := false
	switch {
	case ifc.DHCP:
		fmt.Fprintf(b, "iface %s inet dhcp\n", ifc.Name)
		renderHW(b, ifc)
		dnsDone = renderDNS(b, ifc.DNS)
	case ifc.Address.IsValid():
		fmt.Fprintf(b, "iface %s inet static\n", ifc.Name)
		renderHW(b, ifc)
		renderV4(b, ifc.Address, ifc.Gateway)
		dnsDone = renderDNS(b, ifc.DNS)
	}
	if !ifc.IPv6.Address.IsValid() {
		return
	}
	if ifc.DHCP || ifc.Address.IsValid() {
		b.WriteByte('\n')
	}
	fmt.Fprintf(b, "iface %s inet6 static\n", ifc.Name)
	if !ifc.DHCP && !ifc.Address.IsValid() {
		renderHW(b, ifc)
	}
	fmt.Fprintf(b, "    address %s\n    netmask %d\n", ifc.IPv6.Address.Addr(), ifc.IPv6.Address.Bits())
	if ifc.IPv6.Gateway.IsValid() {
		fmt.Fprintf(b, "    gateway %s\n", ifc.IPv6.Gateway)
	}
	if !dnsDone {
		renderDNS(b, ifc.DNS)
	}
}

func renderHW(b *strings.Builder, ifc *Interface) {
	if ifc.HWAddr != nil {
		fmt.Fprintf(b, "    hwaddress ether %s\n", ifc.HWAddr)
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

func renderDNS(b *strings.Builder, dns []netip.Addr) bool {
	if len(dns) == 0 {
		return false
	}
	s := make([]string, len(dns))
	for i, d := range dns {
		s[i] = d.String()
	}
	fmt.Fprintf(b, "    dns-nameservers %s\n", strings.Join(s, " "))
	return true
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
