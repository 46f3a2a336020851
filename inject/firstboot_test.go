package inject

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirstbootInstall: scripts numbered in command-line order after the
// ones already waiting, 0755; the runner, the systemd unit enabled by its
// wants link, and Debian's sysvinit links; a second run adds a script
// and leaves the runner as it is.
func TestFirstbootInstall(t *testing.T) {
	g := memGuest(t)
	for _, d := range []string{"/etc/systemd/system", "/etc/init.d", FirstbootScripts} {
		must(t, g.MakePath(d))
	}
	must(t, g.ReplaceFile(FirstbootScripts+"/0007-earlier", []byte("#!/bin/sh\n")))
	script := filepath.Join(t.TempDir(), "setup step.sh")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\necho one\n"), 0o600))
	rep, err := Apply(g, &Data{Ops: ops("firstboot", script, "firstboot-command", "touch /done")}, nil)
	must(t, err)
	if got := read(t, g, FirstbootScripts+"/0008-setup-step-sh"); got != "#!/bin/sh\necho one\n" {
		t.Errorf("script: %q", got)
	}
	if got := read(t, g, FirstbootScripts+"/0009-touch--done"); got != "#!/bin/sh\ntouch /done\n" {
		t.Errorf("command script: %q", got)
	}
	wantAttr(t, g, FirstbootScripts+"/0008-setup-step-sh", 0o755, 0, 0)
	wantAttr(t, g, FirstbootRunner, 0o755, 0, 0)
	if read(t, g, FirstbootRunner) != FirstbootRunnerScript("") {
		t.Error("runner content")
	}
	if !strings.Contains(read(t, g, firstbootUnit), "Type=oneshot") {
		t.Error("unit is not oneshot")
	}
	for link, target := range map[string]string{
		firstbootWants:                    firstbootUnit,
		firstbootInitD:                    FirstbootRunner,
		"/etc/rc2.d/S99guestfs-firstboot": "../init.d/guestfs-firstboot",
		"/etc/rc5.d/S99guestfs-firstboot": "../init.d/guestfs-firstboot",
	} {
		fi := stat(t, g, link)
		if fi.Target != target {
			t.Errorf("%s -> %q, want %q", link, fi.Target, target)
		}
	}
	if s := rep.Items[0].Summary; !strings.Contains(s, "systemd, sysvinit") {
		t.Errorf("summary %q", s)
	}
	// a later run: one more script, nothing else changes
	rep, err = Apply(g, &Data{Ops: ops("firstboot-command", "true")}, nil)
	must(t, err)
	read(t, g, FirstbootScripts+"/0010-true")
	for _, c := range rep.Items[0].Changes {
		if c.Path != FirstbootScripts+"/0010-true" && c.Change != ChangeUnchanged {
			t.Errorf("second run changes %s: %s", c.Path, c.Change)
		}
	}
}

// TestFirstbootRefusesUnknownInit: a guest without systemd or sysvinit
// directories gets nothing.
func TestFirstbootRefusesUnknownInit(t *testing.T) {
	g := memGuest(t)
	before := snapshot(t, g)
	_, err := Apply(g, &Data{Ops: ops("firstboot-command", "true")}, nil)
	wantErr(t, err, ErrInitUnknown)
	if snapshot(t, g) != before {
		t.Error("guest changed")
	}
}

// TestFirstbootRunnerRunsOnce runs the runner itself (its paths under a
// test directory): the scripts run in order, once, with their output
// logged, and the runner then removes its links and itself.
func TestFirstbootRunnerRunsOnce(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{FirstbootScripts, "/root", "/etc/systemd/system/multi-user.target.wants", "/etc/rc2.d", "/etc/init.d", "/usr/lib/systemd/system"} {
		must(t, os.MkdirAll(root+d, 0o755))
	}
	runner := root + FirstbootRunner
	must(t, os.WriteFile(runner, []byte(FirstbootRunnerScript(root)), 0o755))
	must(t, os.WriteFile(root+firstbootUnit, []byte(firstbootUnitText), 0o644))
	must(t, os.Symlink(firstbootUnit, root+firstbootWants))
	must(t, os.Symlink(runner, root+"/etc/init.d/guestfs-firstboot"))
	must(t, os.Symlink("../init.d/guestfs-firstboot", root+"/etc/rc2.d/S99guestfs-firstboot"))
	order := filepath.Join(root, "order")
	for i, name := range []string{"0002-b", "0001-a", "0003-c"} {
		body := "#!/bin/sh\necho " + name + " >>" + order + "\necho out-" + name + "\n"
		if i == 2 {
			body += "exit 3\n"
		}
		must(t, os.WriteFile(root+FirstbootScripts+"/"+name, []byte(body), 0o755))
	}
	for run := 0; run < 2; run++ {
		if out, err := exec.Command("sh", root+"/etc/rc2.d/S99guestfs-firstboot", "start").CombinedOutput(); err != nil && run == 0 {
			t.Fatalf("runner: %v\n%s", err, out)
		}
	}
	if got, _ := os.ReadFile(order); string(got) != "0001-a\n0002-b\n0003-c\n" {
		t.Errorf("scripts ran as %q, want each once in name order", got)
	}
	log, _ := os.ReadFile(root + firstbootLog)
	for _, want := range []string{"out-0001-a", "0003-c: exit status 3"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, gone := range []string{FirstbootRunner, firstbootUnit, firstbootWants, "/etc/init.d/guestfs-firstboot", "/etc/rc2.d/S99guestfs-firstboot", FirstbootDir} {
		if _, err := os.Lstat(root + gone); err == nil {
			t.Errorf("%s left behind", gone)
		}
	}
}
