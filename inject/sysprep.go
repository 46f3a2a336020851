package inject

import (
	"crypto/rand"
	"fmt"
	"sort"
	"strings"
)

// Sysprep: virt-sysprep's operations that need no guest execution, with
// its names, each an ordered operation of its own (planned on the model
// with the rest, one transaction). Deletions use --delete's globbing
// (glob(3) rules: a wildcard skips dot files) and rm -rf.

// internalOps are operations the planner runs that are no command-line
// flag of their own (the sysprep verb makes them).
var internalOps = map[string]opDef{}

// SysprepOp names a sysprep operation and says what it does.
type SysprepOp struct {
	Name    string
	Default bool // enabled when --operations is not given
	Help    string
	run     func(c *opCtx) error
}

// sysprepOpName is the internal operation that runs sysprep operation
// Arg.
const sysprepOpName = "sysprep"

func init() {
	internalOps[sysprepOpName] = opDef{OpSpec{Name: sysprepOpName, Metavar: "OPERATION"}, opSysprep}
}

func opSysprep(c *opCtx, arg string) error {
	for _, s := range sysprepOps {
		if s.Name == arg && s.run != nil {
			c.it.rep.Path = "/"
			if err := s.run(c); err != nil {
				return err
			}
			c.it.rep.Summary = fmt.Sprintf("%d path(s)", len(c.it.changes))
			if len(c.it.changes) == 0 {
				c.it.rep.Summary = "nothing to do"
			}
			if len(c.it.changes) > 0 {
				c.it.rep.Path = c.it.changes[0].Path
			}
			return nil
		}
	}
	return fmt.Errorf("%w: unknown sysprep operation %q", ErrInvalidOp, arg)
}

// deleteAll deletes every match of each glob.
func deleteAll(globs ...string) func(c *opCtx) error {
	return func(c *opCtx) error {
		for _, g := range globs {
			if err := opDelete(c, g); err != nil {
				return err
			}
		}
		c.it.rep.Summary = ""
		return nil
	}
}

// logfileGlobs are virt-sysprep's logfiles list (virt-sysprep(1)).
var logfileGlobs = []string{
	"/etc/Pegasus/*.cnf", "/etc/Pegasus/*.crt", "/etc/Pegasus/*.csr", "/etc/Pegasus/*.pem", "/etc/Pegasus/*.srl",
	"/root/anaconda-ks.cfg", "/root/anaconda-post.log", "/root/initial-setup-ks.cfg", "/root/install.log",
	"/root/install.log.syslog", "/root/original-ks.cfg", "/var/cache/fontconfig/*", "/var/cache/gdm/*",
	"/var/cache/man/*", "/var/lib/AccountService/users/*", "/var/lib/fprint/*", "/var/lib/logrotate.status",
	"/var/log/*.log*", "/var/log/BackupPC/LOG", "/var/log/ConsoleKit/*", "/var/log/anaconda.syslog",
	"/var/log/anaconda/*", "/var/log/apache2/*_log", "/var/log/apache2/*_log-*", "/var/log/apt/*",
	"/var/log/aptitude*", "/var/log/audit/*", "/var/log/btmp*", "/var/log/ceph/*.log", "/var/log/chrony/*.log",
	"/var/log/cron*", "/var/log/cups/*_log*", "/var/log/debug*", "/var/log/dmesg*", "/var/log/exim4/*",
	"/var/log/faillog*", "/var/log/firewalld*", "/var/log/gdm/*", "/var/log/glusterfs/*glusterd.vol.log",
	"/var/log/glusterfs/glusterfs.log", "/var/log/grubby*", "/var/log/httpd/*log", "/var/log/installer/*",
	"/var/log/jetty/jetty-console.log", "/var/log/journal/*", "/var/log/lastlog*", "/var/log/libvirt/libvirtd.log",
	"/var/log/libvirt/libxl/*.log", "/var/log/libvirt/lxc/*.log", "/var/log/libvirt/qemu/*.log",
	"/var/log/libvirt/uml/*.log", "/var/log/lightdm/*", "/var/log/mail/*", "/var/log/maillog*",
	"/var/log/messages*", "/var/log/ntp", "/var/log/ntpstats/*", "/var/log/ppp/connect-errors", "/var/log/rhsm/*",
	"/var/log/sa/*", "/var/log/secure*", "/var/log/setroubleshoot/*.log", "/var/log/spooler*",
	"/var/log/squid/*.log", "/var/log/syslog*", "/var/log/tallylog*", "/var/log/tuned/tuned.log",
	"/var/log/wtmp*", "/var/log/xferlog*", "/var/named/data/named.run",
}

// randomSeedFiles are where distributions keep the boot random seed.
var randomSeedFiles = []string{"/var/lib/systemd/random-seed", "/var/lib/urandom/random-seed", "/var/lib/random-seed", "/var/lib/misc/random-seed"}

// sysprepOps lists the operations, by name.
var sysprepOps = []SysprepOp{
	{Name: "bash-history", Default: true, Help: "Remove the bash history of root and of the users under /home (/root/.bash_history, /home/*/.bash_history)",
		run: deleteAll("/root/.bash_history", "/home/*/.bash_history")},
	{Name: "customize", Default: true, Help: "Apply the customisation flags given to the verb (--write, --delete, --firstboot, ...), after the other operations"},
	{Name: "dhcp-client-state", Default: true, Help: "Remove DHCP client leases (/var/lib/dhclient/*, /var/lib/dhcp/*)",
		run: deleteAll("/var/lib/dhclient/*", "/var/lib/dhcp/*")},
	{Name: "dhcp-server-state", Default: true, Help: "Remove DHCP server leases (/var/lib/dhcpd/*)",
		run: deleteAll("/var/lib/dhcpd/*")},
	{Name: "logfiles", Default: true, Help: "Remove the log files of virt-sysprep's list (/var/log/*.log*, /var/log/journal/*, /var/log/wtmp*, ...)",
		run: deleteAll(logfileGlobs...)},
	{Name: "machine-id", Default: true, Help: "Empty /etc/machine-id (systemd makes a new one at boot) and remove a /var/lib/dbus/machine-id that is a file of its own (a symlink to /etc/machine-id stays)",
		run: sysprepMachineID},
	{Name: "net-hwaddr", Default: true, Help: "Remove HWADDR= lines from /etc/sysconfig/network-scripts/ifcfg-*",
		run: sysprepNetHwaddr},
	{Name: "package-manager-cache", Default: true, Help: "Remove package manager caches (apt's downloaded .debs and lists cache, dnf, yum, zypper, apk)",
		run: deleteAll("/var/cache/apt/archives/*.deb", "/var/cache/apt/archives/partial/*", "/var/cache/apt/*.bin",
			"/var/cache/dnf/*", "/var/cache/yum/*", "/var/cache/zypp/*", "/var/cache/apk/*")},
	{Name: "random-seed", Default: true, Help: "Write 512 fresh random bytes to the guest's boot random seed (each of " + strings.Join(randomSeedFiles, ", ") + " that exists, else the first whose directory does), 0600, as virt-sysprep's customize step does",
		run: sysprepRandomSeed},
	{Name: "ssh-hostkeys", Default: true, Help: "Remove the SSH host keys (/etc/ssh/*_host_*): the guest makes new ones at boot",
		run: deleteAll("/etc/ssh/*_host_*")},
	{Name: "ssh-userdir", Default: true, Help: "Remove the .ssh directories of root and of the users under /home",
		run: deleteAll("/root/.ssh", "/home/*/.ssh")},
	{Name: "tmp-files", Default: true, Help: "Remove the contents of /tmp and /var/tmp",
		run: deleteAll("/tmp/*", "/var/tmp/*")},
	{Name: "udev-persistent-net", Default: true, Help: "Remove udev's persistent net rules (/etc/udev/rules.d/70-persistent-net.rules)",
		run: deleteAll("/etc/udev/rules.d/70-persistent-net.rules")},
}

// SysprepOperations lists the sysprep operations, sorted by name.
func SysprepOperations() []SysprepOp {
	out := append([]SysprepOp(nil), sysprepOps...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SysprepSelection resolves virt-sysprep's --operations list: names
// (enabled), -NAME (disabled), "defaults" and "all"; with no list, the
// defaults. The result is in the list's order (sorted by name), without
// "customize", which the caller handles; customize reports whether it is
// enabled.
func SysprepSelection(list string, given bool) (ops []Operation, customize bool, err error) {
	on := map[string]bool{}
	known := map[string]SysprepOp{}
	for _, s := range sysprepOps {
		known[s.Name] = s
		if !given && s.Default {
			on[s.Name] = true
		}
	}
	if given {
		for _, tok := range strings.Split(list, ",") {
			tok = strings.TrimSpace(tok)
			switch {
			case tok == "":
				return nil, false, fmt.Errorf("%w: empty name in --operations %q", ErrInvalidOp, list)
			case tok == "defaults" || tok == "all":
				for _, s := range sysprepOps {
					if tok == "all" || s.Default {
						on[s.Name] = true
					}
				}
			case tok[0] == '-':
				if _, ok := known[tok[1:]]; !ok {
					return nil, false, fmt.Errorf("%w: unknown sysprep operation %q (see --list-operations)", ErrInvalidOp, tok[1:])
				}
				delete(on, tok[1:])
			default:
				if _, ok := known[tok]; !ok {
					return nil, false, fmt.Errorf("%w: unknown sysprep operation %q (see --list-operations)", ErrInvalidOp, tok)
				}
				on[tok] = true
			}
		}
	}
	for _, s := range SysprepOperations() {
		if !on[s.Name] {
			continue
		}
		if s.Name == "customize" {
			customize = true
			continue
		}
		ops = append(ops, Operation{Name: sysprepOpName, Arg: s.Name})
	}
	return ops, customize, nil
}

func sysprepMachineID(c *opCtx) error {
	r, err := c.resolve("/etc/machine-id", false)
	if err != nil && !isMissing(err) {
		return err
	}
	if err == nil && r.Exists && r.Node.typ == 0 && r.Node.size != 0 {
		if _, err := c.writeFile("/etc/machine-id", nil, false); err != nil {
			return err
		}
	}
	r, err = c.resolve("/var/lib/dbus/machine-id", false)
	if err != nil && !isMissing(err) {
		return err
	}
	if err == nil && r.Exists && r.Node.typ == 0 {
		return c.remove("/var/lib/dbus/machine-id")
	}
	return nil
}

func sysprepNetHwaddr(c *opCtx) error {
	files, err := c.glob("/etc/sysconfig/network-scripts/ifcfg-*")
	if err != nil {
		return err
	}
	for _, f := range files {
		r, err := c.resolve(f, false)
		if err != nil || !r.Exists || r.Node.typ != 0 {
			continue // a symlink or directory of that name is left alone
		}
		b, ok, err := c.readBounded(f)
		if err != nil || !ok {
			return err
		}
		lines := strings.SplitAfter(string(b), "\n")
		kept := lines[:0]
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimLeft(l, " \t"), "HWADDR=") {
				continue
			}
			kept = append(kept, l)
		}
		if out := strings.Join(kept, ""); out != string(b) {
			if _, err := c.writeFile(f, []byte(out), false); err != nil {
				return err
			}
		}
	}
	return nil
}

func sysprepRandomSeed(c *opCtx) error {
	seed := make([]byte, 512)
	if _, err := rand.Read(seed); err != nil {
		return fmt.Errorf("random seed: %w", err)
	}
	var targets []string
	for _, p := range randomSeedFiles {
		r, err := c.resolve(p, false)
		if err != nil && !isMissing(err) {
			return err
		}
		if err == nil && r.Exists && r.Node.typ == 0 {
			targets = append(targets, p)
		}
	}
	if len(targets) == 0 {
		for _, p := range randomSeedFiles {
			dir := p[:strings.LastIndexByte(p, '/')]
			if ok, err := c.isDir(dir); err != nil {
				return err
			} else if ok {
				targets = append(targets, p)
				break
			}
		}
	}
	for _, p := range targets {
		if _, err := c.writeFile(p, seed, false); err != nil {
			return err
		}
		if err := c.chmod(p, 0o600); err != nil {
			return err
		}
	}
	return nil
}
