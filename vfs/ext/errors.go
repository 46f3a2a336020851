package ext

import (
	"fmt"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs"
)

// Sentinels. ErrUnsupportedFeature wraps vfs.ErrUnsupported and ErrChecksum
// wraps vfs.ErrCorrupt, so callers that only know the vfs classes still
// match them with errors.Is.
var (
	// ErrNotExt: the bytes hold no ext2/3/4 superblock.
	ErrNotExt = errs.New(errs.ErrUnsupported, "ext: not an ext2/3/4 filesystem")
	// ErrUnsupportedFeature: the filesystem (or an object in it) uses a
	// feature this engine refuses to read.
	ErrUnsupportedFeature = fmt.Errorf("ext: %w", vfs.ErrUnsupported)
	// ErrChecksum: a metadata checksum does not match.
	ErrChecksum = fmt.Errorf("ext: checksum mismatch: %w", vfs.ErrCorrupt)
	// ErrNeedsRecovery: the journal holds transactions not yet written to
	// the filesystem (see Options.AllowDirtyJournal).
	ErrNeedsRecovery = errs.New(errs.ErrUnclean, "ext: journal needs recovery")
)

// CorruptError reports inconsistent metadata: which structure, which one,
// and where it is. It wraps vfs.ErrCorrupt or ErrChecksum.
type CorruptError struct {
	What   string // "superblock", "group descriptor", "inode", "extent node", "directory block", ...
	Num    uint64 // its number (group, inode, block); meaningless for the superblock
	Ino    uint32 // the inode it belongs to, 0 if none or if What is "inode"
	Offset int64  // byte offset in the filesystem, -1 when unknown
	Detail string
	Err    error
}

func (e *CorruptError) Error() string {
	s := "ext: " + e.What
	if e.What != "superblock" && e.What != "journal superblock" {
		s += fmt.Sprintf(" %d", e.Num)
	}
	if e.Ino != 0 && !(e.What == "inode" && e.Num == uint64(e.Ino)) {
		s += fmt.Sprintf(" of inode %d", e.Ino)
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (offset %#x)", e.Offset)
	}
	return s + ": " + e.Detail + ": " + e.Err.Error()
}

func (e *CorruptError) Unwrap() error { return e.Err }

// corrupt builds a CorruptError wrapping vfs.ErrCorrupt.
func corrupt(what string, num uint64, ino uint32, off int64, format string, args ...any) error {
	return &CorruptError{What: what, Num: num, Ino: ino, Offset: off, Detail: fmt.Sprintf(format, args...), Err: vfs.ErrCorrupt}
}

// badChecksum builds a CorruptError wrapping ErrChecksum.
func badChecksum(what string, num uint64, ino uint32, off int64, got, want uint32) error {
	return &CorruptError{What: what, Num: num, Ino: ino, Offset: off,
		Detail: fmt.Sprintf("stored checksum %#x, computed %#x", got, want), Err: ErrChecksum}
}

// unsupported wraps ErrUnsupportedFeature with what was refused.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupportedFeature, fmt.Sprintf(format, args...))
}

// As lets errors.As convert a CorruptError to the project's located
// error, *errs.Error. What keeps the number as the message prints it
// ("directory block 4400", "group descriptor 3"): Num is a group, a
// logical or a physical block depending on What.
func (e *CorruptError) As(target any) bool {
	p, ok := target.(**errs.Error)
	if !ok {
		return false
	}
	l := &errs.Error{What: e.What, Inode: uint64(e.Ino), Block: -1, Offset: e.Offset, Err: e.Err}
	switch e.What {
	case "inode":
		l.Inode = e.Num
	case "superblock", "journal superblock":
	default:
		l.What = fmt.Sprintf("%s %d", e.What, e.Num)
	}
	*p = l
	return true
}
