package crypt

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// libxcrypt is crypt(3) of the system's libxcrypt, through perl (Debian's
// perl-base, always installed); the test fails if it cannot run.
func libxcrypt(t *testing.T, plain, setting string) string {
	t.Helper()
	return runPerl(t, `print crypt($ARGV[0], $ARGV[1])`, "", plain, setting)
}

// runPerl runs script with stdin and args and returns its output.
func runPerl(t *testing.T, script, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("perl", append([]string{"-e", script}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("perl crypt (libxcrypt oracle): %v", err)
	}
	return string(out)
}

// TestHashMatchesLibxcrypt: every scheme, cost and a few passwords give the
// hash the system's crypt(3) gives for the same setting.
func TestHashMatchesLibxcrypt(t *testing.T) {
	plains := []string{"pw", "correct horse battery staple", "ünïcödé:$!", strings.Repeat("x", 200)}
	var settings []string
	for _, s := range Schemes {
		for _, cost := range []int{1, 2, 3, 5} {
			if s != Yescrypt && cost != 5 {
				continue
			}
			if s != Yescrypt {
				cost = 0 // sha and md5: the default rounds
			}
			st, err := Setting(s, cost)
			if err != nil {
				t.Fatal(err)
			}
			settings = append(settings, st)
		}
	}
	settings = append(settings, "$6$rounds=1000$abcdefgh", "$5$rounds=2000$saltsalt", "$y$j9T$AAt9R641xPvCI9nXw1HHW/")
	for _, st := range settings {
		for _, p := range plains {
			got, err := HashSetting(p, st)
			if err != nil {
				t.Fatalf("%s: %v", st, err)
			}
			if want := libxcrypt(t, p, st); got != want {
				t.Errorf("crypt(%q, %q) = %q, libxcrypt %q", p, st, got, want)
			}
			// a whole hash as the setting gives the same hash again
			if again, err := HashSetting(p, got); err != nil || again != got {
				t.Errorf("rehash of %q = %q, %v", got, again, err)
			}
		}
	}
}

// TestDefaultSHARoundsRange: both bounds give a count between them, and
// the setting Hash makes with it is one libxcrypt reads the same way.
func TestDefaultSHARoundsRange(t *testing.T) {
	seen := map[int]bool{}
	for range 40 {
		s, r, note := Default([]byte("ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 5000\nSHA_CRYPT_MAX_ROUNDS 5003\n"))
		if s != SHA512 || r < 5000 || r > 5003 || note != "" {
			t.Fatalf("%s %d %q, want sha512 with 5000..5003 rounds", s, r, note)
		}
		seen[r] = true
	}
	if len(seen) < 2 {
		t.Fatalf("40 draws between 5000 and 5003 all gave %v", seen)
	}
	for _, r := range []int{DefaultSHARounds, 6000} {
		h, err := Hash("s3cret", SHA512, r)
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.HasPrefix(h, "$6$rounds="); has != (r != DefaultSHARounds) {
			t.Fatalf("%d rounds: %q (the default is written implied, as shadow does)", r, h)
		}
		if want := libxcrypt(t, "s3cret", h); h != want {
			t.Fatalf("%d rounds: %q, libxcrypt %q", r, h, want)
		}
	}
	if _, err := Hash("x", SHA256, 999); err == nil {
		t.Fatal("999 rounds accepted (below libxcrypt's 1000)")
	}
}

// TestMkpasswdYescrypt: a hash made by mkpasswd (whois) verifies here.
func TestMkpasswdYescrypt(t *testing.T) {
	for _, cost := range []string{"1", "5", "7"} {
		out, err := exec.Command("mkpasswd", "-m", "yescrypt", "-R", cost, "s3cret").Output()
		if err != nil {
			t.Fatalf("mkpasswd (whois) must be installed: %v", err)
		}
		h := strings.TrimSpace(string(out))
		got, err := HashSetting("s3cret", h)
		if err != nil || got != h {
			t.Errorf("mkpasswd -R %s: %q, we make %q (%v)", cost, h, got, err)
		}
	}
}

func TestYescryptSettingCosts(t *testing.T) {
	salt := []byte("0123456789abcdef")
	for cost, want := range map[int]string{0: "$y$j9T$", 1: "$y$j75$", 2: "$y$j85$", 3: "$y$j7T$", 5: "$y$j9T$", 11: "$y$jFT$"} {
		s, err := YescryptSetting(cost, salt)
		if err != nil || !strings.HasPrefix(s, want) || len(s) != len(want)+22 {
			t.Errorf("cost %d: %q %v, want prefix %s and 22 salt chars", cost, s, err, want)
		}
	}
	for _, bad := range []int{-1, 12} {
		if _, err := YescryptSetting(bad, salt); err == nil {
			t.Errorf("cost %d accepted", bad)
		}
	}
}

func TestDefault(t *testing.T) {
	for _, c := range []struct {
		defs string
		s    Scheme
		cost int
		note bool
	}{
		{"", SHA512, 0, false},
		{"ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 7\n", Yescrypt, 7, false},
		{"# ENCRYPT_METHOD MD5\nENCRYPT_METHOD\tSHA256\n", SHA256, 0, false},
		{"ENCRYPT_METHOD yescrypt\nYESCRYPT_COST_FACTOR 99\n", Yescrypt, 0, true},
		{"ENCRYPT_METHOD DES\n", SHA512, 0, true},
		{"ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 11\n", Yescrypt, MaxGuestCost, true},
		{"ENCRYPT_METHOD BCRYPT\n", SHA512, 0, true},
		// shadow's SHA_CRYPT_MIN_ROUNDS / SHA_CRYPT_MAX_ROUNDS (RHEL's
		// hardening guides set them): one bound fixes the rounds, a
		// minimum above the maximum wins, the result is clamped to
		// 1000.., a guest's billion rounds capped with a note.
		{"ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 100000\n", SHA512, 100000, false},
		{"SHA_CRYPT_MAX_ROUNDS 65536\n", SHA512, 65536, false},
		{"ENCRYPT_METHOD SHA256\nSHA_CRYPT_MIN_ROUNDS 9000\nSHA_CRYPT_MAX_ROUNDS 8000\n", SHA256, 9000, false},
		{"SHA_CRYPT_MIN_ROUNDS 10\n", SHA512, MinSHARounds, false},
		{"SHA_CRYPT_MIN_ROUNDS 999999999\n", SHA512, MaxGuestSHARounds, true},
		{"SHA_CRYPT_MIN_ROUNDS 77777777777777777777\n", SHA512, 0, true},
		{"ENCRYPT_METHOD YESCRYPT\nSHA_CRYPT_MIN_ROUNDS 100000\n", Yescrypt, 0, false},
		{"ENCRYPT_METHOD MD5\nSHA_CRYPT_MIN_ROUNDS 100000\n", MD5, 0, false},
	} {
		s, cost, note := Default([]byte(c.defs))
		if s != c.s || cost != c.cost || (note != "") != c.note {
			t.Errorf("%q: %s %d %q, want %s %d note %v", c.defs, s, cost, note, c.s, c.cost, c.note)
		}
	}
}

func TestHashSettingRefuses(t *testing.T) {
	for _, st := range []string{"", "$2b$10$abc", "$y$", "$y$jz5$abc", "$y$j9T$!!!"} {
		if h, err := HashSetting("pw", st); err == nil {
			t.Errorf("%q accepted: %q", st, h)
		}
	}
	if _, err := HashSetting("a\x00b", "$6$salt"); err == nil {
		t.Error("NUL accepted")
	}
}

// FuzzDefault: any login.defs: no panic, a supported scheme, a bounded cost.
func FuzzDefault(f *testing.F) {
	f.Add([]byte("ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 5\n"))
	f.Add([]byte("ENCRYPT_METHOD\tSHA256\n#x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, cost, _ := Default(b)
		if _, err := ParseScheme(string(s)); err != nil || cost < 0 || cost > MaxGuestCost || s != Yescrypt && cost != 0 {
			t.Fatalf("%q: %s %d", b, s, cost)
		}
	})
}

// TestHashLen holds HashLen to the length of every scheme's hash, so a
// shadow file planned with it has the size the hash gives it.
func TestHashLen(t *testing.T) {
	for _, c := range []struct {
		s    Scheme
		cost int
	}{{SHA512, 0}, {SHA512, 1000}, {SHA512, 12345}, {SHA256, 0}, {SHA256, 5001}, {MD5, 0}, {Yescrypt, 1}, {Yescrypt, 2}, {Yescrypt, 3}} {
		setting, err := Setting(c.s, c.cost)
		if err != nil {
			t.Fatal(err)
		}
		n, err := HashLen(setting)
		if err != nil {
			t.Fatalf("%s: %v", setting, err)
		}
		for _, plain := range []string{"x", "s3cret pass", strings.Repeat("p", 200)} {
			h, err := HashSetting(plain, setting)
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != n {
				t.Errorf("%s cost %d: HashLen %d, hash %q has %d", c.s, c.cost, n, h, len(h))
			}
		}
	}
	for _, bad := range []string{"", "$2b$10$abc", "6$salt"} {
		if _, err := HashLen(bad); !errors.Is(err, ErrScheme) {
			t.Errorf("HashLen(%q) = %v, want ErrScheme", bad, err)
		}
	}
}
