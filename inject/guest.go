package inject

import (
	"errors"
	"fmt"
	"io/fs"

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
		return u, fmt.Errorf("%w: %q in /etc/passwd: %w", ErrNoSuchUser, name, err)
	}
	return u, err
}

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

// checkKind verifies, when the backend can stat, that p is missing or a
// directory (wantDir) or missing or not a directory (!wantDir), so that a
// conflict is found before the first write. It reports whether p exists.
func checkKind(fsys vfs.FS, p string, wantDir bool) (bool, error) {
	r, ok := fsys.(vfs.Reader)
	if !ok {
		return fsys.HasFile(p)
	}
	fi, err := r.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case wantDir && !fi.IsDir():
		return true, vfs.PathErr("stat", p, vfs.ErrNotDir)
	case !wantDir && fi.IsDir():
		return true, vfs.PathErr("stat", p, vfs.ErrIsDir)
	}
	return true, nil
}
