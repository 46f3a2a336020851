package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/guestinject/guestinject/inject"
)

// keyFlags are --key and --key-user in command-line order: a --key-user
// applies to the --key flags after it, up to the next --key-user; keys
// before any --key-user are root's. So one run gives keys to several
// users:
//
//	--key admin.pub --key-user debian --key d1.pub --key d2.pub --key-user ops --key o.pub
//
// The older single form, one --key-user after the keys (--key k.pub
// --key-user debian), still gives them all to that user; any other
// --key-user that no --key follows is a usage error.
type keyFlags struct {
	user     string     // the latest --key-user ("" before any: root)
	groups   []keyGroup // one per user, in the order first named
	dangling string     // a --key-user no --key has followed yet
	users    int        // --key-user flags seen
}

// keyGroup is one user's key files and literal keys (--ssh-inject
// USER:string:KEY).
type keyGroup struct {
	user  string
	files []string
	lits  []string
	named bool // --ssh-inject named the user: the single form's --key-user cannot rename it
}

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.Var(keyFileFlag{k}, "key", "")
	fs.Var(keyUserFlag{k}, "key-user", "")
	fs.Var(sshInjectFlag{k}, "ssh-inject", "")
}

// count is the number of keys given (--key files, --ssh-inject keys).
func (k *keyFlags) count() int {
	n := 0
	for _, g := range k.groups {
		n += len(g.files) + len(g.lits)
	}
	return n
}

// group returns user's group, made (last) when the user is new: --key and
// --ssh-inject for one user fill one group, so one item.
func (k *keyFlags) group(user string) *keyGroup {
	if user == "" {
		user = "root"
	}
	for i := range k.groups {
		if k.groups[i].user == user {
			return &k.groups[i]
		}
	}
	k.groups = append(k.groups, keyGroup{user: user})
	return &k.groups[len(k.groups)-1]
}

type keyFileFlag struct{ k *keyFlags }

func (f keyFileFlag) String() string { return "" }
func (f keyFileFlag) Set(s string) error {
	k := f.k
	k.dangling = ""
	g := k.group(k.user)
	g.files = append(g.files, s)
	return nil
}

// sshInjectFlag is virt-customize's --ssh-inject USER[:SELECTOR]:
// file:PATH, string:KEY, or no selector for the invoking user's
// ~/.ssh/*.pub. It names its user itself, so it does not change which
// user later --key flags go to.
type sshInjectFlag struct{ k *keyFlags }

func (f sshInjectFlag) String() string { return "" }
func (f sshInjectFlag) Set(s string) error {
	user, sel, hasSel := strings.Cut(s, ":")
	if user == "" {
		return fmt.Errorf("want USER[:file:PATH|:string:KEY]")
	}
	f.k.group(user).named = true
	kind, val, _ := strings.Cut(sel, ":")
	switch {
	case !hasSel:
		files, err := ownPublicKeys()
		if err != nil {
			return err
		}
		g := f.k.group(user)
		g.files = append(g.files, files...)
	case kind == "file" && val != "":
		g := f.k.group(user)
		g.files = append(g.files, val)
	case kind == "string" && val != "":
		if err := inject.ValidateKeys([]string{val}); err != nil {
			return err
		}
		g := f.k.group(user)
		g.lits = append(g.lits, val)
	default:
		return fmt.Errorf("%q: want USER, USER:file:PATH or USER:string:KEY", s)
	}
	return nil
}

// ownPublicKeys lists the invoking user's ~/.ssh/*.pub, as virt-customize
// does for --ssh-inject USER.
func ownPublicKeys() ([]string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, fmt.Errorf("no selector, and no home directory to find ~/.ssh/*.pub in: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(home, ".ssh", "*.pub"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no selector, and %s has no *.pub", filepath.Join(home, ".ssh"))
	}
	return files, err
}

type keyUserFlag struct{ k *keyFlags }

func (f keyUserFlag) String() string { return "" }
func (f keyUserFlag) Set(s string) error {
	if s == "" {
		return fmt.Errorf("empty user name")
	}
	if f.k.dangling != "" {
		return fmt.Errorf("--key-user %s is followed by no --key (a --key-user applies to the --key flags after it)", f.k.dangling)
	}
	f.k.user, f.k.dangling = s, s
	f.k.users++
	return nil
}

// check reports a --key-user left without keys at the end of the line,
// unless it is the single form: the only --key-user, after every key.
func (k *keyFlags) check() error {
	if k.dangling != "" && k.users == 1 && len(k.groups) == 1 && !k.groups[0].named {
		k.groups[0].user, k.dangling = k.dangling, ""
	}
	if k.dangling != "" {
		return usagef("--key-user %s is followed by no --key (a --key-user applies to the --key flags after it; keys before any --key-user are root's)", k.dangling)
	}
	return nil
}

// fill reads every key file into d: the first user's keys as Keys and
// KeyUser, the others' as UserKeys.
func (k *keyFlags) fill(d *inject.Data) error {
	for i, g := range k.groups {
		keys, err := readKeys(g.files)
		if err != nil {
			return err
		}
		keys = append(keys, g.lits...)
		if i == 0 {
			d.Keys, d.KeyUser = keys, g.user
			continue
		}
		d.UserKeys = append(d.UserKeys, inject.UserKeys{User: g.user, Keys: keys})
	}
	return nil
}

// readKeys reads every key file: each non-blank line that is not a
// comment is one key (the injector validates it). A private key is
// refused with a pointer to its .pub.
func readKeys(files []string) ([]string, error) {
	var keys []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		if isPrivateKey(b) {
			return nil, fmt.Errorf("--key %s: %w: this is a private key; give the public one (%s.pub), and keep the private key off the image", f, inject.ErrInvalidKey, strings.TrimSuffix(f, ".pub"))
		}
		n := len(keys)
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
				keys = append(keys, line)
			}
		}
		if len(keys) == n {
			return nil, fmt.Errorf("--key %s: %w: no key in the file", f, inject.ErrInvalidKey)
		}
		if err := inject.ValidateKeys(keys[n:]); err != nil {
			return nil, fmt.Errorf("--key %s: %w", f, err)
		}
	}
	return keys, nil
}

// isPrivateKey reports whether b looks like a PEM or OpenSSH private key.
func isPrivateKey(b []byte) bool {
	b = bytes.TrimSpace(b)
	return bytes.HasPrefix(b, []byte("-----BEGIN ")) && bytes.Contains(b[:min(len(b), 64)], []byte("PRIVATE KEY-----"))
}

// fileSpecOrder catches a --file given as LOCALFILE=GUESTPATH before
// anything is opened: the guest side must be absolute, and a guest side
// that is a host file while the local side is missing was swapped.
func fileSpecOrder(spec, guest, local string) error {
	swapped := fmt.Sprintf("--file %s=%s", local, guest)
	if !strings.HasPrefix(guest, "/") {
		if strings.HasPrefix(local, "/") {
			return usagef("--file %q: the guest path %q is not absolute; the form is GUESTPATH=LOCALFILE (did you mean %s?)", spec, guest, swapped)
		}
		return usagef("--file %q: the guest path %q is not absolute; the form is GUESTPATH=LOCALFILE", spec, guest)
	}
	if _, err := os.Stat(local); errors.Is(err, fs.ErrNotExist) {
		if fi, err := os.Stat(guest); err == nil && fi.Mode().IsRegular() {
			return usagef("--file %q: %s does not exist on this host but %s does; the form is GUESTPATH=LOCALFILE (did you mean %s?)", spec, local, guest, swapped)
		}
	}
	return nil
}
