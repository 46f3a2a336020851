package inject

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/md5_crypt"    // verify checks with another implementation
	_ "github.com/GehirnInc/crypt/sha256_crypt" // than the one that made the hash
	_ "github.com/GehirnInc/crypt/sha512_crypt"

	icrypt "github.com/guestinject/guestinject/inject/crypt"
	"github.com/guestinject/guestinject/vfs"
)

// shadowHash returns field 2 of user's line.
func shadowHash(t *testing.T, shadow, user string) string {
	t.Helper()
	for _, line := range strings.Split(shadow, "\n") {
		f := strings.Split(line, ":")
		if f[0] == user && len(f) > 1 {
			return f[1]
		}
	}
	t.Fatalf("%s not in shadow", user)
	return ""
}

// verify checks hash against password with the crypt library.
func verify(t *testing.T, hash, password string) {
	t.Helper()
	if !crypt.IsHashSupported(hash) {
		t.Fatalf("hash %q has no supported prefix", hash)
	}
	if err := crypt.NewFromHash(hash).Verify(hash, []byte(password)); err != nil {
		t.Errorf("hash %q does not verify: %v", hash, err)
	}
	if crypt.NewFromHash(hash).Verify(hash, []byte(password+"x")) == nil {
		t.Errorf("hash %q verifies a wrong password", hash)
	}
}

func TestPasswordSHA512(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		before := read(t, g.fs, ShadowPath)
		rep, err := Apply(g.fs, &Data{AdminPassword: &Password{Plain: "s3cret pass"}}, nil)
		must(t, err)
		after := read(t, g.fs, ShadowPath)
		hash := shadowHash(t, after, "root")
		if !strings.HasPrefix(hash, "$6$") || len(strings.Split(hash, "$")[2]) != 16 {
			t.Errorf("hash %q is not $6$ with a 16-character salt", hash)
		}
		verify(t, hash, "s3cret pass")
		if want := strings.Replace(before, "root:*:", "root:"+hash+":", 1); after != want {
			t.Errorf("shadow:\n%s\nwant:\n%s", after, want)
		}
		wantAttr(t, g.fs, ShadowPath, 0o640, 0, 42)
		if strings.Contains(rep.Items[0].Summary+rep.Items[0].Error, hash) {
			t.Error("the report shows the hash")
		}
	})
}

// TestPasswordsHashedAheadKeepOwnSalts: the hashes started before the
// items are planned serve one user each, so two users given one password
// (and the scheme the guest names for both) get two salts, and each hash
// verifies.
func TestPasswordsHashedAheadKeepOwnSalts(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		d := &Data{Keys: []string{demoKey}, Passwords: []Password{{User: "root", Plain: "same"}, {User: "debian", Plain: "same"}}}
		_, err := Apply(g.fs, d, nil)
		must(t, err)
		after := read(t, g.fs, ShadowPath)
		a, b := shadowHash(t, after, "root"), shadowHash(t, after, "debian")
		if a == b {
			t.Errorf("root and debian got one hash (one salt): %q", a)
		}
		verify(t, a, "same")
		verify(t, b, "same")
	})
}

func TestPasswordMD5ForOtherUser(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		before := read(t, g.fs, ShadowPath)
		_, err := Apply(g.fs, &Data{AdminPassword: &Password{User: "debian", Plain: "pw", Crypto: CryptoMD5}}, nil)
		must(t, err)
		after := read(t, g.fs, ShadowPath)
		hash := shadowHash(t, after, "debian")
		if !strings.HasPrefix(hash, "$1$") {
			t.Errorf("hash %q", hash)
		}
		verify(t, hash, "pw")
		if want := strings.Replace(before, "debian:!:", "debian:"+hash+":", 1); after != want {
			t.Errorf("shadow:\n%s\nwant:\n%s", after, want)
		}
	})
}

func TestPasswordPreparedHashNoTrailingNewline(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		shadow := "root:*:19900:0:99999:7:::\ndebian:!:19900:0:99999:7:::"
		must(t, g.fs.ReplaceFile(ShadowPath, []byte(shadow)))
		hash := "$y$j9T$abcdefghijklmnop$0123456789012345678901234567890123456789012"
		_, err := Apply(g.fs, &Data{AdminPassword: &Password{User: "debian", Hash: hash}}, nil)
		must(t, err)
		want := "root:*:19900:0:99999:7:::\ndebian:" + hash + ":19900:0:99999:7:::"
		if got := read(t, g.fs, ShadowPath); got != want {
			t.Errorf("shadow %q, want %q", got, want)
		}
	})
}

func TestHashPasswordSaltsDiffer(t *testing.T) {
	a, err := HashPassword("same", CryptoSHA512)
	must(t, err)
	b, err := HashPassword("same", CryptoSHA512)
	must(t, err)
	if a == b {
		t.Error("two hashes of one password share a salt")
	}
	for _, h := range []string{a, b} {
		salt := strings.Split(h, "$")[2]
		if len(salt) != 16 || strings.Trim(salt, saltAlphabet) != "" {
			t.Errorf("salt %q", salt)
		}
		verify(t, h, "same")
	}
}

func TestRandomPassword(t *testing.T) {
	p, err := RandomPassword(20)
	must(t, err)
	q, err := RandomPassword(20)
	must(t, err)
	if len(p) != 20 || p == q {
		t.Errorf("random passwords %q %q", p, q)
	}
}

func TestSetShadowHash(t *testing.T) {
	cases := []struct{ in, user, want string }{
		{"root:*:1:0:99999:7:::\n", "root", "root:H:1:0:99999:7:::\n"},
		{"a:x\nroot:\n", "root", "a:x\nroot:H\n"},              // empty field 2, no more fields
		{"root:old\r\n", "root", "root:H\r\n"},                 // a CR is not field 2
		{"rooty:*:1\nroot:*:2", "root", "rooty:*:1\nroot:H:2"}, // exact name match
		{"\n\nroot::::\n\n", "root", "\n\nroot:H:::\n\n"},
	}
	for _, c := range cases {
		got, err := SetShadowHash([]byte(c.in), c.user, "H")
		must(t, err)
		if string(got) != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSetShadowHashErrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{"daemon:*:1\n", ErrNoSuchUser},
		{"", ErrNoSuchUser},
		{"root\n", ErrBadShadow},
		{"root:*:1\nroot:*:2\n", ErrBadShadow},
	} {
		_, err := SetShadowHash([]byte(c.in), "root", "H")
		wantErr(t, err, c.want)
	}
}

func TestPasswordErrors(t *testing.T) {
	cases := []struct {
		name  string
		p     Password
		setup func(vfs.FS) error
		want  []error
	}{
		{"not in passwd", Password{User: "ghost", Plain: "x"}, nil, []error{ErrNoSuchUser, vfs.ErrUnknownUser}},
		{"not in shadow", Password{User: "ci", Plain: "x"}, func(f vfs.FS) error {
			return f.AppendFile("/etc/passwd", []byte("ci:x:1001:1001::/home/ci:/bin/sh\n"))
		}, []error{ErrNoSuchUser}},
		{"no shadow", Password{Plain: "x"}, func(f vfs.FS) error { return f.(vfs.Remover).Remove(ShadowPath) }, []error{fs.ErrNotExist}},
		{"no passwd", Password{Plain: "x"}, func(f vfs.FS) error { return f.(vfs.Remover).Remove("/etc/passwd") }, []error{ErrNoSuchUser}},
		{"two lines", Password{Plain: "x"}, func(f vfs.FS) error {
			return f.AppendFile(ShadowPath, []byte("root:*:1::::::\n"))
		}, []error{ErrBadShadow}},
		{"no secret", Password{}, nil, []error{ErrInvalidPassword}},
		{"both secrets", Password{Plain: "x", Hash: "$6$a$b"}, nil, []error{ErrInvalidPassword}},
		{"colon in hash", Password{Hash: "$6$a:b"}, nil, []error{ErrInvalidPassword}},
		{"newline in hash", Password{Hash: "$6$a\nroot::0:::::"}, nil, []error{ErrInvalidPassword}},
		{"NUL in password", Password{Plain: "a\x00b"}, nil, []error{ErrInvalidPassword}},
		{"unknown crypto", Password{Plain: "x", Crypto: "des"}, nil, []error{ErrInvalidPassword}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachGuest(t, func(t *testing.T, g guest) {
				if c.setup != nil {
					must(t, c.setup(g.fs))
				}
				before := snapshot(t, g.fs)
				_, err := Apply(g.fs, &Data{AdminPassword: &c.p, Keys: []string{demoKey}}, nil)
				wantErr(t, err, c.want...)
				if ie := findItemError(err, KindPassword); ie == nil || ie.Path != ShadowPath {
					t.Errorf("error %v does not name the password item and %s", err, ShadowPath)
				}
				if after := snapshot(t, g.fs); after != before {
					t.Error("guest changed")
				}
			})
		})
	}
}

func FuzzSetShadowHash(f *testing.F) {
	f.Add([]byte("root:*:19900:0:99999:7:::\ndebian:!:19900:0:99999:7:::\n"), "root")
	f.Add([]byte("root:x"), "root")
	f.Add([]byte("\n:\n::\nroot"), "")
	f.Fuzz(func(t *testing.T, shadow []byte, user string) {
		out, err := SetShadowHash(shadow, user, "HASH")
		if err != nil {
			return
		}
		in, got := strings.Split(string(shadow), "\n"), strings.Split(string(out), "\n")
		if len(in) != len(got) {
			t.Fatalf("line count %d -> %d", len(in), len(got))
		}
		changed := 0
		for i := range in {
			if in[i] == got[i] {
				continue
			}
			changed++
			a, b := strings.SplitN(in[i], ":", 3), strings.SplitN(got[i], ":", 3)
			if a[0] != user || b[0] != user || !strings.HasPrefix(b[1], "HASH") || len(a) != len(b) || (len(a) == 3 && a[2] != b[2]) {
				t.Fatalf("line %d %q -> %q", i, in[i], got[i])
			}
		}
		if changed > 1 {
			t.Fatalf("%d lines changed", changed)
		}
	})
}

// Known answers computed with `openssl passwd -6 -salt ...` and
// `openssl passwd -1 -salt ...` (glibc's crypt gives the same).
func TestHashKnownAnswers(t *testing.T) {
	for _, c := range []struct{ plain, prefix, salt, want string }{
		{"pGBs2YfPpKKXE6p9ZmdX", "$6$", "0r9EjbPXdIClXyiw", "$6$0r9EjbPXdIClXyiw$wZQb1etlRHFDJ.F84dXSFQ/vCUdlZRxD/64ASdZWKnYauT2nmku6Wq4ImSM0QX3LZogwdz7LBMOMl1tZOpMHB1"},
		{"pw", "$1$", "abcdefgh", "$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc."},
	} {
		got, err := hashWithSalt(c.plain, c.prefix, c.salt)
		must(t, err)
		if got != c.want {
			t.Errorf("%s%s: %s, want %s", c.prefix, c.salt, got, c.want)
		}
	}
}

// TestPasswordHashPlannedByLength: the password item is planned while its
// hash is still being computed, with the hash's length; the file written
// holds the real hash, and operations planned on the shadow's content
// (append-line to it, copy of it) see the real hash too, never the stand-in.
func TestPasswordHashPlannedByLength(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		d := &Data{AdminPassword: &Password{Plain: "s3cret pass", Crypto: CryptoSHA512, Locked: true},
			Ops: ops("append-line", "/etc/shadow:svc:*:19900:0:99999:7:::", "copy", "/etc/shadow:/root/shadow.copy")}
		rep, err := Apply(g.fs, d, nil)
		must(t, err)
		after := read(t, g.fs, ShadowPath)
		h := shadowHash(t, after, "root")
		if !strings.HasPrefix(h, "!$6$") || strings.Contains(h, "..") {
			t.Fatalf("root's field %q", h)
		}
		verify(t, h[1:], "s3cret pass")
		if !strings.Contains(after, "\nsvc:*:19900:0:99999:7:::") {
			t.Errorf("the appended line is missing:\n%s", after)
		}
		if c := read(t, g.fs, "/root/shadow.copy"); c != after {
			t.Errorf("copy of the shadow:\n%s\nwant:\n%s", c, after)
		}
		for _, it := range rep.Items {
			for _, a := range it.Actions {
				if it.Kind == KindPassword && a.Op == OpReplace && a.Bytes != len(after)-len("svc:*:19900:0:99999:7:::\n") {
					t.Errorf("planned %d bytes for the shadow, it has %d before the appended line", a.Bytes, len(after)-len("svc:*:19900:0:99999:7:::\n"))
				}
			}
		}
	})
}

// TestPasswordStandInLength: a hash started ahead is handed out as a
// stand-in of its final length, and its wait gives the hash.
func TestPasswordStandInLength(t *testing.T) {
	for _, c := range []Crypto{CryptoSHA512, CryptoSHA256, CryptoMD5, CryptoYescrypt} {
		hs := hashAhead(nil, []Password{{Plain: "pw", Crypto: c}})
		s, err := icrypt.ParseScheme(string(c))
		must(t, err)
		stand, wait, err := hs.hash("pw", s, 0)
		must(t, err)
		if wait == nil {
			if len(stand) < 20 {
				t.Errorf("%s: hash %q", c, stand)
			}
			continue // finished already
		}
		h, err := wait()
		must(t, err)
		if len(h) != len(stand) || !strings.HasPrefix(stand, h[:strings.LastIndexByte(h, '$')+1]) {
			t.Errorf("%s: stand-in %q for hash %q", c, stand, h)
		}
		if again, err := icrypt.HashSetting("pw", h); err != nil || again != h {
			t.Errorf("%s: hash %q does not check: %q, %v", c, h, again, err)
		}
	}
}
