package xfs

import (
	"fmt"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs"
)

// Sentinels. ErrUnsupportedFeature wraps vfs.ErrUnsupported and ErrChecksum
// wraps vfs.ErrCorrupt, so callers that only know the vfs classes still
// match them with errors.Is.
var (
	// ErrNotXFS: the bytes hold no XFS superblock.
	ErrNotXFS = errs.New(errs.ErrUnsupported, "xfs: not an XFS filesystem")
	// ErrUnsupportedFeature: the filesystem (or an object in it) uses a
	// feature this engine refuses to read.
	ErrUnsupportedFeature = fmt.Errorf("xfs: %w", vfs.ErrUnsupported)
	// ErrChecksum: a v5 metadata CRC32c does not match.
	ErrChecksum = fmt.Errorf("xfs: checksum mismatch: %w", vfs.ErrCorrupt)
	// ErrNeedsRecovery: the log holds transactions not yet written to the
	// filesystem, or its state cannot be told (see Options.AllowDirtyLog).
	ErrNeedsRecovery = errs.New(errs.ErrUnclean, "xfs: log needs recovery")
)

// CorruptError reports inconsistent metadata: which structure, where it
// is, and the inode it belongs to. It wraps vfs.ErrCorrupt or ErrChecksum.
type CorruptError struct {
	What   string // "superblock", "AGF", "inode", "bmbt block", "directory", "attr fork", ...
	AG     int64  // allocation group, -1 when unknown or irrelevant
	Block  int64  // filesystem block (or directory/attribute block for What's kind), -1 when unknown
	Ino    uint64 // the inode concerned, 0 if none
	Offset int64  // byte offset in the filesystem, -1 when unknown
	Detail string
	Err    error
}

func (e *CorruptError) Error() string {
	s := "xfs: " + e.What
	if e.AG >= 0 {
		s += fmt.Sprintf(" in AG %d", e.AG)
	}
	if e.Block >= 0 {
		s += fmt.Sprintf(" block %d", e.Block)
	}
	if e.Ino != 0 {
		s += fmt.Sprintf(" of inode %d", e.Ino)
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (offset %#x)", e.Offset)
	}
	return s + ": " + e.Detail + ": " + e.Err.Error()
}

func (e *CorruptError) Unwrap() error { return e.Err }

// where locates a structure for an error.
type where struct {
	what  string
	ag    int64
	block int64
	ino   uint64
	off   int64
}

// at locates a structure with no AG or block of its own (the superblock's
// fields, an inode's fork).
func at(what string, ino uint64) where {
	return where{what: what, ag: -1, block: -1, ino: ino, off: -1}
}

func (w where) corrupt(format string, args ...any) error {
	return &CorruptError{What: w.what, AG: w.ag, Block: w.block, Ino: w.ino, Offset: w.off,
		Detail: fmt.Sprintf(format, args...), Err: vfs.ErrCorrupt}
}

func (w where) badChecksum(got, want uint32) error {
	return &CorruptError{What: w.what, AG: w.ag, Block: w.block, Ino: w.ino, Offset: w.off,
		Detail: fmt.Sprintf("stored CRC32c %#x, computed %#x", got, want), Err: ErrChecksum}
}

// unsupported wraps ErrUnsupportedFeature with what was refused.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupportedFeature, fmt.Sprintf(format, args...))
}

// As lets errors.As convert a CorruptError to the project's located
// error, *errs.Error.
func (e *CorruptError) As(target any) bool {
	p, ok := target.(**errs.Error)
	if ok {
		what := e.What
		if e.AG >= 0 {
			what = fmt.Sprintf("%s in AG %d", what, e.AG)
		}
		*p = &errs.Error{What: what, Inode: e.Ino, Block: e.Block, Offset: e.Offset, Err: e.Err}
	}
	return ok
}
