package inject

import (
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/guestinject/guestinject/vfs"
)

// prepareNetwork validates the network, settles the format (given, or
// detected from the guest), renders the files and plans their writes: each
// file replaced whole (they are ours: one per interface, or the one
// netplan file; ifupdown's interfaces file keeps the other interfaces'
// stanzas, see MergeInterfaces), its directory made, and
// the mode and owner the stack expects. Other files that configure the
// same interfaces are reported and left alone, or refused when they would
// make ours configure nothing.
func prepareNetwork(fsys vfs.FS, n *Network) *item {
	it := newItem(KindNetwork, InterfacesPath)
	if err := validateNetwork(n); err != nil {
		return it.fail(err)
	}
	nr := &NetworkReport{}
	it.rep.Network = nr
	format, err := ParseNetFormat(string(n.Format))
	if err != nil {
		return it.fail(err)
	}
	if format == FormatAuto {
		d, err := DetectNetFormat(fsys)
		if d != nil {
			nr.NetDetection = *d
		}
		if err != nil {
			return it.fail(err)
		}
		format = d.Format
	} else {
		nr.Format, nr.Reason = format, "given (--net-format "+string(format)+")"
	}
	if n.Verbatim != nil && format != FormatIfupdown {
		return it.fail(fmt.Errorf("%w: a verbatim file is an interfaces(5) file, but the guest's network format is %s (%s); use --ip", ErrInvalidNetwork, format, nr.Reason))
	}
	var wickedCfg []byte
	if format == FormatWicked {
		if wickedCfg, _, err = readGuestOptional(fsys, wickedConfig); err != nil {
			return it.fail(err)
		}
	}
	files := []netFile{{InterfacesPath, n.Verbatim, 0o644}}
	if n.Verbatim == nil {
		if files, err = renderFiles(format, n.Interfaces, wickedCfg); err != nil {
			return it.fail(err)
		}
	}
	var stanzas []string
	if n.Verbatim == nil && format == FormatIfupdown { // other interfaces' stanzas stay
		old, _, err := readGuestOptional(fsys, InterfacesPath)
		if err != nil {
			return it.fail(err)
		}
		ng, err := newProbe(fsys).first(false, ifupdownNG...)
		if err != nil {
			return it.fail(err)
		}
		if ng != "" {
			nr.Dialect = "ifupdown-ng (" + ng + ")"
		}
		files[0].data, stanzas = mergeENI(old, n.Interfaces, ng != "")
	}
	it.rep.Path = files[0].path
	if err := scanOthers(fsys, format, n.Interfaces, files, nr); err != nil {
		return it.fail(err)
	}
	made := map[string]bool{}
	for _, f := range files {
		dir := path.Dir(f.path)
		if _, err := checkDirPath(fsys, dir); err != nil {
			return it.fail(err)
		}
		if err := checkNotDir(fsys, f.path); err != nil {
			return it.fail(err)
		}
		if ok, err := fsys.HasFile(f.path); err != nil {
			return it.fail(err)
		} else if ok && f.path == InterfacesPath && len(stanzas) > 0 {
			nr.Replaced = append(nr.Replaced, fmt.Sprintf("%s (its stanzas %q)", f.path, stanzas))
		} else if ok {
			nr.Replaced = append(nr.Replaced, f.path)
		}
		if !made[dir] {
			it.mkdir(dir)
			made[dir] = true
		}
		it.replace(f.path, f.data)
		if format != FormatIfupdown { // nova's interfaces file keeps its mode
			it.chmod(f.path, f.mode)
			it.chown(f.path, 0, 0)
		}
		nr.Files = append(nr.Files, f.path)
	}
	it.rep.Summary = netSummary(n, nr)
	return it
}

func netSummary(n *Network, nr *NetworkReport) string {
	var b strings.Builder
	if n.Verbatim != nil {
		fmt.Fprintf(&b, "verbatim, format %s", nr.Format)
	} else {
		fmt.Fprintf(&b, "%d interface(s) rendered as %s", len(n.Interfaces), nr.Format)
	}
	if nr.Dialect != "" {
		fmt.Fprintf(&b, " for %s", nr.Dialect)
	}
	fmt.Fprintf(&b, "; chosen because %s", nr.Reason)
	if len(nr.Replaced) > 0 {
		fmt.Fprintf(&b, "; replaced %s", strings.Join(nr.Replaced, ", "))
	}
	if len(nr.AlsoConfigured) > 0 {
		fmt.Fprintf(&b, "; left alone but also configuring: %s", strings.Join(nr.AlsoConfigured, ", "))
	}
	return b.String()
}

// ifupdownNG are the marks of ifupdown-ng (Alpine's ifupdown): its
// executors' directory and its multi-call binary.
var ifupdownNG = []string{"/usr/libexec/ifupdown-ng", "/sbin/ifupdown", "/usr/sbin/ifupdown"}

// ifaceKey is what identifies an interface in other files: its name, and
// its MAC when given.
type ifaceKey struct {
	name string
	mac  net.HardwareAddr
}

func keysOf(ifs []Interface) []ifaceKey {
	k := make([]ifaceKey, len(ifs))
	for i := range ifs {
		k[i] = ifaceKey{ifs[i].Name, ifs[i].HWAddr}
	}
	return k
}

func macIs(s string, mac net.HardwareAddr) bool {
	if mac == nil {
		return false
	}
	m, err := net.ParseMAC(strings.Trim(strings.TrimSpace(s), `"'`))
	return err == nil && m.String() == mac.String()
}

// scanOthers finds the guest's other files that configure one of the
// interfaces in the same stack, records them in nr, and refuses when one
// would take precedence over ours (systemd-networkd applies only the
// first .network file, in name order, that matches a link).
func scanOthers(fsys vfs.FS, f NetFormat, ifs []Interface, files []netFile, nr *NetworkReport) error {
	if len(ifs) == 0 {
		return nil
	}
	p := newProbe(fsys)
	ours := map[string]bool{}
	for _, nf := range files {
		ours[nf.path] = true
	}
	keys := keysOf(ifs)
	type src struct {
		dir, prefix, suffix string
		match               func(text string, k ifaceKey) bool
	}
	var srcs []src
	switch f {
	case FormatNetplan:
		for _, d := range []string{"/lib/netplan", "/etc/netplan"} {
			srcs = append(srcs, src{d, "", ".yaml", netplanNames})
		}
	case FormatNetworkManager:
		srcs = append(srcs, src{nmDir, "", "", keyfileNames}, src{ifcfgDir, "ifcfg-", "", ifcfgNames})
	case FormatIfcfg: // NetworkManager reads keyfiles beside ifcfg files
		srcs = append(srcs, src{ifcfgDir, "ifcfg-", "", ifcfgNames}, src{nmDir, "", "", keyfileNames})
	case FormatIfupdown:
		srcs = append(srcs, src{"/etc/network/interfaces.d", "", "", eniNames})
	case FormatNetworkd:
		return scanNetworkd(p, keys, ours, nr)
	}
	for _, s := range srcs {
		ents, err := p.list(s.dir, s.prefix, s.suffix)
		if err != nil {
			return err
		}
		for _, name := range sortedNames(ents) {
			fp := s.dir + "/" + name
			if ours[fp] {
				continue
			}
			b, err := p.read(fp)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if s.match(string(b), k) {
					why := k.name
					if f == FormatNetplan {
						why += "; netplan merges it with ours: our settings win, its addresses, routes and name servers are added"
					}
					nr.AlsoConfigured = append(nr.AlsoConfigured, fmt.Sprintf("%s (%s)", fp, why))
					break
				}
			}
		}
	}
	return nil
}

func unquote(s string) string { return strings.Trim(strings.TrimSpace(s), `"'`) }

// netplanNames: an ethernets/devices key, a set-name or a match on the
// name or MAC (a line scan: netplan's YAML keys are on lines of their own).
func netplanNames(text string, k ifaceKey) bool {
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if key, v, ok := strings.Cut(t, ":"); ok {
			switch {
			case unquote(key) == k.name && strings.TrimSpace(v) == "":
				return true
			case (key == "set-name" || key == "name") && unquote(v) == k.name:
				return true
			case key == "macaddress" && macIs(v, k.mac):
				return true
			}
		}
	}
	return false
}

// keyfileNames: interface-name= or mac-address= of a NetworkManager
// keyfile.
func keyfileNames(text string, k ifaceKey) bool {
	for _, line := range strings.Split(text, "\n") {
		key, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		switch {
		case !ok:
		case strings.TrimSpace(key) == "interface-name" && strings.TrimSpace(v) == k.name:
			return true
		case strings.TrimSpace(key) == "mac-address" && macIs(v, k.mac):
			return true
		}
	}
	return false
}

// ifcfgNames: DEVICE= or HWADDR= of an ifcfg file.
func ifcfgNames(text string, k ifaceKey) bool {
	for _, line := range strings.Split(text, "\n") {
		key, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		switch {
		case !ok:
		case key == "DEVICE" && unquote(v) == k.name:
			return true
		case key == "HWADDR" && macIs(v, k.mac):
			return true
		}
	}
	return false
}

// eniNames: an iface, auto or allow-* stanza naming the interface.
func eniNames(text string, k ifaceKey) bool {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if f[0] == "iface" && f[1] == k.name {
			return true
		}
		if f[0] == "auto" || strings.HasPrefix(f[0], "allow-") {
			for _, n := range f[1:] {
				if n == k.name {
					return true
				}
			}
		}
	}
	return false
}

// networkdDirs are where systemd-networkd reads .network files from disk
// (/run is empty in an image).
var networkdDirs = []string{"/etc/systemd/network", "/usr/lib/systemd/network", "/lib/systemd/network"}

// scanNetworkd reads the [Match] section of every other .network file:
// one that matches an interface is reported; one that also sorts before
// ours is refused, since networkd would apply it instead of ours. A file
// in /etc masks one of the same name in /usr/lib.
func scanNetworkd(p *probe, keys []ifaceKey, ours map[string]bool, nr *NetworkReport) error {
	seen := map[string]bool{}
	for _, dir := range networkdDirs {
		ents, err := p.list(dir, "", ".network")
		if err != nil {
			return err
		}
		for _, name := range sortedNames(ents) {
			fp := dir + "/" + name
			if seen[name] || ours[fp] {
				continue
			}
			seen[name] = true
			b, err := p.read(fp)
			if err != nil {
				return err
			}
			if len(b) == 0 { // an empty file masks, as a link to /dev/null does
				continue
			}
			for _, k := range keys {
				m := networkdMatches(string(b), k)
				if m == matchNo {
					continue
				}
				mine := networkdPrefix + k.name + ".network"
				if m == matchYes && name < mine {
					return fmt.Errorf("%w: %s matches %s and sorts before %s, so systemd-networkd would apply it instead; remove it or use another format", ErrNetworkConflict, fp, k.name, mine)
				}
				why := k.name
				if m == matchMaybe {
					why += ", perhaps: its [Match] tests more than name and MAC"
				}
				nr.AlsoConfigured = append(nr.AlsoConfigured, fmt.Sprintf("%s (%s)", fp, why))
				break
			}
		}
	}
	return nil
}

type match int

const (
	matchNo match = iota
	matchYes
	matchMaybe
)

// networkdMatches evaluates a .network file's [Match] Name= globs and
// MACAddress= lists against k. Other match keys make a match uncertain;
// an empty [Match] matches every link.
func networkdMatches(text string, k ifaceKey) match {
	section := ""
	var names, macs []string
	other := false
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if strings.HasPrefix(t, "[") {
			section = t
			continue
		}
		key, v, ok := strings.Cut(t, "=")
		if !ok || section != "[Match]" {
			continue
		}
		switch strings.TrimSpace(key) {
		case "Name":
			names = append(names, strings.Fields(v)...)
		case "MACAddress", "PermanentMACAddress":
			macs = append(macs, strings.Fields(v)...)
		default:
			other = true
		}
	}
	ok := true
	if len(names) > 0 {
		ok = false
		for _, g := range names {
			neg := strings.HasPrefix(g, "!")
			if m, _ := path.Match(strings.TrimPrefix(g, "!"), k.name); m != neg {
				ok = true
			}
		}
	}
	if len(macs) > 0 {
		in := false
		for _, m := range macs {
			in = in || macIs(m, k.mac)
		}
		if k.mac == nil {
			return matchMaybe // the MAC of the device named k.name is not known
		}
		ok = ok && in
	}
	switch {
	case !ok:
		return matchNo
	case other:
		return matchMaybe
	}
	return matchYes
}
