package inject

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

func TestKeysForRoot(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		rep, err := Apply(g.fs, &Data{Keys: []string{demoKey}}, nil)
		must(t, err)
		if got := read(t, g.fs, "/root/.ssh/authorized_keys"); got != demoKey+"\n" {
			t.Errorf("authorized_keys = %q", got)
		}
		wantAttr(t, g.fs, "/root/.ssh", 0o700, 0, 0)
		wantAttr(t, g.fs, "/root/.ssh/authorized_keys", 0o600, 0, 0)
		wantAttr(t, g.fs, "/root", 0o700, 0, 0) // the home is left alone
		if len(rep.Items) != 1 || rep.Items[0].Status != StatusDone || rep.Items[0].Path != "/root/.ssh/authorized_keys" {
			t.Errorf("report %+v", rep.Items)
		}
	})
}

func TestKeysForOtherUser(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey, rsaKey}, KeyUser: "debian"}, nil)
		must(t, err)
		if got := read(t, g.fs, "/home/debian/.ssh/authorized_keys"); got != demoKey+"\n"+rsaKey+"\n" {
			t.Errorf("authorized_keys = %q", got)
		}
		wantAttr(t, g.fs, "/home/debian/.ssh", 0o700, 1000, 1000)
		wantAttr(t, g.fs, "/home/debian/.ssh/authorized_keys", 0o600, 1000, 1000)
		if has, _ := g.fs.HasFile("/root/.ssh"); has {
			t.Error("/root/.ssh created for another user")
		}
	})
}

func TestKeysMissingHomeIsCreatedForTheUser(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.AppendFile("/etc/passwd", []byte("ci:x:1001:1001::/home/ci:/bin/sh\n")))
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey}, KeyUser: "ci"}, nil)
		must(t, err)
		wantAttr(t, g.fs, "/home/ci", 0o755, 1001, 1001)
		wantAttr(t, g.fs, "/home/ci/.ssh", 0o700, 1001, 1001)
		wantAttr(t, g.fs, "/home/ci/.ssh/authorized_keys", 0o600, 1001, 1001)
	})
}

func TestKeysAppendAfterMissingNewline(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.MakePath("/root/.ssh"))
		must(t, g.fs.SetPermissions("/root/.ssh", 0o777))
		must(t, g.fs.ReplaceFile("/root/.ssh/authorized_keys", []byte("# mine\n"+rsaKey)))
		must(t, g.fs.SetPermissions("/root/.ssh/authorized_keys", 0o644))
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey}}, nil)
		must(t, err)
		want := "# mine\n" + rsaKey + "\n" + demoKey + "\n"
		if got := read(t, g.fs, "/root/.ssh/authorized_keys"); got != want {
			t.Errorf("authorized_keys = %q, want %q", got, want)
		}
		wantAttr(t, g.fs, "/root/.ssh", 0o700, 0, 0)
		wantAttr(t, g.fs, "/root/.ssh/authorized_keys", 0o600, 0, 0)
	})
}

func TestKeysAlreadyPresentNotAddedTwice(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		// The same key type and blob with options and another comment.
		blob := strings.Fields(demoKey)[1]
		existing := `no-pty,command="/bin/true" ssh-ed25519 ` + blob + " other comment\n"
		must(t, g.fs.MakePath("/root/.ssh"))
		must(t, g.fs.ReplaceFile("/root/.ssh/authorized_keys", []byte(existing)))
		rep, err := Apply(g.fs, &Data{Keys: []string{demoKey, ecdsaKey, ecdsaKey + " again"}}, nil)
		must(t, err)
		want := existing + ecdsaKey + "\n"
		if got := read(t, g.fs, "/root/.ssh/authorized_keys"); got != want {
			t.Errorf("authorized_keys = %q, want %q", got, want)
		}
		if s := rep.Items[0].Summary; !strings.HasPrefix(s, "1 key(s) added, 2 already present") {
			t.Errorf("summary %q", s)
		}
		// A second run adds nothing.
		_, err = Apply(g.fs, &Data{Keys: []string{demoKey, ecdsaKey}}, nil)
		must(t, err)
		if got := read(t, g.fs, "/root/.ssh/authorized_keys"); got != want {
			t.Errorf("after second run authorized_keys = %q", got)
		}
	})
}

func TestKeysErrors(t *testing.T) {
	cases := []struct {
		name string
		data Data
		want []error
	}{
		{"garbage", Data{Keys: []string{"not a key"}}, []error{ErrInvalidKey}},
		{"truncated blob", Data{Keys: []string{demoKey[:40]}}, []error{ErrInvalidKey}},
		{"two keys in one", Data{Keys: []string{demoKey + "\n" + rsaKey}}, []error{ErrInvalidKey}},
		{"empty", Data{Keys: []string{"  "}}, []error{ErrInvalidKey}},
		{"private key", Data{Keys: []string{"-----BEGIN OPENSSH PRIVATE KEY-----"}}, []error{ErrInvalidKey}},
		{"unknown user", Data{Keys: []string{demoKey}, KeyUser: "nobody-here"}, []error{ErrNoSuchUser, vfs.ErrUnknownUser}},
		// nobody's home is /nonexistent: no /nonexistent/.ssh is made.
		{"user without a home", Data{Keys: []string{demoKey}, KeyUser: "nobody"}, []error{ErrNoSuchUser}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachGuest(t, func(t *testing.T, g guest) {
				before := snapshot(t, g.fs)
				rep, err := Apply(g.fs, &c.data, nil)
				wantErr(t, err, c.want...)
				var ie *ItemError
				if !asItemError(err, &ie) || ie.Kind != KindKeys {
					t.Errorf("error %v is not a keys ItemError", err)
				}
				if rep.Items[0].Status != StatusFailed || rep.Items[0].Error == "" {
					t.Errorf("report %+v", rep.Items[0])
				}
				if after := snapshot(t, g.fs); after != before {
					t.Errorf("guest changed:\n%s\n---\n%s", before, after)
				}
			})
		})
	}
}

func TestKeysUserWithoutPasswd(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.(vfs.Remover).Remove("/etc/passwd"))
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey}}, nil)
		wantErr(t, err, ErrNoSuchUser)
	})
}

func TestKeysSSHDirIsAFile(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.ReplaceFile("/root/.ssh", []byte("oops")))
		before := snapshot(t, g.fs)
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey}, Meta: map[string]string{"a": "b"}}, nil)
		wantErr(t, err, vfs.ErrNotDir)
		if after := snapshot(t, g.fs); after != before {
			t.Error("guest changed")
		}
	})
}

func TestKeysAuthorizedKeysIsADirectory(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.MakePath("/root/.ssh/authorized_keys"))
		_, err := Plan(g.fs, &Data{Keys: []string{demoKey}}, nil)
		wantErr(t, err, vfs.ErrIsDir)
	})
}

func TestParseKeysKeepsOptionsAndComment(t *testing.T) {
	line := `from="10.0.0.0/8",no-agent-forwarding ` + demoKey
	keys, err := parseKeys([]string{"  " + line + "\n"})
	must(t, err)
	if keys[0].line != line {
		t.Errorf("line %q", keys[0].line)
	}
	other, err := parseKeys([]string{demoKey})
	must(t, err)
	if keys[0].blob != other[0].blob {
		t.Error("options changed the key identity")
	}
}

func TestNewKeyData(t *testing.T) {
	k, err := parseKeys([]string{demoKey})
	must(t, err)
	for _, c := range []struct{ existing, want string }{
		{"", demoKey + "\n"},
		{"\n", demoKey + "\n"},
		{"# c", "\n" + demoKey + "\n"},
		{rsaKey + "\n", demoKey + "\n"},
		{demoKey, ""}, // present without a newline: nothing to add
	} {
		got, _, _ := newKeyData([]byte(c.existing), k)
		if string(got) != c.want {
			t.Errorf("existing %q: append %q, want %q", c.existing, got, c.want)
		}
	}
}

func TestKeysRefuseSymlinkedSSHDir(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.(vfs.Symlinker).Symlink("/etc", "/root/.ssh"))
		before := snapshot(t, g.fs)
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey}}, nil)
		wantErr(t, err, ErrUnsafeSymlink)
		if after := snapshot(t, g.fs); after != before {
			t.Error("guest changed")
		}
		wantAttr(t, g.fs, "/etc", 0o755, 0, 0)
	})
}

func TestKeysRefuseSymlinkedAuthorizedKeys(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.MakePath("/root/.ssh"))
		must(t, g.fs.(vfs.Symlinker).Symlink("../../etc/shadow", "/root/.ssh/authorized_keys"))
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey}}, nil)
		wantErr(t, err, ErrUnsafeSymlink)
		wantAttr(t, g.fs, "/etc/shadow", 0o640, 0, 42)
	})
}

func TestKeysDanglingSSHDirFailsBeforeWriting(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		// Out of the guest on the host, and dangling inside the guest.
		must(t, g.fs.(vfs.Symlinker).Symlink("../../../../../tmp/guestinject-escape", "/root/.ssh"))
		before := snapshot(t, g.fs)
		_, err := Apply(g.fs, &Data{Meta: map[string]string{"a": "b"}, Keys: []string{demoKey}}, nil)
		wantErr(t, err, fs.ErrExist)
		if after := snapshot(t, g.fs); after != before {
			t.Error("guest changed")
		}
	})
}

func TestKeysThroughSymlinkedHome(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		// /root -> /var/roothome, as on Fedora CoreOS: a symlinked
		// ancestor is fine, the keys land inside the guest.
		must(t, g.fs.MakePath("/var/roothome"))
		must(t, g.fs.(vfs.Remover).Remove("/root/.bashrc"))
		must(t, g.fs.(vfs.Remover).Remove("/root/.profile"))
		must(t, g.fs.(vfs.Remover).Remove("/root"))
		must(t, g.fs.(vfs.Symlinker).Symlink("var/roothome", "/root"))
		_, err := Apply(g.fs, &Data{Keys: []string{demoKey}}, nil)
		must(t, err)
		if got := read(t, g.fs, "/var/roothome/.ssh/authorized_keys"); got != demoKey+"\n" {
			t.Errorf("authorized_keys %q", got)
		}
		wantAttr(t, g.fs, "/var/roothome/.ssh", 0o700, 0, 0)
	})
}

func TestFilesThroughDanglingParentFailBeforeWriting(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.(vfs.Symlinker).Symlink("/nowhere", "/opt"))
		before := snapshot(t, g.fs)
		_, err := Apply(g.fs, &Data{Meta: map[string]string{"a": "b"}, Files: []File{{Path: "/opt/app/x", Data: []byte("x")}}}, nil)
		wantErr(t, err, fs.ErrExist)
		if after := snapshot(t, g.fs); after != before {
			t.Error("guest changed")
		}
	})
}

// FuzzAuthorizedKeys: any existing authorized_keys content is read without
// panic, and appending to it keeps every existing byte and ends in a newline.
func FuzzAuthorizedKeys(f *testing.F) {
	f.Add([]byte(demoKey + "\n# comment\n" + rsaKey))
	f.Add([]byte("no-pty " + ecdsaKey))
	f.Add([]byte("\x00\n\n ssh-ed25519 AAAA"))
	keys, err := parseKeys([]string{demoKey, rsaKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, existing []byte) {
		add, added, dup := newKeyData(existing, keys)
		if added+dup != len(keys) {
			t.Fatalf("added %d + dup %d != %d", added, dup, len(keys))
		}
		if added > 0 && add[len(add)-1] != '\n' {
			t.Fatalf("append %q lacks a final newline", add)
		}
		if added > 0 && len(existing) > 0 && existing[len(existing)-1] != '\n' && add[0] != '\n' {
			t.Fatalf("append %q after %q lacks a separating newline", add, existing)
		}
	})
}
