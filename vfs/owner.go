package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits on the guest's account databases. A larger /etc/passwd or
// /etc/group is refused; a longer line is skipped like a malformed one.
const (
	MaxAccountFileSize = 16 << 20 // bytes in /etc/passwd or /etc/group
	MaxAccountLineLen  = 64 << 10 // bytes in one line
)

// Guest account database paths.
const (
	PasswdPath = "/etc/passwd"
	GroupPath  = "/etc/group"
)

// maxID is the largest id a guest may use: (uid_t)-1 means "unchanged" to
// chown(2), so it is not an id.
const maxID = 1<<32 - 2

// User is one line of the guest's /etc/passwd.
type User struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
}

// Group is one line of the guest's /etc/group.
type Group struct {
	Name string
	GID  int
}

// LookupUser finds name in the guest's /etc/passwd (read through fsys,
// never the host's). The first matching line wins, as with getpwnam(3).
// A missing name, or a guest without /etc/passwd, is ErrUnknownUser.
func LookupUser(fsys FS, name string) (User, error) {
	var u User
	found := false
	err := scanAccounts(fsys, PasswdPath, 7, func(f []string) bool {
		if f[0] != name {
			return false
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			return false // malformed: skip, a later line may match
		}
		u, found = User{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]}, true
		return true
	})
	if err != nil {
		return User{}, fmt.Errorf("%w %q: %w", ErrUnknownUser, name, err)
	}
	if !found {
		return User{}, fmt.Errorf("%w: %q", ErrUnknownUser, name)
	}
	return u, nil
}

// LookupGroup finds name in the guest's /etc/group (read through fsys).
// A missing name, or a guest without /etc/group, is ErrUnknownGroup.
func LookupGroup(fsys FS, name string) (Group, error) {
	var g Group
	found := false
	err := scanAccounts(fsys, GroupPath, 4, func(f []string) bool {
		if f[0] != name {
			return false
		}
		gid, err := parseID(f[2])
		if err != nil {
			return false
		}
		g, found = Group{Name: f[0], GID: gid}, true
		return true
	})
	if err != nil {
		return Group{}, fmt.Errorf("%w %q: %w", ErrUnknownGroup, name, err)
	}
	if !found {
		return Group{}, fmt.Errorf("%w: %q", ErrUnknownGroup, name)
	}
	return g, nil
}

// ResolveOwner turns SetOwnership's user and group arguments into ids, as
// chown(1) does but against the guest's databases: a name is looked up
// first; a decimal id that is no name is taken as it is, even if no line
// has it. An empty argument is -1 (leave unchanged).
func ResolveOwner(fsys FS, user, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if user != "" {
		u, err := LookupUser(fsys, user)
		switch {
		case err == nil:
			uid = u.UID
		case isDecimal(user):
			if uid, err = parseID(user); err != nil {
				return -1, -1, fmt.Errorf("%w: %q: %w", ErrUnknownUser, user, err)
			}
		default:
			return -1, -1, err
		}
	}
	if group != "" {
		g, err := LookupGroup(fsys, group)
		switch {
		case err == nil:
			gid = g.GID
		case isDecimal(group):
			if gid, err = parseID(group); err != nil {
				return -1, -1, fmt.Errorf("%w: %q: %w", ErrUnknownGroup, group, err)
			}
		default:
			return -1, -1, err
		}
	}
	return uid, gid, nil
}

// errTooLarge is wrapped when an account database exceeds its limit.
var errTooLarge = errors.New("account database too large")

// scanAccounts reads the colon-separated database at p through fsys and
// calls match with each well-formed line split into exactly nfields
// fields, until match returns true. Blank lines, comments, NIS "+"/"-"
// lines, over-long lines and lines with the wrong field count are skipped.
func scanAccounts(fsys FS, p string, nfields int, match func([]string) bool) error {
	if r, ok := fsys.(Reader); ok {
		if fi, err := r.Stat(p); err == nil && fi.Size > MaxAccountFileSize {
			return PathErr("read", p, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, fi.Size, MaxAccountFileSize))
		}
	}
	data, err := fsys.ReadFile(p)
	if err != nil {
		return err
	}
	if len(data) > MaxAccountFileSize {
		return PathErr("read", p, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, len(data), MaxAccountFileSize))
	}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(line) > MaxAccountLineLen {
			continue
		}
		s := strings.TrimSuffix(string(line), "\r")
		if s == "" || s[0] == '#' || s[0] == '+' || s[0] == '-' {
			continue
		}
		f := strings.Split(s, ":")
		if len(f) != nfields || f[0] == "" {
			continue
		}
		if match(f) {
			return nil
		}
	}
	return nil
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// errBadID is wrapped when an id is not a decimal number in range.
var errBadID = errors.New("id is not a decimal number below 4294967295")

func parseID(s string) (int, error) {
	if !isDecimal(s) {
		return 0, errBadID
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxID {
		return 0, errBadID
	}
	return int(n), nil
}
