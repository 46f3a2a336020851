package inject

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPasswordGuestDefaultYescrypt: with no Crypto the scheme and cost
// are the guest's login.defs' ones, and the hash is the one libxcrypt
// makes for that setting.
func TestPasswordGuestDefaultYescrypt(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.ReplaceFile(LoginDefsPath, []byte("# shadow\nENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 3\n")))
		rep, err := Apply(g.fs, &Data{Passwords: []Password{{User: "debian", Plain: "pw 1"}}}, nil)
		must(t, err)
		h := shadowHash(t, read(t, g.fs, ShadowPath), "debian")
		if !strings.HasPrefix(h, "$y$j7T$") {
			t.Fatalf("hash %q is not yescrypt at cost 3 ($y$j7T$)", h)
		}
		out, err := exec.Command("perl", "-e", `print crypt($ARGV[0], $ARGV[1])`, "pw 1", h).Output()
		if err != nil {
			t.Fatalf("perl crypt (libxcrypt oracle): %v", err)
		}
		if string(out) != h {
			t.Errorf("libxcrypt gives %q for the written %q", out, h)
		}
		if s := rep.Items[0].Summary; s != "debian: yescrypt hash set" {
			t.Errorf("summary %q", s)
		}
	})
}

// TestPasswordSelectors: several users in one rewrite of /etc/shadow,
// each with virt-customize's selector outcome; no other byte changes.
func TestPasswordSelectors(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		before := read(t, g.fs, ShadowPath)
		_, err := Apply(g.fs, &Data{
			AdminPassword: &Password{Disabled: true},
			Passwords: []Password{
				{User: "debian", Plain: "pw", Locked: true, Crypto: CryptoSHA256},
				{User: "sshd", Locked: true},
				{User: "daemon", Hash: "$6$x$y"},
			},
		}, nil)
		must(t, err)
		after := read(t, g.fs, ShadowPath)
		if h := shadowHash(t, after, "root"); h != "*" {
			t.Errorf("root %q, want * (disabled)", h)
		}
		if h := shadowHash(t, after, "sshd"); h != "!*" {
			t.Errorf("sshd %q, want !* (locked, disabled)", h)
		}
		if h := shadowHash(t, after, "daemon"); h != "$6$x$y" {
			t.Errorf("daemon %q", h)
		}
		h := shadowHash(t, after, "debian")
		if !strings.HasPrefix(h, "!$5$") {
			t.Fatalf("debian %q, want !$5$ (locked sha256)", h)
		}
		verify(t, h[1:], "pw")
		want := before
		for _, r := range [][2]string{{"root:*:", "root:*:"}, {"daemon:*:", "daemon:$6$x$y:"}, {"sshd:!:", "sshd:!*:"}, {"debian:!:", "debian:" + h + ":"}} {
			want = strings.Replace(want, r[0], r[1], 1)
		}
		if after != want {
			t.Errorf("shadow:\n%s\nwant:\n%s", after, want)
		}
	})
}

// TestPasswordMissingUsersOneMessage: every user absent from /etc/passwd
// is named in one error, and nothing is written.
func TestPasswordMissingUsersOneMessage(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		before := snapshot(t, g.fs)
		_, err := Apply(g.fs, &Data{Passwords: []Password{{User: "ghost", Plain: "x"}, {User: "debian", Plain: "x"}, {User: "spook", Plain: "x"}}}, nil)
		wantErr(t, err, ErrNoSuchUser)
		if msg := err.Error(); strings.Count(msg, "no such user") != 1 || !strings.Contains(msg, `"ghost", "spook" are not in /etc/passwd`) {
			t.Errorf("message %q", msg)
		}
		if snapshot(t, g.fs) != before {
			t.Error("guest changed")
		}
	})
}

func TestPasswordRefusals(t *testing.T) {
	for name, ps := range map[string][]Password{
		"twice":             {{User: "debian", Plain: "a"}, {User: "debian", Plain: "b"}},
		"disabled and hash": {{Hash: "$6$a$b", Disabled: true}},
		"root twice":        {{Plain: "a"}, {User: "root", Disabled: true}},
	} {
		t.Run(name, func(t *testing.T) {
			g := memGuest(t)
			before := snapshot(t, g)
			_, err := Apply(g, &Data{Passwords: ps}, nil)
			wantErr(t, err, ErrInvalidPassword)
			if snapshot(t, g) != before {
				t.Error("guest changed")
			}
		})
	}
}
