package main

import (
	"strings"
	"testing"

	"github.com/guestinject/guestinject/inject"
)

// FuzzParseIP: any --ip value either fails to parse or yields interfaces
// that validate or are refused with inject.ErrInvalidNetwork; a rendered
// interface never lets a value start a new stanza, section or key in any
// format.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{
		"eth0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53;9.9.9.9,hw=52:54:00:12:34:56",
		"eth1=dhcp", "eth0=2001:db8::1/64,gw=2001:db8::ff", "eth0=dhcp,ip6=fd00::1/64,gw6=fd00::2",
		"e=1.2.3.4/0", "x=,", "=dhcp",
		"ens3=dhcp,ip6=dhcp,search=example.com;corp.example,mtu=9000,route=10.0.0.0/8 via 192.0.2.254",
		"eth0=dhcp6,route=2001:db8:9::/48 via fe80::1,hw=02:00:00:00:00:01",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ifc, err := parseIP(s)
		if err != nil {
			return
		}
		ifs := []inject.Interface{ifc}
		if err := inject.ValidateInterfaces(ifs); err != nil {
			return
		}
		out := string(inject.RenderInterfaces(ifs))
		if strings.Count(out, "\nauto ") != 2 || strings.ContainsRune(ifc.Name, '\n') {
			t.Fatalf("rendered %q from %q", out, s)
		}
		// Every value sits on its own line: no rendering has more
		// sections or top-level keys than the model asks for.
		kf := string(inject.RenderKeyfile(&ifc))
		nd := string(inject.RenderNetworkd(&ifc))
		cfg, _, _ := inject.RenderIfcfg(&ifc)
		np := string(inject.RenderNetplan(ifs))
		switch {
		case strings.Count(kf, "\n[") != 4,
			strings.Count(nd, "\n[") != 2+len(ifc.Routes)+map[bool]int{true: 1}[ifc.MTU != 0],
			strings.Count(np, "\n    \""+ifc.Name+"\":\n") != 1 || strings.Count(np, "\n    ")-strings.Count(np, "\n     ") != 1,
			strings.Contains(string(cfg), "\n\n"):
			t.Fatalf("from %q:\n%s\n%s\n%s\n%s", s, kf, nd, cfg, np)
		}
	})
}

func TestOffsetFlag(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "0x100000": 1 << 20, "0X10": 16, "010": 10} {
		var o offsetFlag
		if err := o.Set(s); err != nil || int64(o) != want {
			t.Errorf("%s: %d %v, want %d", s, o, err, want)
		}
	}
	for _, s := range []string{"-1", "1M", "0x", "", "1e6"} {
		var o offsetFlag
		if err := o.Set(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
