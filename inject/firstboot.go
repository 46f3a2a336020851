package inject

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs"
)

// First boot scripts, as virt-customize installs them and in the same
// places, so that a guest customised by both tools has one runner and
// one numbering: each script is /usr/lib/virt-sysprep/scripts/NNNN-NAME
// (0755), and a runner, /usr/lib/virt-sysprep/firstboot.sh, started late
// in the next boot, moves each script out of scripts/ before it runs it
// (so none can run twice), runs them in name order with their output in
// ~root/virt-sysprep-firstboot.log, and when scripts/ is empty removes
// its own unit, links and files. On systemd guests the runner is a
// oneshot unit enabled by a link in multi-user.target.wants (made here:
// no systemctl); on sysvinit guests an S99 link in runlevels 2, 3 and 5.

func init() {
	register(OpSpec{Name: "firstboot", Metavar: "SCRIPT", Example: "./setup.sh",
		Help: "install the host file SCRIPT (0755) to run once, as root, late in the guest's next boot, after the first boot scripts before it; output in ~root/virt-sysprep-firstboot.log; systemd (a oneshot unit enabled by a link) and sysvinit guests"}, opFirstboot)
	register(OpSpec{Name: "firstboot-command", Metavar: "'CMD+ARGS'", Example: "useradd -m ops",
		Help: "the same for a shell command: a script of \"#!/bin/sh\" and the command"}, opFirstbootCommand)
}

// The guest paths of the first boot machinery.
const (
	FirstbootDir     = "/usr/lib/virt-sysprep"
	FirstbootScripts = FirstbootDir + "/scripts"
	FirstbootRunner  = FirstbootDir + "/firstboot.sh"
	firstbootUnit    = "/usr/lib/systemd/system/guestfs-firstboot.service"
	firstbootWants   = "/etc/systemd/system/multi-user.target.wants/guestfs-firstboot.service"
	firstbootInitD   = "/etc/init.d/guestfs-firstboot"
	firstbootLog     = "/root/virt-sysprep-firstboot.log"
	// maxFirstboot bounds the scripts numbered in scripts/.
	maxFirstboot = 9999
)

// ErrInitUnknown: the guest has neither /etc/systemd/system nor
// /etc/init.d or /etc/rc.d, so no runner can be installed.
var ErrInitUnknown = errs.New(errs.ErrAmbiguous, "cannot tell the guest's init system")

func opFirstboot(c *opCtx, arg string) error {
	if arg == "" {
		return fmt.Errorf("%w: want a host script", ErrInvalidOp)
	}
	data, _, err := c.readHost(arg)
	if err != nil {
		return err
	}
	return c.addFirstboot(path.Base(arg), data)
}

func opFirstbootCommand(c *opCtx, arg string) error {
	if strings.TrimSpace(arg) == "" {
		return fmt.Errorf("%w: empty command", ErrInvalidOp)
	}
	return c.addFirstboot(arg, []byte("#!/bin/sh\n"+arg+"\n"))
}

// addFirstboot installs the runner (once) and one script named after name.
func (c *opCtx) addFirstboot(name string, script []byte) error {
	inits, err := c.installRunner()
	if err != nil {
		return err
	}
	n, err := c.nextFirstbootIndex()
	if err != nil {
		return err
	}
	p := fmt.Sprintf("%s/%04d-%s", FirstbootScripts, n, firstbootName(name))
	c.it.rep.Path = p
	if _, err := c.writeFile(p, script, false); err != nil {
		return err
	}
	if err := c.chmod(p, 0o755); err != nil {
		return err
	}
	c.it.rep.Summary = fmt.Sprintf("runs once at the next boot (%s)", strings.Join(inits, ", "))
	return nil
}

// firstboot names: letters, digits and _ kept, anything else '-', at most
// 60 bytes.
func firstbootName(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_') {
			b[i] = '-'
		}
	}
	if len(b) > 60 {
		b = b[:60]
	}
	return string(b)
}

// nextFirstbootIndex is one more than the highest number among the
// scripts already waiting (this run's and an earlier tool's), so a new
// script runs after them.
func (c *opCtx) nextFirstbootIndex() (int, error) {
	r, err := c.resolve(FirstbootScripts, true)
	if err != nil {
		return 0, err
	}
	if !r.Exists {
		return 1, nil
	}
	names, err := c.names(r.Node)
	if err != nil {
		return 0, err
	}
	high := 0
	for _, n := range names {
		digits, _, _ := strings.Cut(n, "-")
		if v, err := strconv.Atoi(digits); err == nil && v > high && v <= maxFirstboot {
			high = v
		}
	}
	if high >= maxFirstboot {
		return 0, vfs.PathErr("firstboot", FirstbootScripts, fmt.Errorf("%w: %d scripts already wait there", ErrInvalidOp, high))
	}
	return high + 1, nil
}

// installRunner writes the runner and enables it for the guest's init
// systems (both when both are there: a runner that finds no script does
// nothing, so it never runs one twice). It returns the init systems.
func (c *opCtx) installRunner() ([]string, error) {
	systemd, err := c.isDir("/etc/systemd/system")
	if err != nil {
		return nil, err
	}
	initd, err := c.isDir("/etc/init.d")
	if err != nil {
		return nil, err
	}
	rcd, err := c.isDir("/etc/rc.d")
	if err != nil {
		return nil, err
	}
	if !systemd && !initd && !rcd {
		return nil, vfs.PathErr("firstboot", "/etc", fmt.Errorf("%w: no /etc/systemd/system, /etc/init.d or /etc/rc.d", ErrInitUnknown))
	}
	var inits []string
	if err := c.mkdirAll(FirstbootScripts); err != nil {
		return nil, err
	}
	if err := c.ensureFile(FirstbootRunner, []byte(FirstbootRunnerScript("")), 0o755); err != nil {
		return nil, err
	}
	if systemd {
		inits = append(inits, "systemd")
		if err := c.mkdirAll(path.Dir(firstbootUnit)); err != nil {
			return nil, err
		}
		if err := c.ensureFile(firstbootUnit, []byte(firstbootUnitText), 0o644); err != nil {
			return nil, err
		}
		if err := c.mkdirAll(path.Dir(firstbootWants)); err != nil {
			return nil, err
		}
		if err := c.ensureLink(firstbootUnit, firstbootWants); err != nil {
			return nil, err
		}
	}
	if initd || rcd {
		inits = append(inits, "sysvinit")
		for _, l := range sysvLinks(rcd && !initd) {
			if err := c.mkdirAll(path.Dir(l[1])); err != nil {
				return nil, err
			}
			if err := c.ensureLink(l[0], l[1]); err != nil {
				return nil, err
			}
		}
	}
	return inits, nil
}

// sysvLinks are the links (target, link) that start the runner in
// runlevels 2, 3 and 5: Red Hat's /etc/rc.d/rcN.d, else Debian's
// /etc/init.d and /etc/rcN.d.
func sysvLinks(redHat bool) [][2]string {
	var out [][2]string
	if redHat {
		for _, n := range "235" {
			out = append(out, [2]string{FirstbootRunner, fmt.Sprintf("/etc/rc.d/rc%c.d/S99guestfs-firstboot", n)})
		}
		return out
	}
	out = append(out, [2]string{FirstbootRunner, firstbootInitD})
	for _, n := range "235" {
		out = append(out, [2]string{"../init.d/guestfs-firstboot", fmt.Sprintf("/etc/rc%c.d/S99guestfs-firstboot", n)})
	}
	return out
}

func (c *opCtx) isDir(p string) (bool, error) {
	r, err := c.resolve(p, true)
	if isMissing(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return r.Exists && r.Node.typ.IsDir(), nil
}

// ensureFile writes p with data and mode unless it already holds them.
func (c *opCtx) ensureFile(p string, data []byte, mode uint32) error {
	old, ok, err := c.readOptional(p)
	if err != nil {
		return err
	}
	if !ok || string(old) != string(data) {
		if _, err := c.writeFile(p, data, false); err != nil {
			return err
		}
	}
	return c.chmod(p, vfs.PermFromUnix(mode))
}

// ensureLink makes p a symlink to target unless it already is one.
func (c *opCtx) ensureLink(target, p string) error {
	r, err := c.resolve(p, false)
	if err != nil && !isMissing(err) {
		return err
	}
	if err == nil && r.Exists && r.Node.typ == fs.ModeSymlink {
		if t, err := c.Readlink(r.Node); err == nil && t == target {
			return nil
		}
	}
	return c.symlinkForce(target, p)
}

// firstbootUnitText is the systemd unit that starts the runner.
const firstbootUnitText = `[Unit]
Description=Run the first boot scripts once (guestinject, virt-customize compatible)
After=network.target
ConditionDirectoryNotEmpty=` + FirstbootScripts + `

[Service]
Type=oneshot
ExecStart=` + FirstbootRunner + ` start
RemainAfterExit=yes
StandardOutput=journal+console
StandardError=inherit

[Install]
WantedBy=multi-user.target
`

// FirstbootRunnerScript is the runner's text; root prefixes every path it
// touches ("" in a guest; a test directory to run it on the host).
func FirstbootRunnerScript(root string) string {
	q := func(p string) string { return shellQuote(root + p) }
	return `#!/bin/sh -
### BEGIN INIT INFO
# Provides:          guestfs-firstboot
# Required-Start:    $remote_fs $syslog
# Required-Stop:
# Default-Start:     2 3 5
# Default-Stop:
# Short-Description: Run the first boot scripts once
### END INIT INFO
# Installed by guestinject. Each script in the scripts directory is moved
# aside before it runs, so it runs at most once; when none is left the
# runner removes its unit, its links and itself.
scripts=` + q(FirstbootScripts) + `
done=` + q(FirstbootDir+"/scripts-done") + `
log=` + q(firstbootLog) + `

case "$1" in
start|"") ;;
*) exit 0 ;;
esac

mkdir -p "$done"
for f in "$scripts"/*; do
	[ -f "$f" ] || continue
	name=${f##*/}
	mv -f "$f" "$done/$name" || continue
	echo "=== guestinject firstboot: $name ===" >>"$log"
	"$done/$name" >>"$log" 2>&1
	echo "=== $name: exit status $? ===" >>"$log"
	rm -f "$done/$name"
done

for f in "$scripts"/*; do
	[ -e "$f" ] && exit 0
done
rm -f ` + q(firstbootWants) + ` ` + q(firstbootUnit) + ` ` + q(firstbootInitD) + ` \
	` + q("/etc/rc2.d/S99guestfs-firstboot") + ` ` + q("/etc/rc3.d/S99guestfs-firstboot") + ` ` + q("/etc/rc5.d/S99guestfs-firstboot") + ` \
	` + q("/etc/rc.d/rc2.d/S99guestfs-firstboot") + ` ` + q("/etc/rc.d/rc3.d/S99guestfs-firstboot") + ` ` + q("/etc/rc.d/rc5.d/S99guestfs-firstboot") + `
rmdir "$done" "$scripts" 2>/dev/null
rm -f "$0" ` + q(FirstbootRunner) + `
rmdir ` + q(FirstbootDir) + ` 2>/dev/null
exit 0
`
}
