package ext

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/layout"
)

// Replay write order: every home block first (then Sync, when the writer
// has it); then the journal superblock is marked empty; then the
// filesystem superblock loses its RECOVER flag. A crash or an error
// before the journal superblock is written leaves the journal intact and
// RECOVER set, so a later replay (ours or e2fsck's) redoes the same,
// idempotent, writes.

// replays records, per FS, how many blocks its journal replay wrote.
var replays sync.Map // *FS -> int

// JournalReplayed reports whether this FS replayed its journal (when
// opened writable over a journal that needed recovery) and how many
// blocks the replay wrote home.
func (f *FS) JournalReplayed() (blocks int, replayed bool) {
	v, ok := replays.Load(f)
	if !ok {
		return 0, false
	}
	return v.(int), true
}

// syncer is implemented by writers that can flush to stable storage.
type syncer interface{ Sync() error }

// writerAt returns the writer replay writes through.
func (f *FS) writerAt() (io.WriterAt, error) {
	w, ok := f.r.(io.WriterAt)
	if !ok {
		return nil, fmt.Errorf("ext: replaying the journal: %w (the image is not writable)", vfs.ErrReadOnly)
	}
	return w, nil
}

// replayJournal replays the internal journal of a filesystem whose
// superblock says needs_recovery, as e2fsck would, and returns the number
// of blocks written home. A journal that cannot be replayed safely
// (external device, fast commits, unknown features, a checksum mismatch,
// a block outside the filesystem) is refused, before anything is
// written, with an error wrapping ErrNeedsRecovery and the cause.
func (f *FS) replayJournal() (replayed int, err error) {
	defer func() {
		if r := recover(); r != nil { // a bug, never a reason to write garbage
			replayed, err = 0, fmt.Errorf("%w: internal error replaying the journal: %v", ErrNeedsRecovery, r)
		}
	}()
	js := f.journalStatus()
	if js.Kind == JournalExternal {
		return 0, fmt.Errorf("%w: the journal is on an external device (UUID %s): replay it with e2fsck -fy -j DEVICE", ErrNeedsRecovery, UUIDString(js.DeviceUUID))
	}
	if js.Kind != JournalInternal {
		return 0, fmt.Errorf("%w: needs_recovery is set but the filesystem has no journal: %w", ErrNeedsRecovery, vfs.ErrCorrupt)
	}
	w, err := f.writerAt()
	if err != nil {
		return 0, err
	}
	l, err := f.openLog()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNeedsRecovery, err)
	}
	plan, next, err := l.plan()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNeedsRecovery, err)
	}
	if err := l.writeHome(w, plan); err != nil {
		return 0, err
	}
	if err := l.markEmpty(w, next); err != nil {
		return len(plan), err
	}
	if err := f.clearRecover(w); err != nil {
		return len(plan), err
	}
	replays.Store(f, len(plan))
	return len(plan), nil
}

// plan runs the three passes and returns the blocks to write home and the
// sequence the empty journal continues from.
func (l *jlog) plan() ([]loggedBlock, uint32, error) {
	if l.j.Start == 0 { // the journal is empty: only the flag is stale
		return nil, l.j.Sequence, nil
	}
	txs, end, err := l.scanLog()
	if err != nil {
		return nil, 0, err
	}
	plan, err := l.replayPlan(txs, revokeTable(txs))
	return plan, end + 1, err
}

// writeHome copies each planned block from the log to its home, then
// syncs.
func (l *jlog) writeHome(w io.WriterAt, plan []loggedBlock) error {
	buf := make([]byte, l.bs)
	for _, b := range plan {
		if err := l.read(b.at, buf); err != nil {
			return err
		}
		if b.escape {
			binary.BigEndian.PutUint32(buf, layout.JournalMagic)
		}
		if _, err := w.WriteAt(buf, int64(b.home)*int64(l.bs)); err != nil {
			return fmt.Errorf("ext: replaying journal block %d to block %d: %w", b.at, b.home, err)
		}
	}
	return syncWriter(w)
}

// syncWriter flushes w when it can.
func syncWriter(w io.WriterAt) error {
	if s, ok := w.(syncer); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("ext: syncing after journal replay: %w", err)
		}
	}
	return nil
}

// Journal superblock field offsets (big-endian).
const (
	jsbSequenceOff = 0x18
	jsbStartOff    = 0x1C
)

// markEmpty rewrites the journal superblock: no log (s_start 0), the
// next transaction numbered next, checksum updated.
func (l *jlog) markEmpty(w io.WriterAt, next uint32) error {
	buf := make([]byte, layout.JournalSuperblockSize)
	off := int64(l.phys(0)) * int64(l.bs)
	if err := l.f.readAt(buf, off, "journal superblock", 0); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(buf) != layout.JournalMagic {
		return corrupt("journal superblock", 0, l.j.Inode, off, "magic changed during replay: a logged block overwrote the journal")
	}
	binary.BigEndian.PutUint32(buf[jsbSequenceOff:], next)
	binary.BigEndian.PutUint32(buf[jsbStartOff:], 0)
	if l.csum23 {
		clear(buf[layout.JournalCsumOffset : layout.JournalCsumOffset+4])
		binary.BigEndian.PutUint32(buf[layout.JournalCsumOffset:], crc32c(^uint32(0), buf))
	}
	if _, err := w.WriteAt(buf, off); err != nil {
		return fmt.Errorf("ext: writing the journal superblock: %w", err)
	}
	return syncWriter(w)
}

// clearRecover re-reads the (possibly replayed) superblock, clears
// needs_recovery, updates its checksum, writes it and reloads the
// filesystem's view: superblock, geometry and every cache.
func (f *FS) clearRecover(w io.WriterAt) error {
	return f.rewriteSuper(w, "after journal replay", func(buf []byte, sb *layout.Superblock) {
		const incompatOff = 0x60
		binary.LittleEndian.PutUint32(buf[incompatOff:], uint32(sb.FeatureIncompat&^layout.IncompatRecover))
	})
}

// rewriteSuper re-reads the primary superblock from disk, lets edit
// change its bytes, updates the checksum, writes it, syncs and reloads.
func (f *FS) rewriteSuper(w io.WriterAt, when string, edit func(buf []byte, sb *layout.Superblock)) error {
	buf := make([]byte, layout.SuperblockSize)
	if err := f.readAt(buf, layout.SuperblockOffset, "superblock", 0); err != nil {
		return err
	}
	sb, err := layout.DecodeSuperblock(buf)
	if err != nil {
		return err
	}
	if sb.Magic != layout.Magic {
		return fmt.Errorf("%w: %w", ErrNeedsRecovery, sbErr("the superblock %s has magic %#04x", when, sb.Magic))
	}
	edit(buf, sb)
	if sb.FeatureROCompat.Has(layout.ROCompatMetadataCsum) {
		binary.LittleEndian.PutUint32(buf[layout.SuperblockChecksumOffset:], crc32c(^uint32(0), buf[:layout.SuperblockChecksumOffset]))
	}
	if _, err := w.WriteAt(buf, layout.SuperblockOffset); err != nil {
		return fmt.Errorf("ext: writing the superblock %s: %w", when, err)
	}
	if err := syncWriter(w); err != nil {
		return err
	}
	return f.reload()
}

// reload re-reads the superblock and drops every cache, so reads see the
// replayed metadata.
func (f *FS) reload() error {
	if err := f.loadSuperblock(); err != nil {
		return fmt.Errorf("ext: the superblock after journal replay: %w", err)
	}
	f.blocks = newLRU[uint64, []byte](blockCacheEntries)
	f.inodes = newLRU[uint32, *inode](inodeCacheEntries)
	f.descs = newLRU[uint32, *layout.GroupDesc](descCacheEntries)
	return nil
}
