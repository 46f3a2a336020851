package main

import (
	"net/netip"
	"testing"

	"github.com/guestinject/guestinject/inject"
)

func TestParseIP(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	ifc, err := parseIP("eth0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53;2001:db8::53,hw=52:54:00:12:34:56,ip6=2001:db8::10/64,gw6=2001:db8::1")
	must(t, err)
	if ifc.Name != "eth0" || ifc.DHCP || ifc.Address != p("192.0.2.10/24") || ifc.Gateway != a("192.0.2.1") ||
		len(ifc.DNS) != 2 || ifc.DNS[1] != a("2001:db8::53") || ifc.HWAddr.String() != "52:54:00:12:34:56" ||
		ifc.IPv6 != (inject.IPv6{Address: p("2001:db8::10/64"), Gateway: a("2001:db8::1")}) {
		t.Errorf("%+v", ifc)
	}
	// An IPv6 first address is the static IPv6, and gw= its gateway.
	ifc, err = parseIP("ens3=2001:db8::5/64,gw=2001:db8::1")
	must(t, err)
	if ifc.Address.IsValid() || ifc.Gateway.IsValid() || ifc.IPv6 != (inject.IPv6{Address: p("2001:db8::5/64"), Gateway: a("2001:db8::1")}) {
		t.Errorf("%+v", ifc)
	}
	ifc, err = parseIP("eth1=dhcp,hw=02:00:00:00:00:01")
	must(t, err)
	if !ifc.DHCP || ifc.Address.IsValid() || ifc.HWAddr == nil {
		t.Errorf("%+v", ifc)
	}
	must(t, inject.ValidateInterfaces([]inject.Interface{ifc}))

	ifc, err = parseIP("ens3=dhcp,ip6=dhcp,search=example.com;corp.example,mtu=9000,route=10.0.0.0/8 via 192.0.2.254,route= 172.16.0.0/12  via  192.0.2.253")
	must(t, err)
	if !ifc.DHCP || !ifc.IPv6.DHCP || ifc.MTU != 9000 || len(ifc.Search) != 2 || ifc.Search[1] != "corp.example" ||
		len(ifc.Routes) != 2 || ifc.Routes[1] != (inject.Route{To: p("172.16.0.0/12"), Via: a("192.0.2.253")}) {
		t.Errorf("%+v", ifc)
	}
	must(t, inject.ValidateInterfaces([]inject.Interface{ifc}))
	ifc, err = parseIP("eth0=dhcp6,route=2001:db8:9::/48 via fe80::1")
	must(t, err)
	if ifc.DHCP || !ifc.IPv6.DHCP || len(ifc.Routes) != 1 {
		t.Errorf("%+v", ifc)
	}
	must(t, inject.ValidateInterfaces([]inject.Interface{ifc}))
}
