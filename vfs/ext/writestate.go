package ext

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// writeState is the write engine's state on an FS (tx.go): one
// transaction at a time, the outcome of the checks made before the first
// write, what those checks left pending, and what the journaled commit
// (jcommit.go) needs to know of this open. Only the write engine touches
// it, under these rules:
//
//   - mu serialises the transactions: begin takes it and the transaction
//     holds it until commit or abort; JournalCommit takes it too, with
//     opMu held for reading. A write operation takes it with opMu already
//     held for writing: opMu always first.
//   - check is set once, by checkWritable: at Open, before the FS is
//     shared, or under mu. fixedMeta is filled once, under mu, and fresh
//     is changed and read under mu.
//   - pend is read by every read (FS.readAt), with or without mu: it is
//     set at Open and cleared, under mu and opMu held for writing, by the
//     first commit.
//   - replayBlocks, replayDone and openBlocks are set at Open and only
//     read after.
type writeState struct {
	mu        sync.Mutex
	check     *checkResult
	fixedMeta *fixedMetaCache // metadata outside the descriptors (writecheck.go)

	// pend is what the checks before the first write decided to write
	// (replay_write.go): reads see it, the first commit writes it.
	pend atomic.Pointer[pending]
	// replayBlocks and replayDone record a journal replay (made at Open).
	replayBlocks int
	replayDone   bool
	// fresh and openBlocks serve the journaled commit (jcommit.go): the
	// blocks this open allocated that were free at open, and the block
	// count at open.
	fresh      freshSet
	openBlocks uint64
}

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
	if f.wr.check != nil {
		return f.wr.check.err
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
	f.wr.check = &checkResult{err}
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
