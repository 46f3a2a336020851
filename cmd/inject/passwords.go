package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/crypt"
)

// parseSelector reads a virt-customize password SELECTOR for user, the
// value of flag (--root-password, --password): password:TEXT, file:PATH
// (its first line), random, disabled, and locked, locked:disabled,
// locked:password:TEXT, locked:file:PATH, locked:random; and ours,
// hash:HASH and hash-file:PATH (a prepared crypt(3) hash, written as it
// is), also after locked:. random is the generated password, if any.
func parseSelector(flag, user, sel, crypto string) (p *inject.Password, random string, err error) {
	p = &inject.Password{User: user, Crypto: inject.Crypto(crypto)}
	rest := sel
	if r, ok := strings.CutPrefix(sel, "locked"); ok && (r == "" || r[0] == ':') {
		p.Locked, rest = true, strings.TrimPrefix(r, ":")
		if rest == "" {
			rest = "disabled"
		}
	}
	kind, val, hasVal := strings.Cut(rest, ":")
	switch kind {
	case "password":
		p.Plain = val
	case "file":
		line, err := firstLine(val)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", flag, err)
		}
		p.Plain = line
	case "hash", "hash-file":
		h := val
		if kind == "hash-file" {
			line, err := firstLine(val)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", flag, err)
			}
			h = line
		}
		if !looksHashed(h) {
			return nil, "", usagef("%s %s: %q is not a crypt(3) hash ($id$..., or 13 characters of DES)", flag, kind, h)
		}
		p.Hash = h
		return p, "", nil
	case "random", "disabled":
		if hasVal {
			return nil, "", usagef("%s %s takes no value", flag, kind)
		}
		if kind == "disabled" {
			p.Disabled = true
			return p, "", nil
		}
		r, err := inject.RandomPassword(20)
		if err != nil {
			return nil, "", err
		}
		p.Plain = r
		return p, r, nil
	default:
		return nil, "", usagef("%s %q: want password:TEXT, file:PATH, random, disabled, hash:HASH, hash-file:PATH, or locked[:...] of those", flag, sel)
	}
	if p.Plain == "" {
		return nil, "", usagef("%s: empty password", flag)
	}
	return p, "", nil
}

// looksHashed reports whether h has the shape of a crypt(3) hash: "$id$"
// and more, or DES's 13 characters of ./0-9A-Za-z. It keeps a password
// given to hash: by mistake out of /etc/shadow.
func looksHashed(h string) bool {
	if strings.HasPrefix(h, "$") {
		return len(h) > 3 && strings.Count(h, "$") >= 3
	}
	if len(h) != 13 {
		return false
	}
	for _, c := range []byte(h) {
		if !(c == '.' || c == '/' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// checkCrypto validates --password-crypto.
func checkCrypto(c string) error {
	if c == "" {
		return nil
	}
	if _, err := crypt.ParseScheme(c); err != nil {
		return usagef("--password-crypto %q: want yescrypt, sha512, sha256 or md5", c)
	}
	return nil
}

// userPasswords turns each --password USER:SELECTOR into a request; the
// random passwords generated are returned by user.
func (a *injectArgs) userPasswords() ([]inject.Password, map[string]string, error) {
	var ps []inject.Password
	randoms := map[string]string{}
	for _, spec := range a.passwords {
		user, sel, ok := strings.Cut(spec, ":")
		if !ok || user == "" || sel == "" {
			return nil, nil, usagef("--password %q: want USER:SELECTOR", spec)
		}
		p, r, err := parseSelector("--password "+user, user, sel, a.crypto)
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, *p)
		if r != "" {
			randoms[user] = r
		}
	}
	return ps, randoms, nil
}

// randomsSet are the generated passwords the report says were set (none
// in a dry run).
func randomsSet(rep *inject.Report, randoms map[string]string) map[string]string {
	if len(randoms) == 0 || passwordSet(rep, "set") == "" {
		return nil
	}
	return randoms
}

// announceRandoms prints each generated password once, when it was set;
// a dry run only says which users the real run gives one.
func announceRandoms(stderr io.Writer, rep *inject.Report, randoms map[string]string, quiet bool) {
	users := make([]string, 0, len(randoms))
	for u := range randoms {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, it := range rep.Items {
		if it.Kind != inject.KindPassword {
			continue
		}
		for _, u := range users {
			switch {
			case it.Status == inject.StatusDone:
				fmt.Fprintf(stderr, "inject: password of %s set to: %s\n", u, randoms[u])
			case it.Status == inject.StatusPlanned && !quiet:
				fmt.Fprintf(stderr, "inject: dry run: the real run generates a random password for %s and prints it once\n", u)
			}
		}
	}
}
