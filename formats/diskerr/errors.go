// Package diskerr holds the error classes shared by the image-format
// packages (formats, formats/qcow2). The formats package re-exports them,
// so callers write errors.Is(err, formats.ErrCorrupt).
package diskerr

import (
	"fmt"

	"github.com/guestinject/guestinject/errs"
)

// Error classes. Every error returned by the format packages wraps one of
// these, usually inside an *Error that says what and where. Each wraps
// one class of package errs (ErrCorrupt is errs.ErrCorrupt, ErrDirty
// errs.ErrUnclean, ErrBackingDenied errs.ErrDenied, ...).
var (
	// ErrUnsupportedFormat: the container was recognised (vmdk, vhd, ...)
	// but cannot be read yet.
	ErrUnsupportedFormat = errs.New(errs.ErrUnsupported, "image format not supported yet")
	// ErrUnsupported: a feature of a supported format that is refused
	// (encryption, external data file, unknown incompatible feature).
	ErrUnsupported = errs.New(errs.ErrUnsupported, "unsupported image feature")
	// ErrCorrupt: on-disk metadata is inconsistent or out of bounds.
	ErrCorrupt = errs.New(errs.ErrCorrupt, "corrupt image")
	// ErrInUse: another process (a running VM) holds the image.
	ErrInUse = errs.New(errs.ErrInUse, "image is in use")
	// ErrBackingDenied: the backing-file policy refused a backing file.
	ErrBackingDenied = errs.New(errs.ErrDenied, "backing file denied by policy")
	// ErrBackingChain: the backing chain loops or is too deep.
	ErrBackingChain = errs.New(errs.ErrCorrupt, "invalid backing chain")
	// ErrReadOnly: a write to an image opened read-only.
	ErrReadOnly = errs.New(errs.ErrReadOnly, "image is read-only")
	// ErrDirty: the image is marked dirty (lazy refcounts not yet repaired).
	ErrDirty = errs.New(errs.ErrUnclean, "image is marked dirty; repair it with 'qemu-img check -r all' first")
	// ErrTooSmall: a requested size is smaller than what it must hold
	// (an overlay smaller than its base, like nova's ImageTooLarge).
	ErrTooSmall = errs.New(errs.ErrInvalid, "size smaller than the base image")
	// ErrOutOfRange: an access beyond the virtual disk.
	ErrOutOfRange = errs.New(errs.ErrOutOfRange, "access beyond the end of the virtual disk")
	// ErrNoSpace: a table would exceed its implementation limit.
	ErrNoSpace = errs.New(errs.ErrNoSpace, "image metadata limit reached")
)

// Error locates a failure: which structure, at which byte offset of which file.
type Error struct {
	Path   string // file, when known
	What   string // the structure or operation ("L2 entry 5 of table at ...")
	Offset int64  // byte offset in the file, -1 when not meaningful
	Err    error  // one of the classes above, or an I/O error
}

func (e *Error) Error() string {
	s := e.What
	if e.Offset >= 0 {
		s = fmt.Sprintf("%s at offset %#x", s, e.Offset)
	}
	if e.Path != "" {
		s = e.Path + ": " + s
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Corrupt returns an *Error of class ErrCorrupt.
func Corrupt(off int64, format string, args ...any) error {
	return &Error{What: fmt.Sprintf(format, args...), Offset: off, Err: ErrCorrupt}
}

// Unsupported returns an *Error of class ErrUnsupported.
func Unsupported(format string, args ...any) error {
	return &Error{What: fmt.Sprintf(format, args...), Offset: -1, Err: ErrUnsupported}
}

// At wraps err (an I/O error or a class) with a location.
func At(off int64, what string, err error) error {
	return &Error{What: what, Offset: off, Err: err}
}

// WithPath sets the file path on an *Error (or wraps a plain error).
func WithPath(path string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok && e.Path == "" {
		c := *e
		c.Path = path
		return &c
	}
	return fmt.Errorf("%s: %w", path, err)
}

// As lets errors.As convert an *Error to the project's located error,
// *errs.Error (the file is the image).
func (e *Error) As(target any) bool {
	p, ok := target.(**errs.Error)
	if ok {
		*p = &errs.Error{Image: e.Path, What: e.What, Block: -1, Offset: e.Offset, Err: e.Err}
	}
	return ok
}
