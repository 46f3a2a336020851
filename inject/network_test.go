package inject

import (
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// goldenNetworks are rendered and compared with testdata/NAME.golden.
var goldenNetworks = []struct {
	name string
	ifs  []Interface
}{
	{"static", []Interface{{
		Name: "eth0", Address: pfx("192.0.2.10/24"), Gateway: addr("192.0.2.1"),
		DNS: []netip.Addr{addr("192.0.2.53"), addr("198.51.100.53")},
	}}},
	{"static-hwaddr", []Interface{{
		Name: "ens3", Address: pfx("10.1.2.3/16"), HWAddr: mac("52:54:00:12:34:56"),
	}}},
	{"dhcp", []Interface{{Name: "eth0", DHCP: true}}},
	{"dhcp-hwaddr-dns", []Interface{{
		Name: "eth0", DHCP: true, HWAddr: mac("52:54:00:AB:CD:EF"), DNS: []netip.Addr{addr("9.9.9.9")},
	}}},
	{"dual-stack", []Interface{{
		Name: "eth0", Address: pfx("203.0.113.7/28"), Gateway: addr("203.0.113.1"),
		DNS:  []netip.Addr{addr("203.0.113.2"), addr("2001:db8::53")},
		IPv6: IPv6{Address: pfx("2001:db8::7/64"), Gateway: addr("2001:db8::1")},
	}}},
	{"ipv6-only", []Interface{{
		Name: "eth0", IPv6: IPv6{Address: pfx("2001:db8:1::10/48")}, DNS: []netip.Addr{addr("2001:db8::53")},
	}}},
	{"point-to-point", []Interface{
		{Name: "eth0", Address: pfx("192.0.2.0/31"), Gateway: addr("192.0.2.1")},
		{Name: "eth1", Address: pfx("198.51.100.9/32")},
	}},
	{"multi", []Interface{
		{Name: "eth0", Address: pfx("192.168.1.10/24"), Gateway: addr("192.168.1.1"), DNS: []netip.Addr{addr("192.168.1.1")}, HWAddr: mac("02:00:00:00:00:01")},
		{Name: "eth1", DHCP: true, IPv6: IPv6{Address: pfx("fd00::2/64")}},
		{Name: "eth0.100", Address: pfx("172.16.0.5/12")},
	}},
	{"routes-mtu-search", []Interface{{
		Name: "ens3", Address: pfx("192.0.2.10/24"), Gateway: addr("192.0.2.1"), MTU: 1450,
		DNS: []netip.Addr{addr("192.0.2.53")}, Search: []string{"example.com", "corp.example"},
		IPv6:   IPv6{Address: pfx("2001:db8::10/64"), Gateway: addr("2001:db8::1")},
		Routes: []Route{{pfx("10.0.0.0/8"), addr("192.0.2.254")}, {pfx("2001:db8:9::/48"), addr("2001:db8::fe")}},
	}}},
	{"dhcp-both-mac-mtu", []Interface{{
		Name: "eth0", DHCP: true, IPv6: IPv6{DHCP: true}, HWAddr: mac("52:54:00:12:34:56"), MTU: 9000,
		Search: []string{"example.net"}, Routes: []Route{{pfx("198.51.100.0/24"), addr("192.0.2.254")}},
	}}},
	{"dhcp6-only", []Interface{{Name: "eth1", IPv6: IPv6{DHCP: true}, DNS: []netip.Addr{addr("2001:db8::53")}}}},
	// Names YAML would read as a number or a boolean, a VLAN, an alias.
	{"odd-names", []Interface{
		{Name: "1234", DHCP: true}, {Name: "true", Address: pfx("192.0.2.2/24")},
		{Name: "en_1-a.10", DHCP: true}, {Name: "eth0:1", Address: pfx("198.51.100.2/24")},
	}},
}

func TestRenderInterfacesGolden(t *testing.T) {
	for _, c := range goldenNetworks {
		t.Run(c.name, func(t *testing.T) {
			must(t, ValidateInterfaces(c.ifs))
			got := RenderInterfaces(c.ifs)
			golden := filepath.Join("testdata", c.name+".golden")
			if *update {
				must(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			must(t, err)
			if string(got) != string(want) {
				t.Errorf("rendered:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

func TestV4MaskBroadcast(t *testing.T) {
	for _, c := range []struct{ p, mask, bcast string }{
		{"192.0.2.10/24", "255.255.255.0", "192.0.2.255"},
		{"10.1.2.3/8", "255.0.0.0", "10.255.255.255"},
		{"172.16.5.4/20", "255.255.240.0", "172.16.15.255"},
		{"1.2.3.4/1", "128.0.0.0", "127.255.255.255"},
		{"192.0.2.1/31", "255.255.255.254", "invalid IP"},
		{"192.0.2.1/32", "255.255.255.255", "invalid IP"},
	} {
		m, b := v4MaskBroadcast(pfx(c.p))
		if m.String() != c.mask || b.String() != c.bcast {
			t.Errorf("%s: %v %v, want %s %s", c.p, m, b, c.mask, c.bcast)
		}
	}
}

func TestNetworkApply(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		ifs := goldenNetworks[0].ifs
		old := read(t, g.fs, InterfacesPath)
		rep, err := Apply(g.fs, &Data{Network: &Network{Interfaces: ifs}}, nil)
		must(t, err)
		want, _ := MergeInterfaces([]byte(old), ifs)
		if got := read(t, g.fs, InterfacesPath); got != string(want) || !strings.HasPrefix(got, old) {
			t.Errorf("interfaces = %q, want %q", got, want)
		}
		if rep.Items[0].Path != InterfacesPath || rep.Items[0].Status != StatusDone {
			t.Errorf("report %+v", rep.Items[0])
		}
	})
}

func TestNetworkVerbatimCreatesDirectory(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.ReplaceFile("/etc/network/interfaces", nil)) // keep the dir non-empty for Remove order
		must(t, removeTree(g.fs, "/etc/network"))
		verbatim := []byte("auto eth0\niface eth0 inet dhcp\n")
		// Nothing is left to detect the stack from: the format is given.
		_, err := Apply(g.fs, &Data{Network: &Network{Verbatim: verbatim, Format: FormatIfupdown}}, nil)
		must(t, err)
		if got := read(t, g.fs, InterfacesPath); got != string(verbatim) {
			t.Errorf("interfaces = %q", got)
		}
		wantAttr(t, g.fs, "/etc/network", 0o755, 0, 0)
		wantAttr(t, g.fs, InterfacesPath, 0o644, 0, 0)
	})
}

func TestNetworkErrors(t *testing.T) {
	ok := Interface{Name: "eth0", Address: pfx("192.0.2.10/24")}
	with := func(f func(*Interface)) []Interface { i := ok; f(&i); return []Interface{i} }
	cases := map[string]*Network{
		"nothing":          {},
		"both":             {Verbatim: []byte("auto lo\n"), Interfaces: []Interface{ok}},
		"empty verbatim":   {Verbatim: []byte{}},
		"NUL verbatim":     {Verbatim: []byte("auto\x00")},
		"duplicate name":   {Interfaces: []Interface{ok, ok}},
		"no name":          {Interfaces: with(func(i *Interface) { i.Name = "" })},
		"long name":        {Interfaces: with(func(i *Interface) { i.Name = "abcdefghijklmnop" })},
		"space in name":    {Interfaces: with(func(i *Interface) { i.Name = "eth 0" })},
		"newline in name":  {Interfaces: with(func(i *Interface) { i.Name = "eth0\naddress" })},
		"slash in name":    {Interfaces: with(func(i *Interface) { i.Name = "a/b" })},
		"lo":               {Interfaces: with(func(i *Interface) { i.Name = "lo" })},
		"shell in name":    {Interfaces: with(func(i *Interface) { i.Name = "e;reboot" })},
		"dollar in name":   {Interfaces: with(func(i *Interface) { i.Name = "e$(x)" })},
		"quote in name":    {Interfaces: with(func(i *Interface) { i.Name = "e'0" })},
		"glob in name":     {Interfaces: with(func(i *Interface) { i.Name = "en*" })},
		"leading dash":     {Interfaces: with(func(i *Interface) { i.Name = "-eth0" })},
		"leading dot":      {Interfaces: with(func(i *Interface) { i.Name = ".eth0" })},
		"no address":       {Interfaces: with(func(i *Interface) { i.Address = netip.Prefix{} })},
		"dhcp and static":  {Interfaces: with(func(i *Interface) { i.DHCP = true })},
		"v6 as v4":         {Interfaces: with(func(i *Interface) { i.Address = pfx("2001:db8::1/64") })},
		"prefix 0":         {Interfaces: with(func(i *Interface) { i.Address = pfx("192.0.2.1/0") })},
		"v6 gateway on v4": {Interfaces: with(func(i *Interface) { i.Gateway = addr("2001:db8::1") })},
		"gateway on dhcp":  {Interfaces: []Interface{{Name: "eth0", DHCP: true, Gateway: addr("192.0.2.1")}}},
		"bad mac":          {Interfaces: with(func(i *Interface) { i.HWAddr = mac("00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01") })},
		"invalid dns":      {Interfaces: with(func(i *Interface) { i.DNS = []netip.Addr{{}} })},
		"v4 as v6":         {Interfaces: with(func(i *Interface) { i.IPv6.Address = pfx("192.0.2.1/24") })},
		"v6 gw no v6":      {Interfaces: with(func(i *Interface) { i.IPv6.Gateway = addr("2001:db8::1") })},
		"v6 gw is v4":      {Interfaces: with(func(i *Interface) { i.IPv6 = IPv6{Address: pfx("2001:db8::2/64"), Gateway: addr("192.0.2.1")} })},
		"network address":  {Interfaces: with(func(i *Interface) { i.Address = pfx("192.0.2.0/24") })},
		"broadcast":        {Interfaces: with(func(i *Interface) { i.Address = pfx("192.0.2.255/24") })},
		"gw outside":       {Interfaces: with(func(i *Interface) { i.Gateway = addr("198.51.100.1") })},
		"gw is self":       {Interfaces: with(func(i *Interface) { i.Gateway = addr("192.0.2.10") })},
		"gw is broadcast":  {Interfaces: with(func(i *Interface) { i.Gateway = addr("192.0.2.255") })},
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			g := memGuest(t)
			before := snapshot(t, g)
			_, err := Apply(g, &Data{Network: n}, nil)
			wantErr(t, err, ErrInvalidNetwork)
			if after := snapshot(t, g); after != before {
				t.Error("guest changed")
			}
		})
	}
}
