package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/guestinject/guestinject/inject"
)

// parseIP parses one --ip value:
// IFACE=ADDR/PREFIX|dhcp|dhcp6[,gw=GW][,dns=DNS1;DNS2][,search=DOM1;DOM2]
// [,hw=MAC][,ip6=ADDR/PREFIX|dhcp][,gw6=GW][,mtu=N][,route=NET/PREFIX via GW]...
// An IPv6 ADDR/PREFIX in first place is the interface's static IPv6 (then
// gw= is the IPv6 gateway); route= is repeatable, every other option is
// given at most once.
func parseIP(s string) (inject.Interface, error) {
	var ifc inject.Interface
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" || rest == "" {
		return ifc, fmt.Errorf("--ip %q: want IFACE=ADDR/PREFIX[,gw=GW][,dns=DNS1;DNS2][,hw=MAC]..., IFACE=dhcp or IFACE=dhcp6", s)
	}
	ifc.Name = name
	parts := strings.Split(rest, ",")
	if err := parseIPAddr(&ifc, parts[0]); err != nil {
		return ifc, fmt.Errorf("--ip %q: %w", s, err)
	}
	seen := map[string]bool{}
	for _, opt := range parts[1:] {
		k, v, ok := strings.Cut(opt, "=")
		if !ok || seen[k] && k != "route" {
			return ifc, fmt.Errorf("--ip %q: option %q is not KEY=VALUE or given twice", s, opt)
		}
		seen[k] = true
		if err := parseIPOption(&ifc, k, v); err != nil {
			return ifc, fmt.Errorf("--ip %q: %w", s, err)
		}
	}
	return ifc, nil
}

func parseIPAddr(ifc *inject.Interface, a string) error {
	switch a {
	case "dhcp":
		ifc.DHCP = true
		return nil
	case "dhcp6":
		ifc.IPv6.DHCP = true
		return nil
	}
	p, err := netip.ParsePrefix(a)
	if err != nil {
		return fmt.Errorf("address %q: want ADDR/PREFIX, dhcp or dhcp6", a)
	}
	if p.Addr().Is6() {
		ifc.IPv6.Address = p
	} else {
		ifc.Address = p
	}
	return nil
}

func parseIPOption(ifc *inject.Interface, k, v string) error {
	switch k {
	case "gw", "gw6":
		gw, err := netip.ParseAddr(v)
		if err != nil {
			return fmt.Errorf("%s %q: %w", k, v, err)
		}
		if k == "gw6" || (!ifc.Address.IsValid() && !ifc.DHCP && gw.Is6()) {
			ifc.IPv6.Gateway = gw
		} else {
			ifc.Gateway = gw
		}
	case "dns":
		for _, d := range strings.Split(v, ";") {
			a, err := netip.ParseAddr(d)
			if err != nil {
				return fmt.Errorf("dns %q: %w", d, err)
			}
			ifc.DNS = append(ifc.DNS, a)
		}
	case "hw":
		m, err := net.ParseMAC(v)
		if err != nil {
			return fmt.Errorf("hw %q: %w", v, err)
		}
		ifc.HWAddr = m
	case "search":
		ifc.Search = append(ifc.Search, strings.Split(v, ";")...)
	case "mtu":
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("mtu %q: want a number of bytes", v)
		}
		ifc.MTU = n
	case "route":
		to, via, ok := strings.Cut(strings.TrimSpace(v), " via ")
		if !ok {
			return fmt.Errorf("route %q: want NET/PREFIX via GATEWAY", v)
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(to))
		if err != nil {
			return fmt.Errorf("route %q: %w", v, err)
		}
		gw, err := netip.ParseAddr(strings.TrimSpace(via))
		if err != nil {
			return fmt.Errorf("route %q: %w", v, err)
		}
		ifc.Routes = append(ifc.Routes, inject.Route{To: p, Via: gw})
	case "ip6":
		if v == "dhcp" {
			ifc.IPv6.DHCP = true
			return nil
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return fmt.Errorf("ip6 %q: %w", v, err)
		}
		ifc.IPv6.Address = p
	default:
		return fmt.Errorf("unknown option %q (want gw, dns, search, hw, ip6, gw6, mtu, route)", k)
	}
	return nil
}
