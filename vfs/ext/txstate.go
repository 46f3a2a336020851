package ext

import (
	"fmt"
	"sync"

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
