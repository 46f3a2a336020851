package partition

import (
	"fmt"

	"github.com/guestinject/guestinject/errs"
)

// Sentinel errors. Every error this package returns wraps one of them (or
// the reader's own I/O error), so callers test with errors.Is. Each wraps
// the errs class of the same name.
var (
	// ErrCorrupt: a partition table is damaged or hostile (bad CRCs on
	// both GPT copies, an EBR chain that loops or leaves its extended
	// partition, an entry count no real table has).
	ErrCorrupt = errs.New(errs.ErrCorrupt, "partition table corrupt")
	// ErrOutOfRange: an access or a partition lies outside its section or
	// outside the disk.
	ErrOutOfRange = errs.New(errs.ErrOutOfRange, "out of range")
	// ErrReadOnly: a write to a Section built over a reader that cannot write.
	ErrReadOnly = errs.New(errs.ErrReadOnly, "section is read-only")
	// ErrNotFound: no partition has the number asked for.
	ErrNotFound = errs.New(errs.ErrNotFound, "no such partition")
	// ErrUnsupported: a valid but unsupported layout (e.g. a sector size
	// other than 512 or 4096).
	ErrUnsupported = errs.New(errs.ErrUnsupported, "unsupported")
)

// Error locates a failure on the disk: which structure, at which LBA and
// byte offset. It wraps a sentinel or an I/O error.
type Error struct {
	Where  string // "mbr", "ebr", "gpt primary header", "gpt backup entries", ...
	LBA    int64  // logical block address of the structure, -1 if none
	Offset int64  // byte offset on the disk, -1 if none
	Msg    string // what is wrong
	Err    error  // sentinel or I/O error
}

func (e *Error) Error() string {
	loc := e.Where
	if e.LBA >= 0 {
		loc += fmt.Sprintf(" at LBA %d", e.LBA)
	}
	if e.Offset >= 0 {
		loc += fmt.Sprintf(" (offset %d)", e.Offset)
	}
	if e.Msg == "" {
		return fmt.Sprintf("%s: %v", loc, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", loc, e.Msg, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// corrupt builds an ErrCorrupt error for the structure at lba (in sectors
// of ss bytes).
func corrupt(where string, lba int64, ss int, format string, args ...any) error {
	return &Error{Where: where, LBA: lba, Offset: lba * int64(ss), Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
}

// ioError wraps a read failure of the structure at byte offset off.
func ioError(where string, off int64, err error) error {
	return &Error{Where: where, LBA: -1, Offset: off, Msg: "read failed", Err: err}
}

// As lets errors.As convert an *Error to the project's located error,
// *errs.Error (Block is the LBA).
func (e *Error) As(target any) bool {
	p, ok := target.(**errs.Error)
	if ok {
		*p = &errs.Error{What: e.Where, Block: e.LBA, Offset: e.Offset, Err: e.Err}
	}
	return ok
}
