// Package seed builds the small disk a cloud guest reads at first boot —
// cloud-init's NoCloud seed, an OpenStack config drive, an OpenNebula
// CONTEXT disk — from the same data the injectors write into a guest: keys
// per user, a hostname, the network model of package inject, metadata, a
// password, files and the user's own user-data. Build lays out the files;
// Write puts them in an ISO9660 image (Rock Ridge and Joliet) with the
// format's volume label, the same data giving the same bytes.
package seed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/inject"
)

// ErrInvalid is the class of every refused input.
var ErrInvalid = errs.New(errs.ErrInvalid, "invalid seed input")

// Format is a seed layout.
type Format string

// The seed formats.
const (
	NoCloud     Format = "nocloud"     // cloud-init NoCloud, label cidata
	ConfigDrive Format = "configdrive" // OpenStack config drive, label config-2
	OpenNebula  Format = "opennebula"  // OpenNebula CONTEXT disk
)

// ParseFormat parses a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case NoCloud, ConfigDrive, OpenNebula:
		return f, nil
	}
	return "", fmt.Errorf("%w: unknown seed format %q (want nocloud, configdrive or opennebula)", ErrInvalid, s)
}

// Label is the volume label the guest looks for.
func (f Format) Label() string {
	switch f {
	case NoCloud:
		return "cidata"
	case ConfigDrive:
		return "config-2"
	}
	return "CONTEXT"
}

// UserKeys are SSH public keys for one user.
type UserKeys struct {
	User string // "" or root: root
	Keys []string
}

// Password sets a user's password; Plain is hashed (sha512-crypt) with a
// salt derived from the seed's data, so the seed stays reproducible.
type Password struct {
	User  string // "" means root
	Plain string
	Hash  string // a prepared crypt(3) hash, used as is
}

// Data is what a seed tells the guest. Zero fields are left out.
type Data struct {
	// InstanceID is the instance's identity (NoCloud instance-id,
	// config drive uuid); "" derives a UUID from the rest of the data.
	InstanceID string
	Hostname   string
	Keys       []UserKeys
	Network    []inject.Interface
	Meta       map[string]string
	Password   *Password
	// UserData is the user's own user-data, passed through (alone) or
	// merged as MIME multipart with the generated #cloud-config.
	UserData []byte
	Files    []inject.File
}

// File is one file of the seed, Path relative and slash-separated.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode // 0 means 0644
}

func (f File) mode() fs.FileMode {
	if f.Mode == 0 {
		return 0o644
	}
	return f.Mode.Perm()
}

// Limits that keep a seed small.
const (
	maxFiles     = 256
	maxFileBytes = 64 << 20 // all files and user-data together
	maxMeta      = 256
)

var (
	userRE = lazyRE(`^[a-z_][a-z0-9_-]{0,31}$`)
	hostRE = lazyRE(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	iidRE  = lazyRE(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Build validates d and returns the seed's files for format f, sorted by
// path.
func Build(f Format, d *Data) ([]File, error) {
	if _, err := ParseFormat(string(f)); err != nil {
		return nil, err
	}
	if err := validate(d); err != nil {
		return nil, err
	}
	c := *d
	if c.InstanceID == "" {
		c.InstanceID = deriveID(d)
	}
	var files []File
	var err error
	switch f {
	case NoCloud:
		files, err = buildNoCloud(&c)
	case ConfigDrive:
		files, err = buildConfigDrive(&c)
	default:
		files, err = buildOpenNebula(&c)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func validate(d *Data) error {
	if d.InstanceID != "" && !iidRE().MatchString(d.InstanceID) {
		return fmt.Errorf("%w: instance id %q: want 1-128 letters, digits, '.', '_', '-'", ErrInvalid, d.InstanceID)
	}
	if d.Hostname != "" && (len(d.Hostname) > 253 || !hostRE().MatchString(d.Hostname)) {
		return fmt.Errorf("%w: hostname %q: want dot-separated labels of letters, digits and '-'", ErrInvalid, d.Hostname)
	}
	seen := map[string]bool{}
	for _, uk := range d.Keys {
		u := userOf(uk.User)
		if !userRE().MatchString(u) {
			return fmt.Errorf("%w: user %q: want a login name ([a-z_][a-z0-9_-]*, at most 32)", ErrInvalid, uk.User)
		}
		if seen[u] {
			return fmt.Errorf("%w: keys for user %q given in two groups", ErrInvalid, u)
		}
		seen[u] = true
		if len(uk.Keys) == 0 {
			return fmt.Errorf("%w: user %q: no key", ErrInvalid, u)
		}
		if err := inject.ValidateKeys(uk.Keys); err != nil {
			return fmt.Errorf("%w: user %q: %w", ErrInvalid, u, err)
		}
	}
	if len(d.Network) > 0 {
		if err := inject.ValidateInterfaces(d.Network); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if len(d.Meta) > maxMeta {
		return fmt.Errorf("%w: %d metadata pairs (at most %d)", ErrInvalid, len(d.Meta), maxMeta)
	}
	for k, v := range d.Meta {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k+v, 0) {
			return fmt.Errorf("%w: metadata %q: key and value must be valid UTF-8 without NUL, the key not empty", ErrInvalid, k)
		}
	}
	if p := d.Password; p != nil {
		if !userRE().MatchString(userOf(p.User)) {
			return fmt.Errorf("%w: password user %q", ErrInvalid, p.User)
		}
		if (p.Plain == "") == (p.Hash == "") {
			return fmt.Errorf("%w: password: want a plain password or a hash", ErrInvalid)
		}
		if strings.ContainsAny(p.Plain, "\x00\n\r") || strings.ContainsAny(p.Hash, "\x00\n\r: ") {
			return fmt.Errorf("%w: password: NUL or line break, or ':' in the hash", ErrInvalid)
		}
	}
	if len(d.Files) > maxFiles {
		return fmt.Errorf("%w: %d files (at most %d)", ErrInvalid, len(d.Files), maxFiles)
	}
	total := len(d.UserData)
	paths := map[string]bool{}
	for _, f := range d.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" || !utf8.ValidString(f.Path) || strings.ContainsAny(f.Path, "\x00\n\r") {
			return fmt.Errorf("%w: file %q: want an absolute, clean guest path", ErrInvalid, f.Path)
		}
		if paths[f.Path] {
			return fmt.Errorf("%w: file %q given twice", ErrInvalid, f.Path)
		}
		paths[f.Path] = true
		total += len(f.Data)
	}
	if total > maxFileBytes {
		return fmt.Errorf("%w: files and user-data hold %d bytes (at most %d)", ErrInvalid, total, maxFileBytes)
	}
	return nil
}

func userOf(u string) string {
	if u == "" {
		return "root"
	}
	return u
}

// deriveID is a UUID (version 5 bits on a SHA-256 digest) of everything in
// d: the same data names the same instance.
func deriveID(d *Data) string {
	h := sha256.New()
	w := func(parts ...string) {
		for _, p := range parts {
			fmt.Fprintf(h, "%d:%s;", len(p), p)
		}
	}
	w("guestinject-seed-v1", d.Hostname)
	for _, uk := range d.Keys {
		w("keys", userOf(uk.User))
		w(uk.Keys...)
	}
	w("net", string(inject.RenderNetplan(d.Network)))
	keys := make([]string, 0, len(d.Meta))
	for k := range d.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w("meta", k, d.Meta[k])
	}
	if p := d.Password; p != nil {
		w("password", userOf(p.User), p.Plain, p.Hash)
	}
	w("user-data", string(d.UserData))
	for _, f := range d.Files {
		w("file", f.Path, string(f.Data))
	}
	s := h.Sum(nil)[:16]
	s[6] = s[6]&0x0f | 0x50
	s[8] = s[8]&0x3f | 0x80
	x := hex.EncodeToString(s)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// lazyRE compiles a pattern on first use, not at program start: the CLI
// starts without paying for the seed verb's checks.
func lazyRE(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}
