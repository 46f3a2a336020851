package seed

import (
	"encoding/base64"
	"fmt"
	"github.com/guestinject/guestinject/inject"
	"path"
	"strings"
)

// shellQuote quotes s for sh as one single-quoted word: every byte but
// the single quote stands for itself inside '...'.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var varRE = lazyRE(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// shellReserved are names a sourced context.sh must not set: the shell's
// own and the loader's.
var shellReserved = map[string]bool{
	"PATH": true, "IFS": true, "ENV": true, "BASH_ENV": true, "HOME": true, "SHELL": true,
	"PS1": true, "PS2": true, "PS4": true, "CDPATH": true, "SHELLOPTS": true, "BASHOPTS": true,
	"PWD": true, "OLDPWD": true, "OPTIND": true, "OPTARG": true, "UID": true, "EUID": true,
	"PPID": true, "USER": true, "LOGNAME": true, "TMPDIR": true, "GLOBIGNORE": true,
	"PROMPT_COMMAND": true, "MAIL": true, "MAILPATH": true, "HISTFILE": true, "TERM": true,
}

// contextVar reports whether name is one context.sh's generated
// variables use (so a --meta pair may not set it).
var generatedRE = lazyRE(`^(ETH[0-9]+_.*|SSH_PUBLIC_KEY|USERNAME|HOSTNAME|SET_HOSTNAME|PASSWORD|CRYPTED_PASSWORD|USER_DATA|USERDATA_ENCODING|DISK_ID|TARGET|FILES|LD_.*|BASH_.*)$`)

// buildOpenNebula lays out the CONTEXT disk: context.sh and the --file
// files beside it under their base names.
func buildOpenNebula(d *Data) ([]File, error) {
	var b strings.Builder
	b.WriteString("# Context variables written by guestinject\n")
	set := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(v)) }
	if d.Hostname != "" {
		set("HOSTNAME", d.Hostname)
		set("SET_HOSTNAME", d.Hostname)
	}
	user := ""
	switch len(d.Keys) {
	case 0:
	case 1:
		user = userOf(d.Keys[0].User)
		set("SSH_PUBLIC_KEY", strings.Join(d.Keys[0].Keys, "\n"))
	default:
		return nil, fmt.Errorf("%w: opennebula: context.sh has keys for one user (USERNAME); keys for %d users given", ErrInvalid, len(d.Keys))
	}
	if p := d.Password; p != nil {
		pu := userOf(p.User)
		if user != "" && user != pu {
			return nil, fmt.Errorf("%w: opennebula: the password is for %q but the keys for %q; context.sh names one USERNAME", ErrInvalid, pu, user)
		}
		user = pu
		h, err := passwordHash(p, d.InstanceID)
		if err != nil {
			return nil, err
		}
		set("CRYPTED_PASSWORD", h)
	}
	if user != "" {
		set("USERNAME", user)
	}
	for i := range d.Network {
		ifc := &d.Network[i]
		p := fmt.Sprintf("ETH%d_", i)
		if ifc.HWAddr == nil {
			return nil, fmt.Errorf("%w: opennebula: interface %q: give hw=MAC (the guest's context scripts find the NIC for ETH%d by ETH%d_MAC)", ErrInvalid, ifc.Name, i, i)
		}
		routes, err := oneRoutes(ifc)
		if err != nil {
			return nil, err
		}
		set(p+"MAC", strings.ToLower(ifc.HWAddr.String()))
		switch {
		case ifc.DHCP:
			set(p+"METHOD", "dhcp")
		case ifc.Address.IsValid():
			set(p+"IP", ifc.Address.Addr().String())
			set(p+"MASK", maskOf(ifc.Address))
			if ifc.Gateway.IsValid() {
				set(p+"GATEWAY", ifc.Gateway.String())
			}
		}
		switch {
		case ifc.IPv6.DHCP:
			set(p+"IP6_METHOD", "dhcp")
		case ifc.IPv6.Address.IsValid():
			set(p+"IP6", ifc.IPv6.Address.Addr().String())
			set(p+"IP6_PREFIX_LENGTH", fmt.Sprint(ifc.IPv6.Address.Bits()))
			if ifc.IPv6.Gateway.IsValid() {
				set(p+"IP6_GATEWAY", ifc.IPv6.Gateway.String())
			}
		}
		if len(ifc.DNS) > 0 {
			var dns []string
			for _, a := range ifc.DNS {
				dns = append(dns, a.String())
			}
			set(p+"DNS", strings.Join(dns, " "))
		}
		if len(ifc.Search) > 0 {
			set(p+"SEARCH_DOMAIN", strings.Join(ifc.Search, " "))
		}
		if ifc.MTU != 0 {
			set(p+"MTU", fmt.Sprint(ifc.MTU))
		}
		if routes != "" {
			set(p+"ROUTES", routes)
		}
	}
	if len(d.UserData) > 0 {
		set("USER_DATA", base64.StdEncoding.EncodeToString(d.UserData))
		set("USERDATA_ENCODING", "base64")
	}
	for _, k := range sortedKeys(d.Meta) {
		if !varRE().MatchString(k) || shellReserved[k] || generatedRE().MatchString(k) {
			return nil, fmt.Errorf("%w: opennebula: metadata key %q: want a shell variable name ([A-Za-z_][A-Za-z0-9_]*, at most 64) that is not the shell's own nor one context.sh writes", ErrInvalid, k)
		}
		set(k, d.Meta[k])
	}
	files := []File{{Path: "context.sh", Data: []byte(b.String())}}
	names := map[string]string{"context.sh": "context.sh"}
	for _, f := range d.Files {
		base := path.Base(f.Path)
		if prev, dup := names[base]; dup {
			return nil, fmt.Errorf("%w: opennebula: files %q and %q share the name %q on the CONTEXT disk", ErrInvalid, prev, f.Path, base)
		}
		names[base] = f.Path
		mode := File{}.mode()
		if f.Mode != nil {
			mode = f.Mode.Perm()
		}
		files = append(files, File{Path: base, Data: f.Data, Mode: mode})
	}
	return files, nil
}

// oneRoutes renders an interface's static routes as one-context reads
// ETHx_ROUTES: "NET/PREFIX via GW" entries joined by ", " (the context
// scripts split on commas, then take the first and third words). They carry
// IPv4 routes only, so an IPv6 route is refused rather than dropped.
func oneRoutes(ifc *inject.Interface) (string, error) {
	var out []string
	for _, r := range ifc.Routes {
		if !r.To.Addr().Is4() || !r.Via.Is4() {
			return "", fmt.Errorf("%w: opennebula: interface %q: route %s via %s: context.sh carries IPv4 routes only (ETHx_ROUTES)", ErrInvalid, ifc.Name, r.To, r.Via)
		}
		out = append(out, r.To.Masked().String()+" via "+r.Via.String())
	}
	return strings.Join(out, ", "), nil
}
