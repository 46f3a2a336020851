package ext

import (
	"fmt"

	"github.com/guestinject/guestinject/vfs/ext/layout"
)

// ErrNotClean: the superblock says the filesystem has errors, was not
// cleanly unmounted (it may be mounted), or is guarded by mmp; writes need
// Options.Force.
var ErrNotClean = fmt.Errorf("ext: filesystem not clean (Options.Force writes anyway): %w", ErrUnsupportedFeature)

// checkWriteState refuses, unless Options.Force, a filesystem whose state
// says it has errors or was not cleanly unmounted, or that uses mmp; and,
// always, one with an orphan list to process.
func (f *FS) checkWriteState() error {
	sb := f.sb
	if sb.LastOrphan != 0 {
		return fmt.Errorf("%w: orphan inode list starts at inode %d (run e2fsck)", ErrUnsupportedFeature, sb.LastOrphan)
	}
	if f.opts.Force {
		return nil
	}
	switch {
	case sb.State&layout.StateErrors != 0:
		return fmt.Errorf("%w: the superblock records errors (state %#x)", ErrNotClean, sb.State)
	case sb.State&layout.StateValid == 0:
		return fmt.Errorf("%w: not cleanly unmounted, or mounted now (state %#x)", ErrNotClean, sb.State)
	case sb.FeatureIncompat.Has(layout.IncompatMMP):
		return fmt.Errorf("%w: multiple-mount protection (mmp) is on; the block is not checked", ErrNotClean)
	}
	return nil
}
