package inject

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/guestinject/guestinject/vfs"
)

// authorizedKey is one validated key: the line to write and the key's
// wire form (type and blob), which identifies it regardless of options
// and comment.
type authorizedKey struct {
	line string
	blob string
}

// parseKeys validates every key as a single authorized_keys line.
func parseKeys(keys []string) ([]authorizedKey, error) {
	out := make([]authorizedKey, 0, len(keys))
	for i, k := range keys {
		line := strings.TrimSpace(k)
		if line == "" || strings.ContainsAny(line, "\r\n\x00") {
			return nil, fmt.Errorf("%w: key %d: must be exactly one non-empty line", ErrInvalidKey, i+1)
		}
		pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrInvalidKey, i+1, err)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: key %d: trailing data after the key", ErrInvalidKey, i+1)
		}
		out = append(out, authorizedKey{line: line, blob: string(pub.Marshal())})
	}
	return out, nil
}

// presentKeys returns the keys (type and blob) an authorized_keys file
// already holds; lines that are not keys are ignored.
func presentKeys(content []byte) map[string]bool {
	present := map[string]bool{}
	for _, line := range bytes.Split(content, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if pub, _, _, _, err := ssh.ParseAuthorizedKey(line); err == nil {
			present[string(pub.Marshal())] = true
		}
	}
	return present
}

// prepareKeys plans the keys for user (root when empty): ~/.ssh 0700 and
// ~/.ssh/authorized_keys 0600, both owned by the user, the new keys
// appended after a newline if the file lacks a trailing one. On an
// SELinux guest the item adds a restorecon line to rc.local, unless
// relabel (--selinux-relabel labels the files directly).
func prepareKeys(fsys vfs.FS, keys []string, user string, relabel bool) *item {
	user = keyOwner(user)
	// Until the guest names the home directory, the item is named by
	// the user's, as a shell would write it.
	it := newItem(KindKeys, "~"+user+"/.ssh/authorized_keys")
	parsed, err := parseKeys(keys)
	if err != nil {
		return it.fail(err)
	}
	u, err := lookupUser(fsys, user)
	if err != nil {
		return it.fail(err)
	}
	if err := vfs.CheckPath(u.Home); err != nil {
		return it.fail(fmt.Errorf("%w: home of %q: %w", ErrNoSuchUser, user, err))
	}
	if noHome(u.Home) {
		return it.fail(fmt.Errorf("%w: %q has no home directory (%s in /etc/passwd): it is not meant to log in", ErrNoSuchUser, user, u.Home))
	}
	sshDir := path.Join(path.Clean(u.Home), ".ssh")
	akPath := sshDir + "/authorized_keys"
	it.rep.Path = akPath
	if err := planKeyWrites(fsys, it, parsed, u, sshDir, akPath, relabel); err != nil {
		return it.fail(err)
	}
	return it
}

// noHome reports a home field that says "this account has none": Debian's
// /nonexistent (its policy for system users), and /dev/null. A missing
// home otherwise is made, as useradd -m would.
func noHome(home string) bool {
	switch path.Clean(home) {
	case "/nonexistent", "/dev/null":
		return true
	}
	return false
}

// keyOwner is whose keys an empty user name means: root's.
func keyOwner(user string) string {
	if user == "" {
		return "root"
	}
	return user
}

func planKeyWrites(fsys vfs.FS, it *item, keys []authorizedKey, u vfs.User, sshDir, akPath string, relabel bool) error {
	home := path.Dir(sshDir)
	homeExists, err := checkDirPath(fsys, home)
	if err != nil {
		return err
	}
	if _, err := checkDirPath(fsys, sshDir); err != nil {
		return err
	}
	if err := checkNotDir(fsys, akPath); err != nil {
		return err
	}
	for _, p := range []string{sshDir, akPath} {
		if err := refuseSymlink(fsys, p); err != nil {
			return err
		}
	}
	existing, _, err := readGuestOptional(fsys, akPath)
	if err != nil {
		return err
	}
	add, added, dup := newKeyData(existing, keys)
	if !homeExists {
		it.mkdir(home)
		it.chown(home, u.UID, u.GID)
	}
	it.mkdir(sshDir)
	it.chown(sshDir, u.UID, u.GID)
	it.chmod(sshDir, 0o700)
	if added > 0 {
		it.append(akPath, add)
	}
	it.chown(akPath, u.UID, u.GID)
	it.chmod(akPath, 0o600)
	it.rep.Summary = fmt.Sprintf("%d key(s) added, %d already present, for %s", added, dup, u.Name)
	if relabel {
		return nil // --selinux-relabel labels ~/.ssh now (or falls back to /.autorelabel)
	}
	return planSELinux(fsys, it, sshDir)
}

// newKeyData returns the bytes to append to an authorized_keys file that
// holds existing: a newline first if it lacks a trailing one, then each key
// not yet present, once.
func newKeyData(existing []byte, keys []authorizedKey) (data []byte, added, dup int) {
	present := presentKeys(existing)
	var b bytes.Buffer
	for _, k := range keys {
		if present[k.blob] {
			dup++
			continue
		}
		present[k.blob] = true
		b.WriteString(k.line)
		b.WriteByte('\n')
		added++
	}
	if added > 0 && len(existing) > 0 && existing[len(existing)-1] != '\n' {
		return append([]byte{'\n'}, b.Bytes()...), added, dup
	}
	return b.Bytes(), added, dup
}

// ValidateKeys checks keys as Apply does: each one OpenSSH authorized_keys
// line. Errors wrap ErrInvalidKey and name the key by its 1-based index.
func ValidateKeys(keys []string) error {
	_, err := parseKeys(keys)
	return err
}
