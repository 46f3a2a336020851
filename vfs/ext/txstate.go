package ext

import (
	"fmt"
	"io"
	"sync"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/layout"
)

// writeChecked remembers, per FS, the outcome of the checks made before
// its first write (they may replay the journal, which is done once).
var writeChecked sync.Map // *FS -> *checkResult

type checkResult struct{ err error }

// checkWritable refuses a filesystem the engine cannot write safely:
// first the features it cannot keep consistent (nothing written), then
// checkWritableState (mmp, s_state, journal replay, orphans; see
// state.go), then a journal still needing recovery. The outcome is
// remembered: the checks run once per FS, before its first write.
func (f *FS) checkWritable() error {
	if r, ok := writeChecked.Load(f); ok {
		return r.(*checkResult).err
	}
	err := checkWriteFeatures(f.sb)
	if err == nil {
		err = f.checkWritableState()
	}
	if err == nil && f.sb.FeatureIncompat.Has(layout.IncompatRecover) {
		err = fmt.Errorf("%w: the journal still needs recovery", ErrNeedsRecovery)
	}
	writeChecked.Store(f, &checkResult{err})
	return err
}

// openWritable is Open's writable path (Options.Writable): the reader
// must also be an io.WriterAt, and a filesystem the engine cannot write
// is refused at Open, before anything is written, rather than at the
// first write.
func (f *FS) openWritable() error {
	if _, ok := f.r.(io.WriterAt); !ok {
		return fmt.Errorf("ext: Options.Writable needs an io.WriterAt, %T is not one: %w", f.r, vfs.ErrReadOnly)
	}
	return f.checkWritable()
}
