package inject

import (
	"errors"
	"fmt"
	"strings"

	"github.com/guestinject/guestinject/inject/crypt"
	"github.com/guestinject/guestinject/vfs"
)

// ShadowPath is the guest's shadow password file.
const ShadowPath = "/etc/shadow"

// LoginDefsPath is where a guest names the hash scheme its own tools use.
const LoginDefsPath = "/etc/login.defs"

// Crypto is a password hashing scheme of crypt(3).
type Crypto string

const (
	CryptoGuest    Crypto = ""         // the guest's own: ENCRYPT_METHOD in /etc/login.defs, else sha512
	CryptoYescrypt Crypto = "yescrypt" // "$y$", Debian 11+, Ubuntu 20.04+, Fedora, RHEL 9
	CryptoSHA512   Crypto = "sha512"   // sha512-crypt, "$6$"
	CryptoSHA256   Crypto = "sha256"   // sha256-crypt, "$5$"
	CryptoMD5      Crypto = "md5"      // md5-crypt, "$1$", for old guests
)

// Password sets a user's password field in the guest's /etc/shadow, as
// virt-customize's selectors do: a password (Plain, hashed here), a
// prepared Hash, or Disabled ("*": no password logs in); Locked puts "!"
// before it (passwd -l: locked, the password kept for an unlock), and
// Locked with Disabled is "!*". Exactly one of Plain, Hash and Disabled is
// set.
type Password struct {
	User     string // default root; must be in /etc/passwd and /etc/shadow
	Plain    string // hashed with Crypto and a fresh random salt
	Hash     string // a prepared crypt(3) hash, written as is
	Disabled bool
	Locked   bool
	Crypto   Crypto // default CryptoGuest
}

// field is the shadow password field p asks for, and what the report says
// of it; hs gives the guest's scheme for Crypto "" (with its yescrypt cost
// and a note when login.defs was not followed) and the hashes. When the
// hash is still being computed, field has its final length but not its
// bytes, and wait gives the final field.
func (p *Password) field(fsys vfs.FS, hs *hasher) (field, what string, wait func() (string, error), err error) {
	n := 0
	for _, set := range []bool{p.Plain != "", p.Hash != "", p.Disabled} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return "", "", nil, fmt.Errorf("%w: give one of a password, a hash and disabled", ErrInvalidPassword)
	case n == 0 && p.Locked:
		p.Disabled = true // virt-customize: "locked" alone is locked:disabled
	case n == 0:
		return "", "", nil, fmt.Errorf("%w: empty password", ErrInvalidPassword)
	}
	switch {
	case p.Disabled:
		field, what = "*", "password disabled"
	case p.Hash != "":
		if err := validHash(p.Hash); err != nil {
			return "", "", nil, err
		}
		field, what = p.Hash, "hash set"
	default:
		if strings.IndexByte(p.Plain, 0) >= 0 {
			return "", "", nil, fmt.Errorf("%w: NUL byte in password", ErrInvalidPassword)
		}
		s, cost, note, ok := hs.scheme(fsys, p.Crypto)
		if !ok {
			return "", "", nil, fmt.Errorf("%w: unknown crypto %q (want yescrypt, sha512, sha256 or md5)", ErrInvalidPassword, p.Crypto)
		}
		h, w, err := hs.hash(p.Plain, s, cost)
		if err != nil {
			return "", "", nil, fmt.Errorf("%w: %w", ErrInvalidPassword, err)
		}
		field, what, wait = h, string(s)+" hash set", w
		if note != "" {
			what += " (" + note + ")"
		}
	}
	if p.Locked {
		field, what = "!"+field, "locked, "+what
		if w := wait; w != nil {
			wait = func() (string, error) {
				h, err := w()
				return "!" + h, err
			}
		}
	}
	return field, what, wait, nil
}

// preparePasswords plans every password change as one item: one rewrite of
// /etc/shadow that changes field 2 of each user's line and nothing else.
// Every user must be in /etc/passwd and /etc/shadow; the users missing
// are named together in one error.
func preparePasswords(fsys vfs.FS, ps []Password, hs *hasher) *item {
	it := newItem(KindPassword, ShadowPath)
	seen := map[string]bool{}
	var missing []string
	var missingErr error
	for i := range ps {
		if ps[i].User == "" {
			ps[i].User = "root"
		}
		u := ps[i].User
		if seen[u] {
			return it.fail(fmt.Errorf("%w: password of %q given twice", ErrInvalidPassword, u))
		}
		seen[u] = true
		if _, err := lookupUser(fsys, u); err != nil {
			var ue *userError
			if !errors.As(err, &ue) {
				return it.fail(err)
			}
			missing, missingErr = append(missing, u), ue.cause
		}
	}
	if len(missing) > 0 {
		return it.fail(&userError{name: missing[0], others: missing[1:], file: vfs.PasswdPath, cause: missingErr})
	}
	if hs == nil {
		hs = &hasher{}
	}
	shadow, err := readGuest(fsys, ShadowPath)
	if err != nil {
		return it.fail(err)
	}
	var summary []string
	type later struct {
		user string
		wait func() (string, error)
	}
	var waits []later
	for i := range ps {
		field, what, wait, err := ps[i].field(fsys, hs)
		if err != nil {
			return it.fail(err)
		}
		if shadow, err = SetShadowHash(shadow, ps[i].User, field); err != nil {
			return it.fail(err)
		}
		if wait != nil {
			waits = append(waits, later{ps[i].User, wait})
		}
		summary = append(summary, ps[i].User+": "+what)
	}
	if len(waits) == 0 {
		it.replace(ShadowPath, shadow)
	} else {
		// The hashes are still being computed: the file is planned at
		// its final size and gets its final bytes when it is written.
		it.replaceLater(ShadowPath, shadow, func() ([]byte, error) {
			out := shadow
			for _, l := range waits {
				field, err := l.wait()
				if err != nil {
					return nil, fmt.Errorf("%w: %w", ErrInvalidPassword, err)
				}
				if out, err = SetShadowHash(out, l.user, field); err != nil {
					return nil, err
				}
			}
			return out, nil
		})
	}
	it.rep.Summary = strings.Join(summary, "; ")
	return it
}

// hasher hashes passwords. Hashing (a few ms for sha512-crypt, more for
// yescrypt) is most of an injection's CPU time, so hashAhead starts the
// hashes a run will need on other goroutines before the other items are
// planned; hash hands out one of those as a promise (the password item is
// planned with the hash's length and waits for its bytes only when it is
// written, so the hash runs while every item is planned and the ones
// before it are written), or computes the hash when none was started.
type hasher struct {
	defs  *guestScheme // the guest's default scheme, read once
	ahead map[hashKey]*hashJob
}

type hashKey struct {
	plain string
	s     crypt.Scheme
	cost  int
}

type hashJob struct {
	setting string // the scheme, parameters and salt
	n       int    // the hash's length
	done    chan struct{}
	h       string
	err     error
	used    bool // a hash serves one user: two with one password get two salts
}

// hashAhead starts hashing each plain password of ps with the scheme
// field will choose for it.
func hashAhead(fsys vfs.FS, ps []Password) *hasher {
	hs := &hasher{ahead: map[hashKey]*hashJob{}}
	for _, p := range ps {
		if p.Plain == "" || p.Hash != "" || p.Disabled || strings.IndexByte(p.Plain, 0) >= 0 {
			continue
		}
		s, cost, _, ok := hs.scheme(fsys, p.Crypto)
		k := hashKey{p.Plain, s, cost}
		if !ok || hs.ahead[k] != nil {
			continue
		}
		j := &hashJob{done: make(chan struct{})}
		hs.ahead[k] = j
		var err error
		if j.setting, err = crypt.Setting(k.s, k.cost); err == nil {
			j.n, err = crypt.HashLen(j.setting)
		}
		if err != nil {
			j.err = err
			close(j.done)
			continue
		}
		go func() {
			j.h, j.err = crypt.HashSetting(k.plain, j.setting)
			if j.err == nil && len(j.h) != j.n {
				j.err = fmt.Errorf("internal error: %d-byte hash, %d planned", len(j.h), j.n)
			}
			close(j.done)
		}()
	}
	return hs
}

// scheme is the scheme c names, or the guest's for CryptoGuest, with its
// cost and a note; ok is false for an unknown name.
func (hs *hasher) scheme(fsys vfs.FS, c Crypto) (s crypt.Scheme, cost int, note string, ok bool) {
	if c != CryptoGuest {
		_, err := crypt.ParseScheme(string(c))
		return crypt.Scheme(c), 0, "", err == nil
	}
	if hs.defs == nil {
		hs.defs = readGuestScheme(fsys)
	}
	return hs.defs.s, hs.defs.cost, hs.defs.note, true
}

// hash returns a hash of plain. For a hash started ahead it returns at
// once, with a stand-in of the hash's length (its setting, then dots) and
// wait, which gives the hash when it is done.
func (hs *hasher) hash(plain string, s crypt.Scheme, cost int) (h string, wait func() (string, error), err error) {
	if j := hs.ahead[hashKey{plain, s, cost}]; j != nil && !j.used {
		j.used = true
		select {
		case <-j.done:
			return j.h, nil, j.err
		default:
		}
		stand := j.setting + "$" + strings.Repeat(".", j.n-len(j.setting)-1)
		return stand, func() (string, error) {
			<-j.done
			return j.h, j.err
		}, nil
	}
	h, err = crypt.Hash(plain, s, cost)
	return h, nil, err
}

// guestScheme is the guest's default hash scheme.
type guestScheme struct {
	s    crypt.Scheme
	cost int
	note string
}

// readGuestScheme reads /etc/login.defs: an unreadable file counts as
// none (sha512), and the note says so.
func readGuestScheme(fsys vfs.FS) *guestScheme {
	b, _, err := readGuestOptional(fsys, LoginDefsPath)
	if err != nil {
		return &guestScheme{s: crypt.SHA512, note: fmt.Sprintf("%s unreadable (%v): sha512 used", LoginDefsPath, err)}
	}
	s, cost, note := crypt.Default(b)
	return &guestScheme{s, cost, note}
}

// validHash accepts a prepared hash that can sit in field 2 of a shadow
// line: printable ASCII without ':'.
func validHash(h string) error {
	for _, c := range []byte(h) {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("%w: hash holds %q, which cannot sit in /etc/shadow", ErrInvalidPassword, c)
		}
	}
	return nil
}

// HashPassword hashes plain with the scheme c (not CryptoGuest) and a salt
// from crypto/rand.
func HashPassword(plain string, c Crypto) (string, error) {
	s, err := crypt.ParseScheme(string(c))
	if err != nil {
		return "", fmt.Errorf("%w: unknown crypto %q (want yescrypt, sha512, sha256 or md5)", ErrInvalidPassword, c)
	}
	h, err := crypt.Hash(plain, s, 0)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPassword, err)
	}
	return h, nil
}

// hashWithSalt is crypt(3) of plain with the scheme prefix and salt.
func hashWithSalt(plain, prefix, salt string) (string, error) {
	h, err := crypt.HashSetting(plain, prefix+salt)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPassword, err)
	}
	return h, nil
}

// saltAlphabet is crypt(3)'s base-64 alphabet.
const saltAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n characters of alphabet drawn uniformly with
// crypto/rand.
func randomString(n int, alphabet string) (string, error) {
	return crypt.RandomString(n, alphabet)
}

// RandomPassword returns a password of n characters from crypto/rand.
func RandomPassword(n int) (string, error) {
	return randomString(n, "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
}

// SetShadowHash returns shadow with field 2 of user's line set to hash and
// every other byte unchanged. The user must have exactly one line, and
// that line a password field.
func SetShadowHash(shadow []byte, user, hash string) ([]byte, error) {
	lines := strings.Split(string(shadow), "\n")
	found := -1
	for i, line := range lines {
		name, _, _ := strings.Cut(line, ":")
		if name != user {
			continue
		}
		if found >= 0 {
			return nil, fmt.Errorf("%w: %q has two lines (%d and %d)", ErrBadShadow, user, found+1, i+1)
		}
		found = i
	}
	if found < 0 {
		return nil, fmt.Errorf("%w: %q in %s", ErrNoSuchUser, user, ShadowPath)
	}
	body, cr := strings.CutSuffix(lines[found], "\r") // keep a CRLF ending
	_, rest, ok := strings.Cut(body, ":")
	if !ok {
		return nil, fmt.Errorf("%w: line %d of %q has no password field", ErrBadShadow, found+1, user)
	}
	_, after, more := strings.Cut(rest, ":")
	line := user + ":" + hash
	if more {
		line += ":" + after
	}
	if cr {
		line += "\r"
	}
	lines[found] = line
	return []byte(strings.Join(lines, "\n")), nil
}
