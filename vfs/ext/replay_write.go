package ext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// A journal that needs recovery is replayed into memory first: the
// replayed blocks, the emptied journal superblock and the primary
// superblock as it must be written become a pending overlay that every
// read of the engine sees (FS.readAt). Every check that may refuse a
// write (features, MMP, s_state, the journal, orphans) then runs on the
// replayed view, and so does a dry run's planning. Nothing reaches the
// image until the first transaction commits (flushPending), and a
// refusal, a dry run or a read-only open leaves it byte for byte as it
// was.
//
// Write order of the flush, as e2fsck's replay: every home block (then
// Sync, when the writer has it); then the journal superblock marked
// empty; then the primary superblock without needs_recovery (with the
// other pending edits: free counts recounted, a stale orphan_present
// cleared). The transaction's own blocks follow. A crash or an error
// before the journal superblock is written leaves the journal intact and
// needs_recovery set, so a later replay (ours or e2fsck's) redoes the
// same, idempotent, writes.
//
// Memory: the overlay keeps one 16-byte entry per distinct block the log
// carries home, at most one per journal block (MaxLen-First: 512 KiB for
// the default 128 MiB journal of 4 KiB blocks, 4 MiB for a 1 GiB one),
// the journal's block map (at most maxJournalRuns runs) and two 1 KiB
// superblocks. The logged contents stay in the journal, which nothing
// writes before the flush, and are read from it when a read overlaps
// them.

// pending is what the checks before the first write decided to write and
// have not written. A pending value is never modified once installed: an
// edit installs a changed copy, so concurrent readers need no lock.
type pending struct {
	log    *jlog         // the replayed journal; nil when nothing was replayed
	homes  []loggedBlock // the replay plan, sorted by home block
	jsb    []byte        // the journal superblock marked empty (with log)
	jsbOff int64
	sb     []byte // the primary superblock to write (SuperblockSize bytes); nil when unchanged
}

// syncer is implemented by writers that can flush to stable storage.
type syncer interface{ Sync() error }

// JournalReplayed reports whether this FS replayed its journal and how
// many blocks the replay carries home. The replay is held in memory until
// the first write commits; Info.JournalReplayPending says whether it has
// reached the image yet.
func (f *FS) JournalReplayed() (blocks int, replayed bool) {
	return f.wr.replayBlocks, f.wr.replayDone
}

// replayPending reports whether a replay is held in memory, not written.
func (f *FS) replayPending() bool {
	pd := f.wr.pend.Load()
	return pd != nil && pd.log != nil
}

// replayInMemory replays the internal journal of a filesystem whose
// superblock says needs_recovery, as e2fsck would, into the pending
// overlay: reads see the replayed filesystem, the image is not written.
// After it the superblock (f.sb) has needs_recovery clear and free counts
// summed from the group descriptors, as the kernel and e2fsck recount
// them after a recovery (an O(groups) read of the descriptor table, paid
// only after a replay). A journal that cannot be replayed safely
// (external device, fast commits, unknown features, a checksum mismatch,
// a block outside the filesystem, a replayed superblock that fails
// validation) is refused with an error wrapping ErrNeedsRecovery and the
// cause, and the FS is left as it was.
func (f *FS) replayInMemory() (replayed int, err error) {
	if f.wr.pend.Load() != nil { // the replay comes first: nothing may be pending under it
		return 0, fmt.Errorf("%w: internal error: a replay over pending changes", ErrNeedsRecovery)
	}
	defer func() {
		if r := recover(); r != nil { // a bug, never a reason to show garbage
			err = fmt.Errorf("%w: internal error replaying the journal: %v", ErrNeedsRecovery, r)
		}
		if err != nil {
			replayed = 0
			f.wr.pend.Store(nil)
			if rerr := f.reload(); rerr != nil {
				err = fmt.Errorf("%w (and reloading the superblock: %w)", err, rerr)
			}
		}
	}()
	js := f.journalStatus()
	if js.Kind == JournalExternal {
		return 0, fmt.Errorf("%w: the journal is on an external device (UUID %s): replay it with e2fsck -fy -j DEVICE", ErrNeedsRecovery, UUIDString(js.DeviceUUID))
	}
	if js.Kind != JournalInternal {
		return 0, fmt.Errorf("%w: needs_recovery is set but the filesystem has no journal: %w", ErrNeedsRecovery, vfs.ErrCorrupt)
	}
	l, err := f.openLog()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNeedsRecovery, err)
	}
	plan, next, err := l.plan()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNeedsRecovery, err)
	}
	pd := &pending{log: l, homes: plan}
	if pd.jsb, pd.jsbOff, err = l.emptied(next); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNeedsRecovery, err)
	}
	f.wr.pend.Store(pd)
	err = f.editSuper("after journal replay", func(sb *layout.Superblock) {
		sb.FeatureIncompat &^= layout.IncompatRecover
	})
	if err == nil {
		err = f.recountFree()
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNeedsRecovery, err)
	}
	f.wr.replayBlocks, f.wr.replayDone = len(plan), true
	return len(plan), nil
}

// plan runs the three passes and returns the blocks to write home and the
// sequence the empty journal continues from.
func (l *jlog) plan() ([]loggedBlock, uint32, error) {
	if l.j.Start == 0 { // the journal is empty: only the flag is stale
		return nil, l.j.Sequence, nil
	}
	txs, revoked, end, err := l.scanLog()
	if err != nil {
		return nil, 0, err
	}
	plan, err := l.replayPlan(txs, revoked)
	return plan, end + 1, err
}

// emptied returns the journal superblock as it is once the log is
// replayed: no log (s_start 0), the next transaction numbered next, the
// checksum updated; and its byte offset in the filesystem.
func (l *jlog) emptied(next uint32) ([]byte, int64, error) {
	buf := make([]byte, layout.JournalSuperblockSize)
	off := int64(l.phys(0)) * int64(l.bs)
	if err := l.f.readDisk(buf, off, "journal superblock", 0); err != nil {
		return nil, 0, err
	}
	if binary.BigEndian.Uint32(buf) != layout.JournalMagic {
		return nil, 0, corrupt("journal superblock", 0, l.j.Inode, off, "magic %#x", binary.BigEndian.Uint32(buf))
	}
	binary.BigEndian.PutUint32(buf[layout.JournalSequenceOffset:], next)
	binary.BigEndian.PutUint32(buf[layout.JournalStartOffset:], 0)
	if l.csum23 {
		clear(buf[layout.JournalCsumOffset : layout.JournalCsumOffset+4])
		binary.BigEndian.PutUint32(buf[layout.JournalCsumOffset:], crc32c(^uint32(0), buf))
	}
	return buf, off, nil
}

// copyOf reads the logged copy of b into buf (one block), restoring an
// escaped magic.
func (l *jlog) copyOf(b loggedBlock, buf []byte) error {
	if err := l.read(b.at, buf); err != nil {
		return err
	}
	if b.escape {
		binary.BigEndian.PutUint32(buf, layout.JournalMagic)
	}
	return nil
}

// overlay lays the pending blocks over p, which was read from the image
// at byte offset off: the replayed home blocks, then the journal
// superblock, then the primary superblock.
func (pd *pending) overlay(p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	if l := pd.log; l != nil {
		bs := int64(l.bs)
		first, last := uint64(off/bs), uint64((off+int64(len(p))-1)/bs)
		i := sort.Search(len(pd.homes), func(i int) bool { return pd.homes[i].home >= first })
		var buf []byte
		for ; i < len(pd.homes) && pd.homes[i].home <= last; i++ {
			if buf == nil {
				buf = make([]byte, bs)
			}
			if err := l.copyOf(pd.homes[i], buf); err != nil {
				return err
			}
			layOver(p, off, buf, int64(pd.homes[i].home)*bs)
		}
		layOver(p, off, pd.jsb, pd.jsbOff)
	}
	if pd.sb != nil {
		layOver(p, off, pd.sb, layout.SuperblockOffset)
	}
	return nil
}

// layOver copies into p (which holds the bytes at off) the part of src
// (which belongs at srcOff) that overlaps it.
func layOver(p []byte, off int64, src []byte, srcOff int64) {
	lo, hi := max(off, srcOff), min(off+int64(len(p)), srcOff+int64(len(src)))
	if lo < hi {
		copy(p[lo-off:hi-off], src[lo-srcOff:])
	}
}

// editSuper changes the primary superblock as reads see it: edit gets the
// current view decoded, and the result (checksum updated) becomes the
// pending superblock, which the first commit writes. The filesystem's view
// is reloaded: superblock, geometry and every cache.
func (f *FS) editSuper(when string, edit func(sb *layout.Superblock)) error {
	buf := make([]byte, layout.SuperblockSize)
	if err := f.readAt(buf, layout.SuperblockOffset, "superblock", 0); err != nil {
		return err
	}
	sb, err := layout.DecodeSuperblock(buf)
	if err != nil {
		return err
	}
	if sb.Magic != layout.Magic {
		return sbErr("the superblock %s has magic %#04x", when, sb.Magic)
	}
	edit(sb)
	if err := sb.Encode(buf); err != nil {
		return err
	}
	if sb.FeatureROCompat.Has(layout.ROCompatMetadataCsum) {
		binary.LittleEndian.PutUint32(buf[layout.SuperblockChecksumOffset:], crc32c(^uint32(0), buf[:layout.SuperblockChecksumOffset]))
	}
	old, pd := f.wr.pend.Load(), &pending{}
	if old != nil {
		*pd = *old
	}
	pd.sb = buf
	f.wr.pend.Store(pd)
	if err := f.reload(); err != nil {
		f.wr.pend.Store(old) // the view as it was
		return errors.Join(fmt.Errorf("ext: the superblock %s: %w", when, err), f.reload())
	}
	return nil
}

// recountFree sets the superblock's free block and inode counts to the
// sums over the group descriptors. The kernel keeps those sums in memory
// and writes them to the superblock only now and then, so after a crash
// the superblock's counts are stale; the kernel and e2fsck recount them
// from the descriptors after a recovery, and so does this, after a
// replay only: it reads the whole descriptor table (O(groups)).
func (f *FS) recountFree() error {
	var blocks, inodes uint64
	for g := uint32(0); g < f.geo.groups; g++ {
		d, err := f.groupDesc(g)
		if err != nil {
			return err
		}
		blocks += uint64(d.FreeBlocksCount())
		inodes += uint64(d.FreeInodesCount())
	}
	blocks *= uint64(f.geo.clusterSize / f.geo.blockSize) // descriptors count clusters
	if blocks > f.geo.blocksCount || inodes > uint64(f.sb.InodesCount) {
		return sbErr("the group descriptors count %d free blocks and %d free inodes, more than the filesystem's %d and %d",
			blocks, inodes, f.geo.blocksCount, f.sb.InodesCount)
	}
	if blocks == f.sb.FreeBlocksCount() && inodes == uint64(f.sb.FreeInodesCount) {
		return nil
	}
	return f.editSuper("recounting free blocks and inodes", func(sb *layout.Superblock) {
		sb.SetFreeBlocksCount(blocks)
		sb.FreeInodesCount = uint32(inodes)
	})
}

// flushPending writes what the checks left pending, in the order above,
// through w: called by the first commit before its own blocks. Once
// written, reads go to the image alone.
func (f *FS) flushPending(w io.WriterAt) error {
	pd := f.wr.pend.Load()
	if pd == nil {
		return nil
	}
	if l := pd.log; l != nil {
		if err := l.writeHome(w, pd.homes); err != nil {
			return err
		}
		if err := writeSynced(w, pd.jsb, pd.jsbOff, "the journal superblock"); err != nil {
			return err
		}
	}
	if pd.sb != nil {
		if err := writeSynced(w, pd.sb, layout.SuperblockOffset, "the superblock"); err != nil {
			return err
		}
	}
	f.wr.pend.Store(nil)
	return nil
}

// writeHome copies each planned block from the log to its home, then
// syncs.
func (l *jlog) writeHome(w io.WriterAt, plan []loggedBlock) error {
	buf := make([]byte, l.bs)
	for _, b := range plan {
		if err := l.copyOf(b, buf); err != nil {
			return err
		}
		if _, err := w.WriteAt(buf, int64(b.home)*int64(l.bs)); err != nil {
			return fmt.Errorf("ext: replaying journal block %d to block %d: %w", b.at, b.home, err)
		}
	}
	return syncWriter(w)
}

// writeSynced writes p at off, then syncs.
func writeSynced(w io.WriterAt, p []byte, off int64, what string) error {
	if _, err := w.WriteAt(p, off); err != nil {
		return fmt.Errorf("ext: writing %s: %w", what, err)
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

// reload re-reads the superblock (through the pending overlay) and drops
// every cache, so reads see the replayed metadata.
func (f *FS) reload() error {
	if err := f.loadSuperblock(); err != nil {
		return err
	}
	f.cache.drop()
	return nil
}
