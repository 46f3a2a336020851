package errs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/errs"
)

// TestClassesDistinctAndNamed: every class has its own non-empty name, no
// class matches another, and Class of a class is itself.
func TestClassesDistinctAndNamed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range errs.Classes() {
		name := errs.Name(c)
		if name == "" || seen[name] {
			t.Errorf("class %q: name %q empty or repeated", c, name)
		}
		seen[name] = true
		if errs.Class(c) != c {
			t.Errorf("Class(%q) = %v", name, errs.Class(c))
		}
		for _, d := range errs.Classes() {
			if c != d && errors.Is(c, d) {
				t.Errorf("class %q matches class %q", name, errs.Name(d))
			}
		}
	}
	if len(seen) != 11 {
		t.Errorf("%d classes, want 11", len(seen))
	}
}

// TestNewKeepsMessageAndIdentity: a layer's sentinel prints its own
// message, matches itself and its class, and not another layer's
// sentinel of the same class.
func TestNewKeepsMessageAndIdentity(t *testing.T) {
	a := errs.New(errs.ErrCorrupt, "partition table corrupt")
	b := errs.New(errs.ErrCorrupt, "corrupt image")
	if a.Error() != "partition table corrupt" {
		t.Errorf("message %q", a)
	}
	w := fmt.Errorf("gpt primary header: %w", a)
	if !errors.Is(w, a) || !errors.Is(w, errs.ErrCorrupt) || errors.Is(w, b) || errors.Is(w, errs.ErrUnsupported) {
		t.Errorf("Is of %v wrong", w)
	}
	if errors.Is(w, errs.ErrForceable) {
		t.Error("a plain sentinel is forceable")
	}
	f := errs.NewForceable(errs.ErrUnclean, "filesystem is not clean")
	if !errors.Is(f, errs.ErrForceable) || !errors.Is(f, errs.ErrUnclean) || errs.Name(f) != "unclean" {
		t.Errorf("forceable sentinel: Is forceable %v, class %q", errors.Is(f, errs.ErrForceable), errs.Name(f))
	}
}

// TestNewRefusesNonClass: a sentinel must be built on a class, so a
// typo cannot leave a layer's error unclassified.
func TestNewRefusesNonClass(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New over a non-class did not panic")
		}
	}()
	errs.New(io.EOF, "x")
}

// TestClassOuterFirst: an error wrapping two classes ("%w: %w") has the
// outer one; the standard fs errors map to classes; an I/O error has none.
func TestClassOuterFirst(t *testing.T) {
	recov := errs.New(errs.ErrUnclean, "journal needs recovery")
	corrupt := errs.New(errs.ErrCorrupt, "corrupt filesystem metadata")
	for _, c := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("%w: %w", recov, corrupt), errs.ErrUnclean},
		{fmt.Errorf("x: %w", fmt.Errorf("%w: %w", corrupt, recov)), errs.ErrCorrupt},
		{&fs.PathError{Op: "open", Path: "/etc/x", Err: fs.ErrNotExist}, errs.ErrNotFound},
		{fs.ErrPermission, errs.ErrDenied},
		{fs.ErrExist, errs.ErrInvalid},
		{io.ErrUnexpectedEOF, nil},
		{nil, nil},
	} {
		if got := errs.Class(c.err); got != c.want {
			t.Errorf("Class(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if errs.Name(io.EOF) != "" {
		t.Error("io.EOF has a class name")
	}
}

// TestClassBoundedChain: a pathological chain deeper than any real one
// ends the walk instead of running on.
func TestClassBoundedChain(t *testing.T) {
	var err error = errs.ErrCorrupt
	for range 1000 {
		err = fmt.Errorf("w: %w", err)
	}
	if errs.Class(err) != nil {
		t.Error("a class 1000 wrappers deep was found: the walk is not bounded")
	}
	err = errs.ErrCorrupt
	for range 50 {
		err = fmt.Errorf("w: %w", err)
	}
	if errs.Class(err) != errs.ErrCorrupt {
		t.Error("a class 50 wrappers deep was not found")
	}
}

// located is a layer's own located type, converting to *errs.Error as
// diskerr.Error, partition.Error and the engines' CorruptError do.
type located struct {
	ino uint64
	off int64
	err error
}

func (l *located) Error() string { return fmt.Sprintf("inode %d: %v", l.ino, l.err) }
func (l *located) Unwrap() error { return l.err }
func (l *located) As(target any) bool {
	p, ok := target.(**errs.Error)
	if ok {
		*p = &errs.Error{What: "extent node", Inode: l.ino, Block: 77, Offset: l.off, Err: l.err}
	}
	return ok
}

// TestLocateMergesChain: the image and partition from the outer wrappers,
// the path from a PathError, the inode, structure, block and offset from
// the engine's own type; errors.As gives the nearest location.
func TestLocateMergesChain(t *testing.T) {
	corrupt := errs.New(errs.ErrCorrupt, "corrupt filesystem metadata")
	inner := &located{ino: 12, off: 0x4000, err: corrupt}
	err := errs.In("disk.qcow2", "", errs.In("", "partition 2", &fs.PathError{Op: "write", Path: "/etc/x", Err: inner}))
	if got, want := err.Error(), "disk.qcow2: partition 2: write /etc/x: inode 12: corrupt filesystem metadata"; got != want {
		t.Errorf("message\n got %q\nwant %q", got, want)
	}
	loc, ok := errs.Locate(err)
	want := errs.Error{Image: "disk.qcow2", Partition: "partition 2", Path: "/etc/x", What: "extent node", Inode: 12, Block: 77, Offset: 0x4000, Err: errs.ErrCorrupt}
	if !ok || loc != want {
		t.Errorf("Locate = %+v, %v\nwant %+v", loc, ok, want)
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Image != "disk.qcow2" {
		t.Errorf("errors.As: %+v", e)
	}
	var en *errs.Error
	if !errors.As(inner, &en) || en.Inode != 12 || en.Offset != 0x4000 {
		t.Errorf("errors.As through a layer's type: %+v", en)
	}
	if _, ok := errs.Locate(io.EOF); ok {
		t.Error("an unlocated error was located")
	}
}

// TestErrorMessage: the located error prints what it knows, outer to
// inner, and nothing for unknown fields.
func TestErrorMessage(t *testing.T) {
	for _, c := range []struct {
		e    errs.Error
		want string
	}{
		{errs.Error{Image: "a.img", Block: -1, Offset: -1, Err: io.EOF}, "a.img: EOF"},
		{errs.Error{Image: "a.img", Err: io.EOF}, "a.img: EOF"}, // Block and Offset need What
		{errs.Error{Partition: "partition 1", What: "AGF", Block: 3, Inode: 9, Offset: 0x200, Err: errs.ErrCorrupt}, "partition 1: AGF block 3 of inode 9 (offset 0x200): corrupt data"},
		{errs.Error{Path: "/x", What: "superblock", Block: -1, Offset: 0x400}, "/x: superblock (offset 0x400)"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	if errs.In("a", "b", nil) != nil {
		t.Error("In(nil) is not nil")
	}
	if !strings.Contains(errs.In("a", "", errs.ErrInUse).Error(), "in use") {
		t.Error("In lost the cause")
	}
}
