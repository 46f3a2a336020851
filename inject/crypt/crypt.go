// Package crypt makes crypt(3) password hashes for a guest's /etc/shadow:
// yescrypt ("$y$", what Debian 11+, Ubuntu 20.04+, Fedora and RHEL 9 write),
// sha512-crypt ("$6$"), sha256-crypt ("$5$") and md5-crypt ("$1$"), each
// byte for byte what the system's libxcrypt makes for the same setting, and
// picks a guest's default scheme from its /etc/login.defs.
package crypt

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	gcrypt "github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/md5_crypt" // registers $1$
	"github.com/openwall/yescrypt-go"

	"github.com/guestinject/guestinject/errs"
)

// ErrScheme is an unknown scheme, a cost out of range or a malformed
// setting.
var ErrScheme = errs.New(errs.ErrUnsupported, "unsupported password hash setting")

// Scheme is a crypt(3) hashing method, named as virt-customize's
// --password-crypto and login.defs' ENCRYPT_METHOD (lower case) name them.
type Scheme string

const (
	Yescrypt Scheme = "yescrypt" // "$y$"
	SHA512   Scheme = "sha512"   // "$6$"
	SHA256   Scheme = "sha256"   // "$5$"
	MD5      Scheme = "md5"      // "$1$", for very old guests only
)

// Schemes lists the supported schemes, strongest first.
var Schemes = []Scheme{Yescrypt, SHA512, SHA256, MD5}

// ParseScheme accepts a scheme name in any case.
func ParseScheme(s string) (Scheme, error) {
	for _, c := range Schemes {
		if strings.EqualFold(s, string(c)) {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: scheme %q (want yescrypt, sha512, sha256 or md5)", ErrScheme, s)
}

// DefaultYescryptCost is libxcrypt's default yescrypt cost factor (login.defs'
// YESCRYPT_COST_FACTOR): N=4096, r=32, the "$y$j9T$" setting.
const DefaultYescryptCost = 5

// MaxGuestCost bounds the yescrypt cost factor a guest's login.defs may
// choose: each step doubles memory and time (cost 8: 128 MiB; libxcrypt's
// maximum, 11, is 1 GiB and about 16 s here), and the guest must not make
// the host spend that.
const MaxGuestCost = 8

// yescryptMiB is the memory one hash at cost c takes (128 * r * N bytes).
func yescryptMiB(c int) int {
	nlog2, r := c+7, 32
	if c <= 2 {
		nlog2, r = c+9, 8
	}
	return 128 * r << nlog2 >> 20
}

// Hash hashes plain with scheme s and a fresh salt from crypto/rand. cost
// is the yescrypt cost factor 1..11 (0: the default, 5), or the rounds of
// sha512/sha256 (1000..999999999; 0: the default, 5000); md5 ignores it.
func Hash(plain string, s Scheme, cost int) (string, error) {
	setting, err := Setting(s, cost)
	if err != nil {
		return "", err
	}
	return HashSetting(plain, setting)
}

// Setting returns a new random setting (prefix, parameters, salt) for
// scheme s, as libxcrypt's crypt_gensalt makes one: a 16-byte salt for
// yescrypt, 16 salt characters for sha512/sha256, 8 for md5.
func Setting(s Scheme, cost int) (string, error) {
	switch s {
	case Yescrypt:
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("random salt: %w", err)
		}
		return YescryptSetting(cost, salt)
	case SHA512, SHA256, MD5:
		n, prefix := 16, map[Scheme]string{SHA512: "$6$", SHA256: "$5$", MD5: "$1$"}[s]
		if s == MD5 {
			n = 8
		} else if cost != 0 {
			if cost < MinSHARounds || cost > MaxSHARounds {
				return "", fmt.Errorf("%w: %d %s rounds (want %d..%d)", ErrScheme, cost, s, MinSHARounds, MaxSHARounds)
			}
			if cost != DefaultSHARounds { // as shadow writes it: the default is implied
				prefix += "rounds=" + strconv.Itoa(cost) + "$"
			}
		}
		salt, err := RandomString(n, itoa64)
		if err != nil {
			return "", err
		}
		return prefix + salt, nil
	}
	return "", fmt.Errorf("%w: scheme %q", ErrScheme, s)
}

// HashLen is the length of HashSetting's result for a setting as Setting
// makes it (prefix, parameters, salt; not a whole hash): the setting, a
// '$' and the digest, whose length each scheme fixes. It lets a caller
// plan a shadow file's size before the hash is done.
func HashLen(setting string) (int, error) {
	digest := 0
	switch {
	case strings.HasPrefix(setting, "$y$"), strings.HasPrefix(setting, "$5$"):
		digest = 43 // 32 bytes
	case strings.HasPrefix(setting, "$6$"):
		digest = 86 // 64 bytes
	case strings.HasPrefix(setting, "$1$"):
		digest = 22 // 16 bytes
	default:
		return 0, fmt.Errorf("%w: %q (want $y$, $6$, $5$ or $1$)", ErrScheme, setting)
	}
	return len(setting) + 1 + digest, nil
}

// YescryptSetting is the "$y$" setting libxcrypt makes for a cost factor
// (1..11, 0: the default) and salt: cost 1 and 2 use r=8 and N=2^(cost+9),
// higher costs r=32 and N=2^(cost+7); flags "j" (yescrypt's defaults, p=1).
func YescryptSetting(cost int, salt []byte) (string, error) {
	if cost == 0 {
		cost = DefaultYescryptCost
	}
	if cost < 1 || cost > 11 {
		return "", fmt.Errorf("%w: yescrypt cost factor %d (want 1..11)", ErrScheme, cost)
	}
	if len(salt) == 0 || len(salt) > 64 {
		return "", fmt.Errorf("%w: yescrypt salt of %d bytes", ErrScheme, len(salt))
	}
	nlog2, r := cost+7, 32
	if cost <= 2 {
		nlog2, r = cost+9, 8
	}
	return "$y$j" + string(itoa64[nlog2-1]) + string(itoa64[r-1]) + "$" + encode64(salt), nil
}

// HashSetting is crypt(plain, setting): setting is a prefix, parameters and
// salt ("$6$salt", "$6$rounds=N$salt", "$y$j9T$salt") or a whole hash, whose
// salt and parameters are reused.
func HashSetting(plain, setting string) (string, error) {
	if strings.IndexByte(plain, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL byte in the password", ErrScheme)
	}
	switch {
	case strings.HasPrefix(setting, "$y$"):
		h, err := yescrypt.Hash([]byte(plain), []byte(setting))
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", ErrScheme, setting, err)
		}
		return string(h), nil
	case strings.HasPrefix(setting, "$6$"), strings.HasPrefix(setting, "$5$"):
		v := sha512Crypt
		if setting[1] == '5' {
			v = sha256Crypt
		}
		h, err := v.shaCrypt(plain, setting)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", ErrScheme, setting, err)
		}
		return h, nil
	case strings.HasPrefix(setting, "$1$"):
		if strings.Count(setting, "$") >= 3 { // "$1$salt$hash": a whole hash, whose hash part is dropped
			setting = setting[:strings.LastIndexByte(setting, '$')]
		}
		h, err := gcrypt.NewFromHash("$1$").Generate([]byte(plain), []byte(setting))
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", ErrScheme, setting, err)
		}
		return h, nil
	}
	return "", fmt.Errorf("%w: %q (want $y$, $6$, $5$ or $1$)", ErrScheme, setting)
}

// The rounds of sha512-crypt and sha256-crypt: glibc's and libxcrypt's
// default and limits, and the most a guest's login.defs may ask for here.
// A guest's SHA_CRYPT_MAX_ROUNDS can reach a billion rounds (minutes of
// CPU per hash): like the yescrypt cost it is capped, with a note, at
// MaxGuestSHARounds (about half a second).
const (
	DefaultSHARounds  = 5000
	MinSHARounds      = 1000
	MaxSHARounds      = 999999999
	MaxGuestSHARounds = 1000000
)

// Default reads a guest's /etc/login.defs content: the scheme its
// ENCRYPT_METHOD names (yescrypt, sha512, sha256, md5) and its cost —
// YESCRYPT_COST_FACTOR for yescrypt, SHA_CRYPT_MIN_ROUNDS and
// SHA_CRYPT_MAX_ROUNDS for sha512 and sha256, chosen as shadow's passwd
// and chpasswd choose (one bound alone fixes the rounds, both give a
// random count between them, a minimum above the maximum wins, the result
// clamped to 1000..999999999; neither: 0, the default 5000). Without the
// file or the key the scheme is sha512 (glibc's crypt has had it since
// 2.7); a method this package cannot make (DES, BCRYPT) or a cost out of
// range also falls back, and note says why.
func Default(loginDefs []byte) (s Scheme, cost int, note string) {
	s, cost = SHA512, 0
	method := ""
	minRounds, maxRounds := -1, -1
	sc := bufio.NewScanner(bytes.NewReader(loginDefs))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "ENCRYPT_METHOD":
			method = f[1]
		case "YESCRYPT_COST_FACTOR":
			c, err := strconv.Atoi(f[1])
			if err != nil || c < 1 || c > 11 {
				note = fmt.Sprintf("YESCRYPT_COST_FACTOR %q ignored (want 1..11)", f[1])
				continue
			}
			if c > MaxGuestCost {
				note = fmt.Sprintf("YESCRYPT_COST_FACTOR %d asks %d MiB per hash; %d (%d MiB) used", c, yescryptMiB(c), MaxGuestCost, yescryptMiB(MaxGuestCost))
				c = MaxGuestCost
			}
			cost = c
		case "SHA_CRYPT_MIN_ROUNDS", "SHA_CRYPT_MAX_ROUNDS":
			r, err := strconv.ParseInt(f[1], 0, 64)
			if err != nil || r < 0 {
				note = fmt.Sprintf("%s %q ignored (want a number of rounds)", f[0], f[1])
				continue
			}
			r = min(r, MaxSHARounds+1)
			if f[0] == "SHA_CRYPT_MIN_ROUNDS" {
				minRounds = int(r)
			} else {
				maxRounds = int(r)
			}
		}
	}
	p := SHA512
	if method != "" {
		var err error
		if p, err = ParseScheme(method); err != nil {
			return SHA512, 0, fmt.Sprintf("ENCRYPT_METHOD %s is not made here; sha512 used", method)
		}
	}
	switch p {
	case Yescrypt:
		return p, cost, note
	case SHA512, SHA256:
		rounds, rnote := shaRounds(minRounds, maxRounds)
		if rnote != "" {
			note = rnote
		}
		return p, rounds, note
	}
	return p, 0, note
}

// shaRounds picks the rounds login.defs' bounds ask for (-1: unset).
func shaRounds(lo, hi int) (rounds int, note string) {
	if lo < 0 && hi < 0 {
		return 0, ""
	}
	if lo < 0 {
		lo = hi
	}
	if hi < 0 || lo > hi {
		hi = lo
	}
	rounds = lo
	if hi > lo {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)+1))
		if err == nil {
			rounds += int(n.Int64())
		}
	}
	rounds = max(min(rounds, MaxSHARounds), MinSHARounds)
	if rounds > MaxGuestSHARounds {
		note = fmt.Sprintf("SHA_CRYPT rounds %d would take minutes per hash; %d used", rounds, MaxGuestSHARounds)
		rounds = MaxGuestSHARounds
	}
	return rounds, note
}

// Prefix returns the crypt prefix of a scheme ("$y$", "$6$", ...).
func Prefix(s Scheme) string {
	return map[Scheme]string{Yescrypt: "$y$", SHA512: "$6$", SHA256: "$5$", MD5: "$1$"}[s]
}

// itoa64 is crypt(3)'s base-64 alphabet.
const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// encode64 is yescrypt's salt encoding: little-endian groups of up to
// three bytes, six bits per character, least significant first.
func encode64(src []byte) string {
	var out []byte
	for i := 0; i < len(src); i += 3 {
		n := min(3, len(src)-i)
		var v uint32
		for j := 0; j < n; j++ {
			v |= uint32(src[i+j]) << (8 * j)
		}
		for bits := 0; bits < 8*n; bits += 6 {
			out = append(out, itoa64[v&63])
			v >>= 6
		}
	}
	return string(out)
}

// RandomString returns n characters of alphabet (at most 256 long) drawn
// uniformly with crypto/rand.
func RandomString(n int, alphabet string) (string, error) {
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
