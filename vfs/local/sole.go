package local

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/guestinject/guestinject/vfs"
)

// A changed non-directory must have no name outside the guest. Its link
// count alone cannot show that: the lookup of a name and the reading of
// the count are two steps, and a hard link to a host file swapped in and
// out between them reads "one link" while that link is the host's. So
// the object's guest name is first moved (rename, atomic) into a private
// directory made for the change, 0700 and ours, beside it: nobody else
// can add, remove or swap names in there. A count of one read there
// proves the private name is the only one, whatever happens outside;
// the change goes through a descriptor of that name and the name then
// moves back. Someone with our own uid could still reach into the
// private directory, but could as well change the host file directly:
// no privilege is lent to them.
//
// A process killed between the two renames leaves the object in the
// directory .guestinject-* beside its name (the error of a failed move
// back names it).

const privatePrefix = ".guestinject-"

// private is a directory made for one change inside the guest directory
// pd (a descriptor of it), with its name there.
type private struct {
	pd, fd int
	name   string
	keep   bool // an object is left inside: the directory stays
}

// makePrivate creates an empty private directory in pd and opens it,
// checking that what it opened is a directory of ours that no other user
// may write (an attacker's directory swapped in under the same name is
// not).
func makePrivate(pd int) (*private, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := privatePrefix + hex.EncodeToString(b[:])
	if err := unix.Mkdirat(pd, name, 0o700); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(pd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Unlinkat(pd, name, unix.AT_REMOVEDIR)
		return nil, err
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	if err == nil && (st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0) {
		err = ErrChanged
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &private{pd: pd, fd: fd, name: name}, nil
}

// remove closes the private directory and removes it by name (if the
// name now leads elsewhere, only an empty directory inside the guest can
// go).
func (q *private) remove() {
	unix.Close(q.fd)
	if !q.keep {
		unix.Unlinkat(q.pd, q.name, unix.AT_REMOVEDIR)
	}
}

// soleName is the object's name inside the private directory.
const soleName = "f"

// withPrivate runs fn with a descriptor of the guest directory dir (a
// symlink-free path relative to the root) and a private directory made in
// it for the call, removed afterwards.
func (l *FS) withPrivate(op, p, dir string, fn func(pd int, q *private) error) error {
	parent, err := l.root.OpenFile(dir, handleFlag|unix.O_DIRECTORY, 0)
	if err != nil {
		return guestErr(op, p, err)
	}
	defer parent.Close()
	return withFd(parent, func(pd int) error {
		q, err := makePrivate(pd)
		if err != nil {
			return vfs.PathErr(op, p, fmt.Errorf("private directory for the change: %w", hostErr(err)))
		}
		defer q.remove()
		return fn(pd, q)
	})
}

// sole runs fn on the resolved non-directory n through a descriptor of it
// opened with flag (handleFlag for attribute changes), while its only
// name is in a private directory (see above). The object found must be n
// (same inode and type) with a single link: otherwise nothing is changed
// and the name is put back. fi is what fstat says of the descriptor.
func (l *FS) sole(op, p string, n node, flag int, fn func(f *os.File, fi fs.FileInfo) error) error {
	l.before(op, n.rel)
	dir, name := path.Dir(n.rel), path.Base(n.rel)
	return l.withPrivate(op, p, dir, func(pd int, q *private) error {
		if err := unix.Renameat(pd, name, q.fd, soleName); err != nil {
			return guestErr(op, p, err)
		}
		err := l.inPrivate(op, p, n, q.fd, flag, fn)
		if berr := unix.Renameat(q.fd, soleName, pd, name); berr != nil {
			q.keep = true
			return vfs.PathErr(op, p, fmt.Errorf("%w: moving it back from %s failed: %w", errors.Join(err, ErrChanged), path.Join(dir, q.name, soleName), hostErr(berr)))
		}
		// rename(2) does nothing when both names are links of one object
		// (one swapped back in meanwhile): the private name then goes.
		unix.Unlinkat(q.fd, soleName, 0)
		return err
	})
}

// publish gives the object made as soleName in the private directory qd
// the name name in pd, unless that name exists by then (fs.ErrExist).
func publish(qd, pd int, name string) error {
	err := renameNoReplace(qd, soleName, pd, name)
	if err == unix.EEXIST {
		return fs.ErrExist
	}
	return err
}

// inPrivate opens the object moved into the private directory qd, checks
// it and runs fn on it.
func (l *FS) inPrivate(op, p string, n node, qd, flag int, fn func(f *os.File, fi fs.FileInfo) error) error {
	// O_NONBLOCK: a fifo swapped in cannot hang us (O_PATH ignores it).
	fd, err := unix.Openat(qd, soleName, flag|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP || err == unix.ENXIO {
			return vfs.PathErr(op, p, ErrChanged) // a symlink or a fifo took the name
		}
		return guestErr(op, p, err)
	}
	f := os.NewFile(uintptr(fd), soleName)
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = guestErr(op, p, err)
	case !os.SameFile(fi, n.fi) || fi.Mode().Type() != n.fi.Mode().Type():
		err = vfs.PathErr(op, p, ErrChanged)
	default:
		if err = singleLink(op, p, fi); err == nil {
			err = fn(f, fi)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return guestErr(op, p, err)
	}
	return nil
}

// withFd runs fn with the descriptor of h.
func withFd(h *os.File, fn func(fd int) error) error {
	rc, err := h.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
