package inject

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/md5_crypt"    // registers $1$
	_ "github.com/GehirnInc/crypt/sha512_crypt" // registers $6$

	"github.com/guestinject/guestinject/vfs"
)

// ShadowPath is the guest's shadow password file.
const ShadowPath = "/etc/shadow"

// Crypto is a password hashing scheme of crypt(3).
type Crypto string

const (
	CryptoSHA512 Crypto = "sha512" // sha512-crypt, "$6$", the default
	CryptoMD5    Crypto = "md5"    // md5-crypt, "$1$", for old guests
)

// Password sets a user's password hash in the guest's /etc/shadow. Exactly
// one of Plain and Hash is set.
type Password struct {
	User   string // default root; must be in /etc/passwd and /etc/shadow
	Plain  string // hashed with Crypto and a fresh random salt
	Hash   string // a prepared crypt(3) hash, written as is
	Crypto Crypto // default CryptoSHA512
}

// scheme is one supported Crypto: its crypt prefix and salt length.
type scheme struct {
	prefix  string
	saltLen int
}

var schemes = map[Crypto]scheme{
	CryptoSHA512: {"$6$", 16},
	CryptoMD5:    {"$1$", 8},
}

func preparePassword(fsys vfs.FS, p *Password) *item {
	user := p.User
	if user == "" {
		user = "root"
	}
	it := newItem(KindPassword, ShadowPath)
	hash, err := passwordHash(p)
	if err != nil {
		return it.fail(err)
	}
	if _, err := lookupUser(fsys, user); err != nil {
		return it.fail(err)
	}
	shadow, err := readGuest(fsys, ShadowPath)
	if err != nil {
		return it.fail(err)
	}
	out, err := SetShadowHash(shadow, user, hash)
	if err != nil {
		return it.fail(err)
	}
	it.replace(ShadowPath, out)
	it.rep.Summary = "password hash of " + user + " replaced"
	return it
}

// passwordHash validates p and returns the hash to store.
func passwordHash(p *Password) (string, error) {
	switch {
	case p.Plain != "" && p.Hash != "":
		return "", fmt.Errorf("%w: both a password and a hash given", ErrInvalidPassword)
	case p.Hash != "":
		return p.Hash, validHash(p.Hash)
	case p.Plain == "":
		return "", fmt.Errorf("%w: empty password", ErrInvalidPassword)
	case strings.IndexByte(p.Plain, 0) >= 0:
		return "", fmt.Errorf("%w: NUL byte in password", ErrInvalidPassword)
	}
	c := p.Crypto
	if c == "" {
		c = CryptoSHA512
	}
	return HashPassword(p.Plain, c)
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

// HashPassword hashes plain with the scheme c and a salt from crypto/rand.
func HashPassword(plain string, c Crypto) (string, error) {
	s, ok := schemes[c]
	if !ok {
		return "", fmt.Errorf("%w: unknown crypto %q (want sha512 or md5)", ErrInvalidPassword, c)
	}
	if !crypt.IsHashSupported(s.prefix) {
		return "", fmt.Errorf("%w: crypt scheme %s is not available", ErrInvalidPassword, s.prefix)
	}
	salt, err := randomString(s.saltLen, saltAlphabet)
	if err != nil {
		return "", err
	}
	return hashWithSalt(plain, s.prefix, salt)
}

// hashWithSalt is crypt(3) of plain with the scheme prefix and salt.
func hashWithSalt(plain, prefix, salt string) (string, error) {
	h, err := crypt.NewFromHash(prefix).Generate([]byte(plain), []byte(prefix+salt))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPassword, err)
	}
	return h, nil
}

// saltAlphabet is crypt(3)'s base-64 alphabet.
const saltAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n characters of alphabet (at most 256 long) drawn
// uniformly with crypto/rand.
func randomString(n int, alphabet string) (string, error) {
	out := make([]byte, 0, n)
	limit := 256 - 256%len(alphabet) // reject bytes that would bias the draw
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
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
