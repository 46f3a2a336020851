// Package diskerr holds the error classes shared by the image-format
// packages (formats, formats/qcow2). The formats package re-exports them,
// so callers write errors.Is(err, formats.ErrCorrupt).
package diskerr

import (
	"errors"
	"fmt"
)

// Error classes. Every error returned by the format packages wraps one of
// these, usually inside an *Error that says what and where.
var (
	// ErrUnsupportedFormat: the container was recognised (vmdk, vhd, ...)
	// but cannot be read yet.
	ErrUnsupportedFormat = errors.New("image format not supported yet")
	// ErrUnsupported: a feature of a supported format that is refused
	// (encryption, external data file, unknown incompatible feature).
	ErrUnsupported = errors.New("unsupported image feature")
	// ErrCorrupt: on-disk metadata is inconsistent or out of bounds.
	ErrCorrupt = errors.New("corrupt image")
	// ErrInUse: another process (a running VM) holds the image.
	ErrInUse = errors.New("image is in use")
	// ErrBackingDenied: the backing-file policy refused a backing file.
	ErrBackingDenied = errors.New("backing file denied by policy")
	// ErrBackingChain: the backing chain loops or is too deep.
	ErrBackingChain = errors.New("invalid backing chain")
	// ErrReadOnly: a write to an image opened read-only.
	ErrReadOnly = errors.New("image is read-only")
	// ErrDirty: the image is marked dirty (lazy refcounts not yet repaired).
	ErrDirty = errors.New("image is marked dirty; repair it with 'qemu-img check -r all' first")
	// ErrTooSmall: a requested size is smaller than what it must hold
	// (an overlay smaller than its base, like nova's ImageTooLarge).
	ErrTooSmall = errors.New("size smaller than the base image")
	// ErrOutOfRange: an access beyond the virtual disk.
	ErrOutOfRange = errors.New("access beyond the end of the virtual disk")
	// ErrNoSpace: a table would exceed its implementation limit.
	ErrNoSpace = errors.New("image metadata limit reached")
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
