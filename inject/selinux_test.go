package inject

import (
	"strings"
	"testing"
)

func TestSELinuxGuestGetsRelabel(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.MakePath("/etc/selinux"))
		rep, err := Apply(g.fs, &Data{Keys: []string{demoKey}}, nil)
		must(t, err)
		want := "#!/bin/sh\n" + selinuxMarker + "\nrestorecon -RF /root/.ssh 2>/dev/null || :\n"
		if got := read(t, g.fs, "/etc/rc.local"); got != want {
			t.Errorf("rc.local %q, want %q", got, want)
		}
		wantAttr(t, g.fs, "/etc/rc.local", 0o755, 0, 0)
		if !strings.Contains(rep.Items[0].Summary, "SELinux") {
			t.Errorf("summary %q", rep.Items[0].Summary)
		}
		// Once only.
		_, err = Apply(g.fs, &Data{Keys: []string{rsaKey}}, nil)
		must(t, err)
		if got := read(t, g.fs, "/etc/rc.local"); got != want {
			t.Errorf("rc.local after a second run %q", got)
		}
	})
}

func TestSELinuxRcDAndExit0(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.MakePath("/etc/selinux"))
		must(t, g.fs.MakePath("/etc/rc.d"))
		must(t, g.fs.ReplaceFile("/etc/rc.d/rc.local", []byte("#!/bin/bash\ntouch /var/lock/x\nexit 0\n")))
		must(t, g.fs.SetPermissions("/etc/rc.d/rc.local", 0o700))
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey}, KeyUser: "debian"}, nil)
		must(t, err)
		want := "#!/bin/bash\ntouch /var/lock/x\n" + selinuxMarker + "\nrestorecon -RF /home/debian/.ssh 2>/dev/null || :\n\nexit 0\n"
		if got := read(t, g.fs, "/etc/rc.d/rc.local"); got != want {
			t.Errorf("rc.local %q, want %q", got, want)
		}
		wantAttr(t, g.fs, "/etc/rc.d/rc.local", 0o700, 0, 0)
	})
}

func TestNoSELinuxNoRcLocal(t *testing.T) {
	g := memGuest(t)
	_, err := Apply(g, &Data{Keys: []string{demoKey}}, nil)
	must(t, err)
	if has, _ := g.HasFile("/etc/rc.local"); has {
		t.Error("rc.local written without SELinux")
	}
}

func TestWithRelabel(t *testing.T) {
	for _, c := range []struct{ old, want string }{
		{"#!/bin/sh\necho hi", "#!/bin/sh\necho hi\n\nB\nC\n"},
		{"#!/bin/sh\nexit 0", "#!/bin/sh\nB\nC\n\nexit 0"},
		{"#!/bin/sh\n  exit 0  \n\n", "#!/bin/sh\nB\nC\n\n  exit 0  \n\n"},
		{"exit 0\n", "B\nC\n\nexit 0\n"},
	} {
		got := strings.ReplaceAll(string(withRelabel([]byte(c.old), true, "C")), selinuxMarker, "B")
		if got != c.want {
			t.Errorf("%q: %q, want %q", c.old, got, c.want)
		}
	}
	if got := shellQuote("/home/o'brien x/.ssh"); got != `'/home/o'\''brien x/.ssh'` {
		t.Errorf("quote %s", got)
	}
}
