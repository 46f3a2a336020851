package ext

import (
	"errors"
	"fmt"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// ErrUnclean: the superblock says the filesystem was not cleanly unmounted
// or has errors; Options.Force writes anyway.
var ErrUnclean = errs.NewForceable(errs.ErrUnclean, "ext: filesystem is not clean")

// checkWritableState decides, before anything is written, whether the
// filesystem may be written. In order:
//
//  1. MMP (mmp feature): a node or e2fsck may hold the filesystem: refuse
//     (ErrInUse) unless Force.
//  2. s_state without VALID, or with ERROR_FS: refuse (ErrUnclean) unless
//     Force.
//  3. the internal journal's superblock must be sound, with no error
//     recorded (s_errno, an aborted journal: e2fsck would flag the
//     filesystem) and no log left while needs_recovery is clear: refuse
//     (ErrUnclean) unless Force.
//  4. needs_recovery: replay the internal journal into memory
//     (replayInMemory), or refuse with an error wrapping ErrNeedsRecovery
//     when that cannot be done safely; then 1-3 again, on the replayed
//     filesystem.
//  5. orphan inodes (s_last_orphan list, orphan_file entries), on the
//     replayed filesystem: refuse (ErrOrphans) unless Force; e2fsck
//     processes them. With none, a stale orphan_present flag is cleared,
//     as the kernel's unmount does.
//
// Nothing here writes: the replay and the superblock's edits (needs_recovery
// and orphan_present cleared, free counts recounted) stay pending in memory,
// where every read sees them, until the first commit writes them
// (flushPending). So a refusal, at any step or later, leaves the image
// byte for byte as it was, and a dry run makes the same checks.
//
// It runs once per FS, at Open (checkWritable), before reads are shared:
// the replay reloads the superblock and drops the caches.
func (f *FS) checkWritableState() error {
	restore := f.warnOnce()
	defer restore()
	if err := f.checkState(); err != nil {
		return err
	}
	if f.sb.FeatureIncompat.Has(layout.IncompatRecover) {
		n, err := f.replayInMemory()
		if err != nil {
			return err
		}
		f.warn(fmt.Sprintf("ext: replayed the journal in memory (%d blocks); they reach the image before the first change", n))
		if err := f.checkState(); err != nil {
			return err
		}
	}
	if err := f.checkOrphans(); err != nil {
		if !f.opts.Force || !errors.Is(err, ErrOrphans) {
			return err
		}
		f.warn("ext: writing despite orphan inodes: " + err.Error())
	}
	return nil
}

// checkState runs steps 1-3 of checkWritableState.
func (f *FS) checkState() error {
	if err := f.checkMMP(); err != nil {
		return err
	}
	if err := f.checkCleanState(); err != nil {
		return err
	}
	return f.checkJournalHealth()
}

// warnOnce makes Options.Warn drop repeated messages (the checks run
// twice around a replay) until the returned func restores it.
func (f *FS) warnOnce() (restore func()) {
	warn := f.opts.Warn
	if warn == nil {
		return func() {}
	}
	seen := map[string]bool{}
	f.opts.Warn = func(m string) {
		if !seen[m] {
			seen[m] = true
			warn(m)
		}
	}
	return func() { f.opts.Warn = warn }
}

// checkCleanState refuses, unless Force, a superblock whose state is not
// VALID or records errors.
func (f *FS) checkCleanState() error {
	st := f.sb.State
	var why string
	switch {
	case st&layout.StateErrors != 0:
		why = fmt.Sprintf("the superblock records errors (state %#x)", st)
	case st&layout.StateValid == 0:
		why = fmt.Sprintf("it was not cleanly unmounted (state %#x)", st)
	default:
		return nil
	}
	if f.opts.Force {
		f.warn("ext: writing although " + why)
		return nil
	}
	return fmt.Errorf("%w: %s; run e2fsck, or force", ErrUnclean, why)
}

// checkJournalHealth refuses, unless Force, an internal journal whose
// superblock records an error or still holds a log the filesystem does
// not ask to replay. A journal superblock that fails validation is
// refused whatever Force says.
func (f *FS) checkJournalHealth() error {
	js := f.journalStatus()
	if js.Kind != JournalInternal {
		return nil
	}
	j, err := f.Journal()
	if err != nil && js.NeedsRecovery {
		return fmt.Errorf("%w: %w", ErrNeedsRecovery, err)
	}
	if err != nil {
		return fmt.Errorf("ext: checking the journal before writing: %w", err)
	}
	var why string
	switch {
	case j.Errno != 0:
		why = fmt.Sprintf("the journal records error %d (it was aborted)", j.Errno)
	case j.Start != 0 && !js.NeedsRecovery:
		why = fmt.Sprintf("the journal holds a log from block %d but needs_recovery is clear", j.Start)
	default:
		return nil
	}
	if f.opts.Force {
		f.warn("ext: writing although " + why)
		return nil
	}
	return fmt.Errorf("%w: %s; run e2fsck, or force", ErrUnclean, why)
}
