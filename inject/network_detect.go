package inject

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/guestinject/guestinject/vfs"
)

// NetDetection says which network configuration format the guest uses and
// why: the chosen format, the reason, and every stack found.
type NetDetection struct {
	Format     NetFormat      `json:"format"`
	Reason     string         `json:"reason"`
	Candidates []NetCandidate `json:"candidates,omitempty"`
}

// NetCandidate is one network stack found in the guest. Active means
// installed and enabled (netplan: installed with /etc/netplan present;
// ifcfg: network-scripts on a RHEL-family release that prefers them);
// otherwise only its files were found.
type NetCandidate struct {
	Format   NetFormat `json:"format"`
	Active   bool      `json:"active"`
	Evidence []string  `json:"evidence"`
}

// maxProbeFile bounds the guest configuration files detection reads
// (os-release, NetworkManager.conf, other stacks' files).
const maxProbeFile = 1 << 20

// maxProbeEntries bounds the directory entries detection and the conflict
// scan look at; a larger directory is refused, not half read.
const maxProbeEntries = 4096

// probe reads the guest for detection. On a backend without vfs.Reader
// (none of this project's own) it sees only what HasFile and ReadFile say:
// no directory listings, no file types, no symlinks.
type probe struct {
	fsys vfs.FS
	r    vfs.Reader // nil: HasFile only
	// budget is what is left of the bytes the probe may read in all:
	// a hostile guest's thousands of 1 MiB files are refused, not read.
	budget int64
}

// maxProbeBytes bounds what detection and the conflict scan read in all.
const maxProbeBytes = 16 << 20

func newProbe(fsys vfs.FS) *probe {
	r, _ := fsys.(vfs.Reader)
	return &probe{fsys, r, maxProbeBytes}
}

// lexists reports whether path exists, a symlink itself counting (dangling
// or not) when the backend can tell.
func (p *probe) lexists(path string) (vfs.FileInfo, bool, error) {
	if p.r == nil {
		ok, err := p.fsys.HasFile(path)
		return vfs.FileInfo{}, ok, err
	}
	fi, err := p.r.Lstat(path)
	if missing(err) {
		return fi, false, nil
	}
	return fi, err == nil, err
}

// missing reports whether err means the object is not there.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, vfs.ErrNotDir)
}

// stat follows a final symlink; a missing object is the zero FileInfo and
// false.
func (p *probe) stat(path string) (vfs.FileInfo, bool, error) {
	if p.r == nil {
		ok, err := p.fsys.HasFile(path)
		return vfs.FileInfo{}, ok, err
	}
	fi, err := p.r.Stat(path)
	if missing(err) {
		return fi, false, nil
	}
	return fi, err == nil, err
}

// first returns the first of paths that exists (any type but a directory
// when file is true).
func (p *probe) first(file bool, paths ...string) (string, error) {
	for _, path := range paths {
		fi, ok, err := p.stat(path)
		if err != nil {
			return "", err
		}
		if ok && (!file || !fi.IsDir()) {
			return path, nil
		}
	}
	return "", nil
}

func (p *probe) isDir(path string) (bool, error) {
	fi, ok, err := p.stat(path)
	return ok && (fi.IsDir() || p.r == nil), err
}

// list returns the names in dir (a missing dir is empty) that end in
// suffix and start with prefix; at most maxProbeEntries entries are looked
// at.
func (p *probe) list(dir, prefix, suffix string) ([]vfs.FileInfo, error) {
	if p.r == nil {
		return nil, nil
	}
	ents, err := p.r.ReadDir(dir)
	if missing(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(ents) > maxProbeEntries {
		return nil, vfs.PathErr("readdir", dir, fmt.Errorf("%w: %d entries, the network injector looks at %d at most", ErrTooLarge, len(ents), maxProbeEntries))
	}
	var out []vfs.FileInfo
	for _, e := range ents {
		if strings.HasPrefix(e.Name, prefix) && strings.HasSuffix(e.Name, suffix) && !e.IsDir() {
			out = append(out, e)
		}
	}
	return out, nil
}

// read reads a small guest file; a missing one is nil.
func (p *probe) read(path string) ([]byte, error) {
	fi, ok, err := p.stat(path)
	if err != nil || !ok {
		return nil, err
	}
	if fi.IsDir() {
		return nil, vfs.PathErr("read", path, vfs.ErrIsDir)
	}
	if fi.Size > maxProbeFile {
		return nil, vfs.PathErr("read", path, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, fi.Size, maxProbeFile))
	}
	if fi.Size > p.budget {
		return nil, vfs.PathErr("read", path, fmt.Errorf("%w: the network configuration files read exceed %d bytes in all", ErrTooLarge, maxProbeBytes))
	}
	b, err := p.fsys.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p.budget -= int64(len(b))
	if len(b) > maxProbeFile {
		return nil, vfs.PathErr("read", path, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), maxProbeFile))
	}
	return b, nil
}

// wantsDirs are where `systemctl enable` puts a network service's links.
var wantsDirs = []string{"multi-user.target.wants", "network-online.target.wants", "sockets.target.wants", "sysinit.target.wants", "graphical.target.wants"}

const unitDir = "/etc/systemd/system"

// enabled returns the link that enables unit (or one of its aliases), or
// "" when none does or the unit is masked.
func (p *probe) enabled(unit string, aliases ...string) (string, error) {
	if fi, _, err := p.lexists(unitDir + "/" + unit); err != nil {
		return "", err
	} else if fi.Target == "/dev/null" {
		return "", nil
	}
	var paths []string
	for _, w := range wantsDirs {
		paths = append(paths, unitDir+"/"+w+"/"+unit)
	}
	for _, a := range aliases {
		paths = append(paths, unitDir+"/"+a)
	}
	for _, path := range paths {
		if _, ok, err := p.lexists(path); err != nil || ok {
			return path, err
		}
	}
	return "", nil
}

// osRelease is the part of os-release(5) detection uses.
type osRelease struct {
	id, versionID string
	like          []string // ID and ID_LIKE
}

func (o osRelease) is(ids ...string) bool {
	for _, l := range o.like {
		for _, id := range ids {
			if l == id {
				return true
			}
		}
	}
	return false
}

// major is VERSION_ID's number before the first dot, or -1.
func (o osRelease) major() int {
	v, _, _ := strings.Cut(o.versionID, ".")
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

func (p *probe) osRelease() (osRelease, error) {
	var o osRelease
	b, err := p.read("/etc/os-release")
	if err == nil && b == nil {
		b, err = p.read("/usr/lib/os-release")
	}
	if err != nil {
		return o, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			o.id = v
			o.like = append(o.like, v)
		case "ID_LIKE":
			o.like = append(o.like, strings.Fields(v)...)
		case "VERSION_ID":
			o.versionID = v
		}
	}
	return o, nil
}

// nmPlugins returns the last "plugins=" of NetworkManager's [main]
// section, reading NetworkManager.conf and then conf.d/*.conf in order.
func (p *probe) nmPlugins() ([]string, string, error) {
	files := []string{"/etc/NetworkManager/NetworkManager.conf"}
	ents, err := p.list("/etc/NetworkManager/conf.d", "", ".conf")
	if err != nil {
		return nil, "", err
	}
	for _, e := range ents {
		files = append(files, "/etc/NetworkManager/conf.d/"+e.Name)
	}
	var plugins []string
	from := ""
	for _, f := range files {
		b, err := p.read(f)
		if err != nil {
			return nil, "", err
		}
		section := ""
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "[") {
				section = line
				continue
			}
			if k, v, ok := strings.Cut(line, "="); ok && section == "[main]" && strings.TrimSpace(k) == "plugins" {
				plugins, from = nil, f
				for _, pl := range strings.Split(v, ",") {
					if pl = strings.TrimSpace(pl); pl != "" {
						plugins = append(plugins, pl)
					}
				}
			}
		}
	}
	return plugins, from, nil
}

// DetectNetFormat finds the guest's network stack from its files (the
// rules are in the README): every stack is probed; the active ones
// (installed and enabled) win in the order of NetFormats; when none is
// active, a single stack whose configuration files exist is chosen; none,
// or several without an active one, is ErrNetworkStackUnknown.
func DetectNetFormat(fsys vfs.FS) (*NetDetection, error) {
	p := newProbe(fsys)
	var cands []NetCandidate
	for _, f := range NetFormats {
		c, err := p.candidate(f)
		if err != nil {
			return nil, fmt.Errorf("detecting %s: %w", f, err)
		}
		if len(c.Evidence) > 0 {
			cands = append(cands, c)
		}
	}
	d := &NetDetection{Candidates: cands}
	var active, passive []NetCandidate
	for _, c := range cands {
		if c.Active {
			active = append(active, c)
		} else {
			passive = append(passive, c)
		}
	}
	switch {
	case len(active) > 0:
		d.Format = active[0].Format
		d.Reason = fmt.Sprintf("%s is installed and enabled (%s)", active[0].Format, strings.Join(active[0].Evidence, "; "))
		if len(active) > 1 {
			d.Reason += fmt.Sprintf("; also active: %s; chosen by precedence %s", formatsOf(active[1:]), joinFormats(NetFormats))
		}
		if len(passive) > 0 {
			d.Reason += fmt.Sprintf("; also found, not installed and enabled: %s", formatsOf(passive))
		}
	case len(passive) == 1:
		d.Format = passive[0].Format
		d.Reason = fmt.Sprintf("only %s's files were found (%s); no network stack is known to be installed and enabled", passive[0].Format, strings.Join(passive[0].Evidence, "; "))
	case len(passive) > 1:
		return d, fmt.Errorf("%w: several network stacks are configured but none is installed and enabled (%s); choose one with --net-format", ErrNetworkStackUnknown, formatsOf(passive))
	default:
		return d, fmt.Errorf("%w: no netplan, NetworkManager, systemd-networkd, ifcfg, wicked or ifupdown configuration or installation found; give --net-format", ErrNetworkStackUnknown)
	}
	return d, nil
}

func formatsOf(cs []NetCandidate) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = fmt.Sprintf("%s (%s)", c.Format, strings.Join(c.Evidence, "; "))
	}
	return strings.Join(s, ", ")
}

func joinFormats(fs []NetFormat) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, " > ")
}

// candidate probes one stack; no evidence means not found.
func (p *probe) candidate(f NetFormat) (NetCandidate, error) {
	c := NetCandidate{Format: f}
	ev := func(s string) { c.Evidence = append(c.Evidence, s) }
	var err error
	switch f {
	case FormatNetplan:
		c.Active, err = p.netplan(ev)
	case FormatNetworkManager:
		c.Active, err = p.networkManager(ev)
	case FormatNetworkd:
		c.Active, err = p.networkd(ev)
	case FormatIfcfg:
		c.Active, err = p.ifcfg(ev)
	case FormatWicked:
		c.Active, err = p.wicked(ev)
	case FormatIfupdown:
		c.Active, err = p.ifupdown(ev)
	}
	return c, err
}

func (p *probe) netplan(ev func(string)) (bool, error) {
	dir, err := p.isDir("/etc/netplan")
	if err != nil {
		return false, err
	}
	bin, err := p.first(false, "/usr/sbin/netplan", "/usr/share/netplan", "/usr/libexec/netplan/generate", "/usr/lib/netplan/generate", "/lib/netplan/generate")
	if err != nil {
		return false, err
	}
	yamls, err := p.list("/etc/netplan", "", ".yaml")
	if err != nil {
		return false, err
	}
	if bin == "" && len(yamls) == 0 {
		return false, nil // an empty /etc/netplan alone is no evidence
	}
	if bin != "" {
		ev("installed: " + bin)
	}
	if dir {
		ev(fmt.Sprintf("/etc/netplan exists (%d .yaml files)", len(yamls)))
	}
	return bin != "" && dir, nil
}

func (p *probe) networkManager(ev func(string)) (bool, error) {
	bin, err := p.first(true, "/usr/sbin/NetworkManager", "/usr/bin/NetworkManager")
	if err != nil {
		return false, err
	}
	on, err := p.enabled("NetworkManager.service", "dbus-org.freedesktop.NetworkManager.service")
	if err != nil {
		return false, err
	}
	conns, err := p.list(nmDir, "", "")
	if err != nil {
		return false, err
	}
	if bin != "" {
		ev("installed: " + bin)
	}
	if on != "" {
		ev("enabled: " + on)
	}
	if len(conns) > 0 {
		ev(fmt.Sprintf("%d connection files in %s", len(conns), nmDir))
	}
	return bin != "" && on != "", nil
}

func (p *probe) networkd(ev func(string)) (bool, error) {
	bin, err := p.first(true, "/usr/lib/systemd/systemd-networkd", "/lib/systemd/systemd-networkd")
	if err != nil {
		return false, err
	}
	on, err := p.enabled("systemd-networkd.service", "dbus-org.freedesktop.network1.service")
	if err != nil {
		return false, err
	}
	if on == "" {
		if on, err = p.enabled("systemd-networkd.socket"); err != nil {
			return false, err
		}
	}
	files, err := p.list(networkdDir, "", ".network")
	if err != nil {
		return false, err
	}
	// systemd-networkd ships with systemd everywhere: being installed
	// says nothing; only enablement or configuration is evidence.
	if on != "" {
		ev("enabled: " + on)
		if bin != "" {
			ev("installed: " + bin)
		}
	}
	if len(files) > 0 {
		ev(fmt.Sprintf("%d .network files in %s", len(files), networkdDir))
	}
	return bin != "" && on != "", nil
}

func (p *probe) ifcfg(ev func(string)) (bool, error) {
	o, err := p.osRelease()
	if err != nil {
		return false, err
	}
	dir, err := p.isDir(ifcfgDir)
	if err != nil || !dir || !o.is("rhel", "centos", "fedora") {
		return false, err
	}
	files, err := p.list(ifcfgDir, "ifcfg-", "")
	if err != nil {
		return false, err
	}
	ev(fmt.Sprintf("%s exists on %s %s (%d ifcfg files)", ifcfgDir, o.id, o.versionID, len(files)))
	plugins, from, err := p.nmPlugins()
	if err != nil {
		return false, err
	}
	switch {
	case len(plugins) > 0 && plugins[0] == "ifcfg-rh":
		ev(from + " lists the ifcfg-rh plugin first")
		return true, nil
	case len(plugins) > 0:
		ev(from + " prefers the " + plugins[0] + " plugin")
		return false, nil
	case o.id == "fedora" && o.major() >= 33, o.id != "fedora" && o.major() >= 9:
		ev("the release prefers NetworkManager keyfiles")
		return false, nil
	case o.major() < 0:
		return false, nil
	}
	ev("the release reads ifcfg files first")
	return true, nil
}

func (p *probe) wicked(ev func(string)) (bool, error) {
	o, err := p.osRelease()
	if err != nil || !o.is("suse", "opensuse", "sles") {
		return false, err
	}
	files, err := p.list(wickedDir, "ifcfg-", "")
	if err != nil {
		return false, err
	}
	bin, err := p.first(true, "/usr/sbin/wicked", "/sbin/wicked")
	if err != nil {
		return false, err
	}
	on, err := p.enabled("wicked.service", "network.service")
	if err != nil {
		return false, err
	}
	if on == unitDir+"/network.service" { // the alias names whichever stack provides the network
		fi, _, err := p.lexists(on)
		switch {
		case err != nil:
			return false, err
		case p.r != nil && !strings.Contains(fi.Target, "wicked"):
			on = ""
		default:
			on += " -> " + fi.Target
		}
	}
	if bin != "" {
		ev("installed: " + bin)
	}
	if on != "" {
		ev("enabled: " + on)
	}
	if n := len(files); n > 0 && !(n == 1 && files[0].Name == "ifcfg-lo") {
		ev(fmt.Sprintf("%d ifcfg files in %s on %s", n, wickedDir, o.id))
	}
	return bin != "" && on != "", nil
}

func (p *probe) ifupdown(ev func(string)) (bool, error) {
	fi, ok, err := p.lexists(InterfacesPath) // a symlink counts: it is how the guest configures ifupdown
	if err != nil {
		return false, err
	}
	bin, err := p.first(true, "/sbin/ifup", "/usr/sbin/ifup")
	if err != nil {
		return false, err
	}
	if !ok || fi.IsDir() {
		return false, nil // initscripts has an ifup too: the file is the evidence
	}
	if bin != "" {
		ev("installed: " + bin)
	}
	ev(InterfacesPath + " exists")
	return bin != "", nil
}

// sortedNames returns the names of ents, sorted.
func sortedNames(ents []vfs.FileInfo) []string {
	s := make([]string, len(ents))
	for i, e := range ents {
		s[i] = e.Name
	}
	sort.Strings(s)
	return s
}
