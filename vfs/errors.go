package vfs

import (
	"io/fs"

	"github.com/guestinject/guestinject/errs"
)

// Sentinels of this package. Backends wrap them (and fs.ErrNotExist,
// fs.ErrExist, fs.ErrPermission) in *fs.PathError so errors.Is works and the
// guest path is kept. Each wraps one errs class: the path errors (ErrNotDir,
// ErrIsDir, ErrNotRegular, ErrInvalidPath, ErrTooManyLinks) errs.ErrInvalid,
// the unknown names and ErrNoXattr errs.ErrNotFound, the others the class
// of their name.
var (
	// ErrTooManyLinks: resolving a path followed more than MaxSymlinkHops
	// symlinks (a loop, or a chain too long).
	ErrTooManyLinks = errs.New(errs.ErrInvalid, "too many levels of symbolic links")
	// ErrNotDir: a path component that must be a directory is not one.
	ErrNotDir = errs.New(errs.ErrInvalid, "not a directory")
	// ErrIsDir: a file operation was asked of a directory.
	ErrIsDir = errs.New(errs.ErrInvalid, "is a directory")
	// ErrNotRegular: the object is neither a regular file nor what the
	// operation accepts (a device, a fifo, a socket).
	ErrNotRegular = errs.New(errs.ErrInvalid, "not a regular file")
	// ErrInvalidPath: the path is not a clean guest-absolute path (empty,
	// relative, a NUL byte, a component longer than 255 bytes).
	ErrInvalidPath = errs.New(errs.ErrInvalid, "invalid guest path")
	// ErrUnknownUser and ErrUnknownGroup: a name is in neither the
	// guest's /etc/passwd nor /etc/group.
	ErrUnknownUser  = errs.New(errs.ErrNotFound, "unknown user in guest /etc/passwd")
	ErrUnknownGroup = errs.New(errs.ErrNotFound, "unknown group in guest /etc/group")
	// ErrReadOnly: the backend was opened read-only, or the filesystem
	// can only be read safely.
	ErrReadOnly = errs.New(errs.ErrReadOnly, "filesystem is read-only")
	// ErrUnsupported: the object uses a feature this backend refuses to
	// touch (an encrypted directory, an unknown on-disk format).
	ErrUnsupported = errs.New(errs.ErrUnsupported, "unsupported feature")
	// ErrNoSpace: no free blocks or inodes for the write.
	ErrNoSpace = errs.New(errs.ErrNoSpace, "no space left on filesystem")
	// ErrNoXattr: the extended attribute does not exist.
	ErrNoXattr = errs.New(errs.ErrNotFound, "no such extended attribute")
	// ErrCorrupt: on-disk metadata is inconsistent; the error wrapping it
	// names the structure and where it is.
	ErrCorrupt = errs.New(errs.ErrCorrupt, "corrupt filesystem metadata")
)

// PathErr wraps err in an *fs.PathError for op on the guest path p.
func PathErr(op, p string, err error) error {
	return &fs.PathError{Op: op, Path: p, Err: err}
}
