package ext

import (
	"fmt"
	"io"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// checkResult is the outcome of the checks made before an FS's first
// write (they may replay the journal, which is done once).
type checkResult struct{ err error }

// checkWritable refuses a filesystem the engine cannot write safely:
// first the features it cannot keep consistent, then checkWritableState
// (mmp, s_state, journal replay in memory, orphans; see state.go), then
// the features again as the replayed superblock has them, then a journal
// still needing recovery. Nothing is written here. The outcome is
// remembered: the checks run once per FS, at Open (Options.Writable or
// Options.CheckWritable).
func (f *FS) checkWritable() error {
	if f.writeCheck != nil {
		return f.writeCheck.err
	}
	pre := *f.sb
	// orphan_present is decided on the replayed view: cleared when the
	// orphan file is empty, refused below when it is not.
	pre.FeatureROCompat &^= layout.ROCompatOrphanPresent
	err := checkWriteFeatures(&pre)
	if err == nil {
		err = f.checkWritableState()
	}
	if err == nil {
		err = checkWriteFeatures(f.sb)
	}
	if err == nil && f.sb.FeatureIncompat.Has(layout.IncompatRecover) {
		err = fmt.Errorf("%w: the journal still needs recovery", ErrNeedsRecovery)
	}
	f.writeCheck = &checkResult{err}
	return err
}

// openWritable is Open's writable path (Options.Writable, or
// Options.CheckWritable for a dry run): a writable open's reader must
// also be an io.WriterAt, and a filesystem the engine cannot write is
// refused at Open, before anything is written, rather than at the first
// write.
func (f *FS) openWritable() error {
	if _, ok := f.r.(io.WriterAt); f.opts.Writable && !ok {
		return fmt.Errorf("ext: Options.Writable needs an io.WriterAt, %T is not one: %w", f.r, vfs.ErrReadOnly)
	}
	return f.checkWritable()
}
