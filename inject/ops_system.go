package inject

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/guestinject/guestinject/vfs"
)

// --hostname and --timezone: where each distribution keeps them, as
// virt-customize writes them.

func init() {
	register(OpSpec{Name: "hostname", Metavar: "HOSTNAME", Example: "web1.example.com",
		Help: "set the hostname where the distribution keeps it: /etc/hostname everywhere but old Red Hat and SUSE; Debian and Ubuntu also get the old name replaced in /etc/hosts; Fedora >= 18 and RHEL-like >= 7 get PRETTY_HOSTNAME in /etc/machine-info; older Fedora and RHEL-like get HOSTNAME= in /etc/sysconfig/network; SUSE gets /etc/HOSTNAME"}, opHostname)
	register(OpSpec{Name: "timezone", Metavar: "TIMEZONE", Example: "Europe/London",
		Help: "make /etc/localtime a symlink to /usr/share/zoneinfo/TIMEZONE (refused when the guest lacks that zone); /etc/timezone, where the guest has one, gets the name too"}, opTimezone)
}

// guestOS is what --hostname needs to know of the distribution.
type guestOS struct {
	id    string   // os-release ID, or what the release file says
	like  []string // ID and ID_LIKE
	major int      // VERSION_ID's major number, -1 if unknown
}

func (o guestOS) is(ids ...string) bool {
	for _, l := range o.like {
		for _, id := range ids {
			if l == id {
				return true
			}
		}
	}
	return false
}

// readOptional returns a regular file's content as the plan leaves it,
// or nil, false when it is missing.
func (c *opCtx) readOptional(p string) ([]byte, bool, error) {
	r, err := c.resolve(p, true)
	if isMissing(err) || err == nil && !r.Exists {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if r.Node.typ != 0 {
		return nil, false, vfs.PathErr("read", p, vfs.ErrNotRegular)
	}
	b, err := c.config(r.Node, r.Path)
	return b, err == nil, err
}

// The patterns compile on first use, not at start-up (every run of the CLI
// would pay for them).
var releaseMajor = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`release (\d+)`) })

// detectOS reads os-release, else the older release files.
func (c *opCtx) detectOS() (guestOS, error) {
	o := guestOS{major: -1}
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, ok, err := c.readOptional(p)
		if err != nil {
			return o, err
		}
		if !ok {
			continue
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
				maj, _, _ := strings.Cut(v, ".")
				if n, err := strconv.Atoi(maj); err == nil {
					o.major = n
				}
			}
		}
		return o, nil
	}
	for _, f := range []struct{ path, id string }{{"/etc/redhat-release", "rhel"}, {"/etc/SuSE-release", "suse"}, {"/etc/debian_version", "debian"}} {
		b, ok, err := c.readOptional(f.path)
		if err != nil {
			return o, err
		}
		if !ok {
			continue
		}
		o.id, o.like = f.id, []string{f.id}
		if m := releaseMajor().FindSubmatch(b); m != nil {
			o.major, _ = strconv.Atoi(string(m[1]))
		}
		if f.id == "rhel" && bytes.Contains(b, []byte("Fedora")) {
			o.id, o.like = "fedora", []string{"fedora"}
		}
		return o, nil
	}
	return o, nil
}

var hostnameLabel = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
})

func validHostname(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%w: hostname %q: want 1 to 253 characters", ErrInvalidOp, h)
	}
	for _, l := range strings.Split(h, ".") {
		if !hostnameLabel().MatchString(l) {
			return fmt.Errorf("%w: hostname %q: each dot-separated label is 1 to 63 letters, digits and inner hyphens", ErrInvalidOp, h)
		}
	}
	return nil
}

func opHostname(c *opCtx, h string) error {
	if err := validHostname(h); err != nil {
		return err
	}
	o, err := c.detectOS()
	if err != nil {
		return err
	}
	switch {
	case o.id == "fedora" && o.major >= 18, o.is("rhel", "centos", "scientific", "ol", "rocky", "almalinux", "fedora") && o.id != "fedora" && o.major >= 7:
		c.it.rep.Path = "/etc/hostname"
		if _, err := c.writeFile("/etc/hostname", []byte(h+"\n"), false); err != nil {
			return err
		}
		return c.replaceKeyLine("/etc/machine-info", "PRETTY_HOSTNAME", h)
	case o.is("debian", "ubuntu"):
		old, _, err := c.readOptional("/etc/hostname")
		if err != nil {
			return err
		}
		c.it.rep.Path = "/etc/hostname"
		if _, err := c.writeFile("/etc/hostname", []byte(h+"\n"), false); err != nil {
			return err
		}
		return c.replaceInHosts(old, h)
	case o.is("fedora", "rhel", "centos"):
		c.it.rep.Path = "/etc/sysconfig/network"
		return c.replaceKeyLine("/etc/sysconfig/network", "HOSTNAME", h)
	case o.is("suse", "opensuse", "sles", "sled"):
		c.it.rep.Path = "/etc/HOSTNAME"
		_, err := c.writeFile("/etc/HOSTNAME", []byte(h), false)
		return err
	}
	c.it.rep.Path = "/etc/hostname"
	_, err = c.writeFile("/etc/hostname", []byte(h+"\n"), false)
	return err
}

// replaceKeyLine drops the file's KEY= lines and appends KEY=value, as
// virt-customize does (the file created when missing).
func (c *opCtx) replaceKeyLine(p, key, value string) error {
	old, _, err := c.readOptional(p)
	if err != nil {
		return err
	}
	var out []string
	if len(old) > 0 {
		for _, l := range strings.Split(strings.TrimSuffix(string(old), "\n"), "\n") {
			if !strings.HasPrefix(l, key+"=") {
				out = append(out, l)
			}
		}
	}
	out = append(out, key+"="+value)
	_, err = c.writeFile(p, []byte(strings.Join(out, "\n")+"\n"), false)
	return err
}

// replaceInHosts renames the old hostname in /etc/hosts (canonical names
// and aliases, comments left alone): the old full name becomes the new
// one, the old short name the new short name, Debian's installer
// placeholders the new names. A missing /etc/hosts is left missing.
func (c *opCtx) replaceInHosts(oldFile []byte, h string) error {
	hosts, ok, err := c.readOptional("/etc/hosts")
	if err != nil || !ok {
		return err
	}
	oldHost, _, _ := strings.Cut(string(oldFile), "\n")
	oldShort, _, _ := strings.Cut(oldHost, ".")
	newShort, newDomain, _ := strings.Cut(h, ".")
	swap := func(name string) string {
		switch {
		case oldHost != "" && name == oldHost:
			return h
		case oldHost != "" && name == oldShort:
			return newShort
		case name == "unassigned-hostname":
			return newShort
		case name == "unassigned-hostname.unassigned-domain" && newDomain != "":
			return h
		}
		return name
	}
	lines := strings.SplitAfter(string(hosts), "\n")
	for i, line := range lines {
		body, comment, hasComment := strings.Cut(line, "#")
		fields := fieldSpans(body)
		if len(fields) < 2 {
			continue
		}
		var b strings.Builder
		prev := 0
		for j, f := range fields {
			b.WriteString(body[prev:f[0]])
			name := body[f[0]:f[1]]
			if j > 0 {
				name = swap(name)
			}
			b.WriteString(name)
			prev = f[1]
		}
		b.WriteString(body[prev:])
		if hasComment {
			b.WriteString("#" + comment)
		}
		lines[i] = b.String()
	}
	out := strings.Join(lines, "")
	if out == string(hosts) {
		c.it.touch("/etc/hosts", "file", ChangeUnchanged)
		return nil
	}
	_, err = c.writeFile("/etc/hosts", []byte(out), false)
	return err
}

// fieldSpans returns the [start, end) of each blank-separated field.
func fieldSpans(s string) [][2]int {
	var out [][2]int
	start := -1
	for i := 0; i <= len(s); i++ {
		blank := i == len(s) || s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'
		switch {
		case blank && start >= 0:
			out = append(out, [2]int{start, i})
			start = -1
		case !blank && start < 0:
			start = i
		}
	}
	return out
}

var tzName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`) })

func opTimezone(c *opCtx, tz string) error {
	if !tzName().MatchString(tz) {
		return fmt.Errorf("%w: timezone %q: want a location like Europe/London", ErrInvalidOp, tz)
	}
	target := "/usr/share/zoneinfo/" + tz
	r, err := c.resolve(target, true)
	if err != nil && !isMissing(err) {
		return err
	}
	if err != nil || !r.Exists {
		return fmt.Errorf("%w: timezone %q: the guest has no %s", ErrInvalidOp, tz, target)
	}
	c.it.rep.Path = "/etc/localtime"
	if err := c.symlinkForce(target, "/etc/localtime"); err != nil {
		return err
	}
	r, err = c.resolve("/etc/timezone", false)
	if err != nil && !isMissing(err) {
		return err
	}
	if err == nil && r.Exists && r.Node.typ == 0 {
		_, err = c.writeFile("/etc/timezone", []byte(tz+"\n"), false)
	}
	return err
}
