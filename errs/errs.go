package errs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// class is an error class: a sentinel with a stable name.
type class struct{ name, msg string }

func (c *class) Error() string { return c.msg }

// The classes. Each layer's sentinels wrap exactly one of them.
var (
	// ErrCorrupt: on-disk data is inconsistent, out of bounds or hostile
	// (any layer: image metadata, a partition table, LVM metadata,
	// filesystem metadata, a guest file the injectors parse).
	ErrCorrupt error = &class{"corrupt", "corrupt data"}
	// ErrUnsupported: valid, but this tool refuses it: a format, feature,
	// layout or operation it does not read or cannot write safely.
	ErrUnsupported error = &class{"unsupported", "unsupported"}
	// ErrReadOnly: a write to something opened or only readable read-only.
	ErrReadOnly error = &class{"read-only", "read-only"}
	// ErrInUse: someone else holds it: a running VM's image lock, a node
	// named by multi-mount protection, an object changed underneath.
	ErrInUse error = &class{"in-use", "in use"}
	// ErrUnclean: the state on disk asks for a repair or a recovery first
	// (a dirty qcow2, a journal or log to replay, an unclean unmount,
	// orphan inodes).
	ErrUnclean error = &class{"unclean", "needs repair or recovery"}
	// ErrNotFound: what was asked for does not exist (a partition, a
	// logical volume, a user, an extended attribute). Guest paths keep
	// fs.ErrNotExist; Class maps it here.
	ErrNotFound error = &class{"not-found", "not found"}
	// ErrNoSpace: no room left: free blocks or inodes, a metadata table's
	// limit, the staging area.
	ErrNoSpace error = &class{"no-space", "no space left"}
	// ErrOutOfRange: an access beyond the end of a disk, a section or a
	// device.
	ErrOutOfRange error = &class{"out-of-range", "out of range"}
	// ErrInvalid: the request itself is wrong: a malformed key, address,
	// path, option value or size.
	ErrInvalid error = &class{"invalid", "invalid input"}
	// ErrAmbiguous: the tool cannot choose on its own (no candidate or
	// several: a guest root, a network stack, a disk in an archive); the
	// caller must say which.
	ErrAmbiguous error = &class{"ambiguous", "cannot choose"}
	// ErrDenied: a policy refused it (a backing file outside what the
	// backing policy allows); Class maps fs.ErrPermission here.
	ErrDenied error = &class{"denied", "denied"}
)

// classes lists every class, for Name and the tests.
var classes = []error{ErrCorrupt, ErrUnsupported, ErrReadOnly, ErrInUse, ErrUnclean,
	ErrNotFound, ErrNoSpace, ErrOutOfRange, ErrInvalid, ErrAmbiguous, ErrDenied}

// Classes returns every class, in a fixed order.
func Classes() []error { return append([]error(nil), classes...) }

// ErrForceable marks a refusal that an explicit override lifts (ext's
// Options.Force, inject --force). It is wrapped beside a class, never
// instead of one.
var ErrForceable = errors.New("refusal that force overrides")

// sentinel is a layer's sentinel: its own message, one class (and
// optionally ErrForceable) underneath.
type sentinel struct {
	msg   string
	under []error
}

func (s *sentinel) Error() string   { return s.msg }
func (s *sentinel) Unwrap() []error { return s.under }

// New returns a layer's sentinel with message msg in class c: errors.Is
// matches it by identity, as errors.New's, and also matches c.
func New(c error, msg string) error {
	mustClass(c)
	return &sentinel{msg: msg, under: []error{c}}
}

// NewForceable is New for a refusal that an override lifts: the sentinel
// also matches ErrForceable.
func NewForceable(c error, msg string) error {
	mustClass(c)
	return &sentinel{msg: msg, under: []error{c, ErrForceable}}
}

func mustClass(c error) {
	if _, ok := c.(*class); !ok {
		panic(fmt.Sprintf("errs: %v is not a class of package errs", c))
	}
}

// Class returns the class err belongs to: the first class met walking its
// chain from the outside in (fs.ErrNotExist counts as ErrNotFound,
// fs.ErrPermission as ErrDenied, fs.ErrExist as ErrInvalid). nil when err
// is nil or belongs to no class (a plain I/O error).
func Class(err error) error {
	var found error
	walk(err, func(e error) bool {
		switch e {
		case fs.ErrNotExist:
			found = ErrNotFound
		case fs.ErrPermission:
			found = ErrDenied
		case fs.ErrExist:
			found = ErrInvalid
		default:
			if c, ok := e.(*class); ok {
				found = c
			}
		}
		return found == nil
	})
	return found
}

// Name returns the stable name of err's class ("corrupt", "unsupported",
// "read-only", "in-use", "unclean", "not-found", "no-space",
// "out-of-range", "invalid", "ambiguous", "denied"), or "" when it has
// none.
func Name(err error) string {
	if c, ok := Class(err).(*class); ok {
		return c.name
	}
	return ""
}

// walk calls visit on err and everything it wraps, depth first, outer
// before inner, until visit returns false. The depth is bounded, so a
// cyclic chain cannot loop.
func walk(err error, visit func(error) bool) bool {
	return walkDepth(err, visit, 0)
}

const maxChain = 100

func walkDepth(err error, visit func(error) bool, depth int) bool {
	for ; err != nil && depth < maxChain; depth++ {
		if !visit(err) {
			return false
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if !walkDepth(e, visit, depth+1) {
					return false
				}
			}
			return true
		default:
			return true
		}
	}
	return true
}

// Error is a located error: where a failure happened, as far as the layer
// that built it knows, and the cause. Fields that are not known are empty
// (strings), 0 (Inode) or -1 (Block, Offset); Block and Offset locate What
// and are ignored without it.
type Error struct {
	Image     string // the image file ("disk.qcow2")
	Partition string // the partition or volume ("partition 2", "logical volume vg/root")
	Path      string // the guest path
	What      string // the structure or operation ("L2 table", "gpt primary header", "extent node 1234")
	Inode     uint64 // the inode concerned
	Block     int64  // the structure's block or sector, in the layer's unit (filesystem block, LBA)
	Offset    int64  // byte offset of the structure in its image, partition or filesystem
	Err       error  // the cause: a layer's sentinel, a class, or an I/O error
}

// Error prints the known parts, outer to inner, then the cause:
// "disk.img: partition 2: /etc/x: inode 12 (offset 0x1000): cause".
func (e *Error) Error() string {
	var b strings.Builder
	for _, s := range []string{e.Image, e.Partition, e.Path} {
		if s != "" {
			b.WriteString(s)
			b.WriteString(": ")
		}
	}
	var loc []string
	if e.What != "" {
		loc = append(loc, e.What)
	}
	if e.hasBlock() {
		loc = append(loc, fmt.Sprintf("block %d", e.Block))
	}
	if e.Inode != 0 {
		loc = append(loc, fmt.Sprintf("of inode %d", e.Inode))
	}
	if e.hasOffset() {
		loc = append(loc, fmt.Sprintf("(offset %#x)", e.Offset))
	}
	if len(loc) > 0 {
		b.WriteString(strings.Join(loc, " "))
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return strings.TrimSuffix(b.String(), ": ")
}

// hasBlock and hasOffset: Block and Offset locate What, and count only
// with it (so a wrapper built as &Error{Image: p, Err: err} names no
// block 0).
func (e *Error) hasBlock() bool  { return e.What != "" && e.Block >= 0 }
func (e *Error) hasOffset() bool { return e.What != "" && e.Offset >= 0 }

func (e *Error) Unwrap() error { return e.Err }

// In wraps err with the image file and the partition or volume it
// happened in (either may be empty). It prints "image: partition: err".
func In(image, partition string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Image: image, Partition: partition, Block: -1, Offset: -1, Err: err}
}

// Locate merges the locations of err's chain into one Error: each field
// comes from the outermost located error that knows it (the image from
// the wrapper that opened it, the inode from the engine; What, Block and
// Offset together, from the same error). The
// layers' own located types take part through errors.As, and an
// *fs.PathError gives the path. Err is err's
// class (nil when it has none). ok is false when nothing in the chain is
// located.
func Locate(err error) (loc Error, ok bool) {
	loc = Error{Block: -1, Offset: -1}
	walk(err, func(e error) bool {
		var l *Error
		switch v := e.(type) {
		case *Error:
			l = v
		case *fs.PathError: // the vfs backends' guest path
			l = &Error{Path: v.Path, Block: -1, Offset: -1}
		case interface{ As(any) bool }:
			if !v.As(&l) {
				l = nil
			}
		}
		if l != nil {
			ok = true
			loc.merge(l)
		}
		return true
	})
	loc.Err = Class(err)
	return loc, ok
}

func (e *Error) merge(l *Error) {
	first := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	first(&e.Image, l.Image)
	first(&e.Partition, l.Partition)
	first(&e.Path, l.Path)
	if e.Inode == 0 {
		e.Inode = l.Inode
	}
	if e.What == "" && l.What != "" { // the structure with its own block and offset
		e.What, e.Block, e.Offset = l.What, max(l.Block, -1), max(l.Offset, -1)
	}
}
