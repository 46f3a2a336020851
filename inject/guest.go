package inject

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/guestinject/guestinject/vfs"
)

// maxGuestFile bounds the guest files the injectors read (authorized_keys,
// /etc/shadow): a hostile image must not make us allocate without limit.
const maxGuestFile = 16 << 20

// lookupUser finds name in the guest's /etc/passwd. A missing user (or a
// missing /etc/passwd) is ErrNoSuchUser.
func lookupUser(fsys vfs.FS, name string) (vfs.User, error) {
	u, err := vfs.LookupUser(fsys, name)
	if err == nil {
		return u, nil
	}
	if errors.Is(err, vfs.ErrUnknownUser) || errors.Is(err, fs.ErrNotExist) {
		return u, &userError{name: name, file: vfs.PasswdPath, cause: err}
	}
	return u, err
}

// userError is a user missing from a guest account file: one message
// naming the user and the file, matching both ErrNoSuchUser and the
// lower layer's error (vfs.ErrUnknownUser, with fs.ErrNotExist for a guest
// without the file).
type userError struct {
	name, file string
	cause      error
	others     []string // further users missing, named in the same message
}

func (e *userError) Error() string {
	names, verb := fmt.Sprintf("%q", e.name), "is"
	for _, o := range e.others {
		names, verb = names+fmt.Sprintf(", %q", o), "are"
	}
	if errors.Is(e.cause, fs.ErrNotExist) {
		return fmt.Sprintf("%v: %s: the guest has no %s", ErrNoSuchUser, names, e.file)
	}
	return fmt.Sprintf("%v: %s %s not in %s", ErrNoSuchUser, names, verb, e.file)
}

func (e *userError) Unwrap() []error { return []error{ErrNoSuchUser, e.cause} }

// readGuest reads a guest file of at most maxGuestFile bytes. When the
// backend can stat, the size is checked before the file is read.
func readGuest(fsys vfs.FS, p string) ([]byte, error) {
	if r, ok := fsys.(vfs.Reader); ok {
		fi, err := r.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.Size > maxGuestFile {
			return nil, vfs.PathErr("read", p, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, fi.Size, maxGuestFile))
		}
	}
	b, err := fsys.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(b) > maxGuestFile {
		return nil, vfs.PathErr("read", p, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), maxGuestFile))
	}
	return b, nil
}

// readGuestOptional is readGuest where a missing file is empty content.
func readGuestOptional(fsys vfs.FS, p string) ([]byte, bool, error) {
	b, err := readGuest(fsys, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// checkNotDir verifies, when the backend can stat, that p is missing or
// not a directory, so that the conflict is found before the first write.
func checkNotDir(fsys vfs.FS, p string) error {
	r, ok := fsys.(vfs.Reader)
	if !ok {
		return nil
	}
	fi, err := r.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return vfs.PathErr("stat", p, vfs.ErrIsDir)
	}
	return nil
}

// checkDirPath verifies, when the backend can stat, that MakePath(dir)
// will succeed as far as the guest's shape goes: each existing ancestor is
// a directory and none is a dangling symlink (mkdir cannot create through
// one). It reports whether dir exists.
func checkDirPath(fsys vfs.FS, dir string) (bool, error) {
	r, ok := fsys.(vfs.Reader)
	if !ok {
		return fsys.HasFile(dir)
	}
	prefix := ""
	for _, c := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		if c == "" {
			continue
		}
		prefix += "/" + c
		fi, err := r.Stat(prefix)
		switch {
		case err == nil && !fi.IsDir():
			return true, vfs.PathErr("mkdir", prefix, vfs.ErrNotDir)
		case err == nil:
			continue
		case !errors.Is(err, fs.ErrNotExist):
			return false, err
		}
		if _, lerr := r.Lstat(prefix); lerr == nil {
			return false, vfs.PathErr("mkdir", prefix, fmt.Errorf("dangling symlink: %w", fs.ErrExist))
		}
		return false, nil
	}
	return true, nil
}

// refuseSymlink fails when p itself is a symlink (when the backend can
// tell): the injectors change the mode and owner of what they write, and
// must not do so to whatever a guest link points at (/root/.ssh -> /etc).
func refuseSymlink(fsys vfs.FS, p string) error {
	r, ok := fsys.(vfs.Reader)
	if !ok {
		return nil
	}
	fi, err := r.Lstat(p)
	if err == nil && fi.Mode&fs.ModeSymlink != 0 {
		return vfs.PathErr("lstat", p, fmt.Errorf("%w: is a symlink (to %q)", ErrUnsafeSymlink, fi.Target))
	}
	return nil
}
