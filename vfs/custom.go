package vfs

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/guestinject/guestinject/errs"
)

// Limits the customisation operations share across backends.
const (
	// MaxXattrNameLen is the longest full attribute name ("user.x"), as
	// Linux's XATTR_NAME_MAX.
	MaxXattrNameLen = 255
	// MaxXattrValueLen is the largest attribute value, as XATTR_SIZE_MAX.
	MaxXattrValueLen = 65536
	// MaxLinks is the most names a non-directory may have, ext4's
	// EXT4_LINK_MAX; backends without an on-disk limit use it too.
	MaxLinks = 65000
)

// ErrLinkLimit: a hard link would give an object more names than its
// filesystem can count (EMLINK).
var ErrLinkLimit = errs.New(errs.ErrUnsupported, "too many links")

// xattrPrefixes are the attribute namespaces Linux knows.
var xattrPrefixes = []string{"user.", "trusted.", "security.", "system."}

// CheckXattr validates an attribute name and value before any backend acts
// on them: a known namespace prefix with a non-empty name after it, no NUL
// byte, at most MaxXattrNameLen bytes of name and MaxXattrValueLen of value.
// A bad one is fs.ErrInvalid.
func CheckXattr(name string, value []byte) error {
	ok := false
	for _, pre := range xattrPrefixes {
		if strings.HasPrefix(name, pre) && len(name) > len(pre) {
			ok = true
		}
	}
	switch {
	case !ok:
		return fmt.Errorf("attribute name %.80q has no user., trusted., security. or system. namespace: %w", name, fs.ErrInvalid)
	case len(name) > MaxXattrNameLen:
		return fmt.Errorf("attribute name longer than %d bytes: %w", MaxXattrNameLen, fs.ErrInvalid)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("attribute name %q holds a NUL byte: %w", name, fs.ErrInvalid)
	case len(value) > MaxXattrValueLen:
		return fmt.Errorf("attribute %s value of %d bytes is over %d: %w", name, len(value), MaxXattrValueLen, fs.ErrInvalid)
	}
	return nil
}

// SplitFinal checks the final component of a path whose final symlink is
// not to be followed (Rename, Link, SetXattr...) and returns the path with
// any trailing slash removed, and whether there was one (the object must
// then be a directory). A final "." or ".." names no entry of its own and
// is fs.ErrInvalid, as rename(2) and link(2) refuse it.
func SplitFinal(p string) (string, bool, error) {
	if err := CheckPath(p); err != nil {
		return "", false, err
	}
	q := strings.TrimRight(p, "/")
	if q == "" {
		return "/", false, nil
	}
	base := q[strings.LastIndexByte(q, '/')+1:]
	if base == "." || base == ".." {
		return "", false, fmt.Errorf("final component %q names no entry: %w", base, fs.ErrInvalid)
	}
	return q, q != p, nil
}

// ResolveEntry resolves p for an operation that names an entry and does
// not follow a final symlink (Rename, Remove, Link, the attribute and time
// changes): SplitFinal's checks, then Resolve without following the last
// component; a trailing slash requires a directory. Errors name op and p.
func ResolveEntry[N any](t Tree[N], op, p string) (Resolved[N], error) {
	q, slash, err := SplitFinal(p)
	if err != nil {
		return Resolved[N]{}, PathErr(op, p, err)
	}
	r, err := Resolve(t, q, false)
	if err != nil {
		return r, Relabel(op, p, err)
	}
	if slash && r.Exists {
		typ, err := t.Type(r.Node)
		if err != nil {
			return r, PathErr(op, p, err)
		}
		if !typ.IsDir() {
			return r, PathErr(op, p, ErrNotDir)
		}
	}
	return r, nil
}
