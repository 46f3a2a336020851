package ext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs/ext/internal/jbd2"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// One journaled commit per injection (see writeorder.go for the order and
// what a crash leaves).
//
// While an injection runs, every transaction's writes are held by the
// caller (inject/diskimage/stage) and reach nothing. At the end the caller
// hands JournalCommit the byte ranges written; the engine reads their
// final contents through its device (the staging area) and returns the
// writes that put them on disk as ONE jbd2 transaction, with the flushes
// between them. Blocks that were free when the filesystem was opened and
// that this open allocated (new file data, new extent and directory
// blocks) are written in place before the commit (data=ordered: nothing
// the old filesystem references changes); every other block, metadata
// or data, goes through the journal.

// Op is one write of a commit plan, or a flush (Sync) of the device.
type Op struct {
	Off  int64
	Data []byte
	Sync bool
}

// freshSet remembers, across the transactions of one open, the blocks
// they allocated and the blocks they freed: a block allocated and never
// freed by this open was free when the filesystem was opened.
type freshSet struct {
	alloc map[uint64]bool
	freed map[uint64]bool
}

// record merges a committed transaction's allocations and frees.
func (s *freshSet) record(alloc, freed []blockRun) {
	if s.alloc == nil {
		s.alloc, s.freed = map[uint64]bool{}, map[uint64]bool{}
	}
	for _, r := range alloc {
		for b := r.start; b < r.start+r.n; b++ {
			s.alloc[b] = true
		}
	}
	for _, r := range freed {
		for b := r.start; b < r.start+r.n; b++ {
			s.freed[b] = true
		}
	}
}

// fresh reports whether block b was free when the filesystem was opened
// and is allocated now by this open's transactions.
func (s *freshSet) fresh(b uint64) bool { return s.alloc[b] && !s.freed[b] }

// ErrNotJournaled wraps the reason JournalCommit gives for not
// journaling: the caller then writes the staged writes in the engine's
// own order, with its barriers (writeorder.go).
var ErrNotJournaled = errs.New(errs.ErrUnsupported, "the commit cannot go through the journal")

// ErrNoJournal: the filesystem has no journal (ext2, ^has_journal); it
// wraps ErrNotJournaled.
var ErrNoJournal = fmt.Errorf("no journal: %w", ErrNotJournaled)

// JournalCommit returns the writes, in order and with their flushes, that
// commit the byte ranges written (each [offset, end)) as one jbd2
// transaction. base reads the filesystem as it is on disk, before any of
// the staged writes (the superblock is marked needs_recovery from it).
// It fails with an error wrapping ErrNotJournaled, and nothing to write,
// when the filesystem has no internal journal or one this writer refuses
// (external device, fast commits, unknown features, a v1 or
// COMPAT_CHECKSUM journal, a log too small for the transaction), or when
// the filesystem was grown. A journal replayed at open (its replay held
// in the staging area) keeps its live log: the transaction is appended
// after it (liveLog).
//
// It may run concurrently with reads and with other writes: it holds opMu
// for reading (so Grow's reload cannot replace the superblock it reads)
// and then the write engine's mu, the order every write takes them in.
func (f *FS) JournalCommit(base io.ReaderAt, written [][2]int64, now time.Time) ([]Op, error) {
	defer f.rlock()()
	f.wr.mu.Lock()
	defer f.wr.mu.Unlock()
	not := func(format string, args ...any) ([]Op, error) {
		return nil, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotJournaled)
	}
	switch js := f.journalStatus(); {
	case js.Kind == JournalNone:
		return nil, ErrNoJournal
	case js.Kind == JournalExternal:
		return not("ext: the journal is on an external device")
	case f.sb.BlocksCount() != f.wr.openBlocks:
		return not("ext: the filesystem was grown from %d to %d blocks", f.wr.openBlocks, f.sb.BlocksCount())
	case len(written) == 0:
		return nil, nil
	}
	l, err := f.openLog()
	if err != nil {
		return not("ext: journal: %v", err)
	}
	tail, err := f.liveLog(l, base)
	if err != nil {
		return nil, err
	}
	log, err := jbd2.FromSuperblock(l.j.raw, l.bs)
	if err != nil {
		return not("ext: %v", err)
	}
	nums, err := f.touchedBlocks(l, written, tail != nil)
	if err != nil {
		return nil, err
	}
	return f.journalPlan(l, log, base, nums, tail, now)
}

// logTail is where a live log on disk ends: the new transaction follows
// it, as the next one the kernel would have written.
type logTail struct {
	start  uint32          // the on-disk s_start
	at     uint32          // the log block after its last commit block
	seq    uint32          // the sequence after its last committed transaction
	logged map[uint64]bool // every block it logs: revoked if written in place
}

// liveLog returns the live log of a journal replayed at open (nil when
// the on-disk journal is empty). The engine wrote the replay and the
// emptied journal superblock into the staging area only: base still
// holds the log, which the new transaction extends, so a crash before
// its commit leaves the journal as it was (the replay gives the old
// filesystem) and one after gives the old transactions and the new.
func (f *FS) liveLog(l *jlog, base io.ReaderAt) (*logTail, error) {
	raw := make([]byte, layout.JournalSuperblockSize)
	if _, err := base.ReadAt(raw, int64(l.phys(0))*int64(l.bs)); err != nil {
		return nil, fmt.Errorf("ext: reading the on-disk journal superblock: %w", err)
	}
	jsb, err := layout.DecodeJournalSuperblock(raw)
	if err != nil {
		return nil, err
	}
	if jsb.Start == 0 {
		if l.j.Start != 0 {
			return nil, fmt.Errorf("ext: internal error: a live log in the staged journal only")
		}
		return nil, nil
	}
	if !f.wr.replayDone || jsb.Start < l.j.First || jsb.Start >= l.j.MaxLen {
		return nil, fmt.Errorf("ext: the on-disk journal holds a log (s_start %d) that was not replayed: %w", jsb.Start, ErrNotJournaled)
	}
	old := *l.j
	old.Start, old.Sequence, old.raw = jsb.Start, jsb.Sequence, jsb
	ol := *l
	ol.j = &old
	sc, err := ol.scan() // the log blocks are not staged: this reads the disk's
	if err != nil {
		return nil, err
	}
	*l.j = old
	return &logTail{start: jsb.Start, at: sc.endAt, seq: sc.seq, logged: sc.logged}, nil
}

// touchedBlocks lists the filesystem blocks the ranges touch, ascending;
// a write into the journal itself is not journaled (the replay's
// emptied journal superblock is left out: the plan writes its own).
func (f *FS) touchedBlocks(l *jlog, written [][2]int64, replayed bool) ([]uint64, error) {
	bs := f.geo.blockSize
	seen := map[uint64]bool{}
	var nums []uint64
	for _, w := range written {
		if w[0] < 0 || w[1] <= w[0] || w[1] > f.size {
			return nil, fmt.Errorf("ext: internal error: staged write [%d, %d) outside the %d-byte filesystem", w[0], w[1], f.size)
		}
		for b := uint64(w[0] / bs); b <= uint64((w[1]-1)/bs); b++ {
			if seen[b] {
				continue
			}
			if replayed && b == l.phys(0) {
				continue // the emptied journal superblock of the replay: D writes it
			}
			if l.inJournal(b) {
				return nil, fmt.Errorf("ext: a staged write touches block %d of the journal: %w", b, ErrNotJournaled)
			}
			if !f.validBlock(b) && b != f.sbBlock() && b != 0 {
				return nil, fmt.Errorf("ext: internal error: staged write to block %d outside the filesystem", b)
			}
			seen[b] = true
			nums = append(nums, b)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return nums, nil
}

// journalPlan builds the writes (see writeorder.go, "Journaled commit"):
//
//	A. fresh blocks in place; the on-disk superblock with needs_recovery;
//	   the log (descriptors, copies, commit block); flush
//	B. the journal superblock naming the log (s_start, s_sequence); flush.
//	   After a live log (a journal replayed at open), which already
//	   leads to the new transaction, A ends before the commit block,
//	   flush, and B is the commit block
//	C. the logged blocks in place (checkpoint; superblock still
//	   needs_recovery); flush
//	D. the journal superblock empty (s_start 0, next sequence) and the
//	   new superblock without needs_recovery (the caller's final flush)
func (f *FS) journalPlan(l *jlog, log *jbd2.Log, base io.ReaderAt, nums []uint64, tail *logTail, now time.Time) ([]Op, error) {
	bs := f.geo.blockSize
	sbBlk := f.sbBlock()
	var fresh []Op
	var logged []jbd2.Block
	var finalSB []byte
	hasSB := false
	for _, b := range nums {
		buf := make([]byte, bs)
		if err := f.readDisk(buf, int64(b)*bs, "staged block", b); err != nil {
			return nil, err
		}
		if b == sbBlk {
			hasSB = true
			in := int64(layout.SuperblockOffset) - int64(b)*bs
			finalSB = append([]byte(nil), buf[in:in+layout.SuperblockSize]...)
			f.markRecover(buf[in : in+layout.SuperblockSize])
		}
		if f.wr.fresh.fresh(b) && b != sbBlk {
			fresh = append(fresh, Op{Off: int64(b) * bs, Data: buf})
			continue
		}
		logged = append(logged, jbd2.Block{Home: b, Data: buf})
	}
	if !hasSB {
		return nil, fmt.Errorf("ext: internal error: a commit that does not write the superblock")
	}
	oldSB := make([]byte, layout.SuperblockSize)
	if _, err := base.ReadAt(oldSB, layout.SuperblockOffset); err != nil {
		return nil, fmt.Errorf("ext: reading the on-disk superblock: %w", err)
	}
	f.markRecover(oldSB)
	seq, start := l.j.Sequence, log.First
	var revoked []uint64
	if tail != nil { // after the live log, revoking its copies of what goes in place
		seq, start = tail.seq, tail.at
		for _, o := range fresh {
			if b := uint64(o.Off / bs); tail.logged[b] {
				revoked = append(revoked, b)
			}
		}
		room := (int64(tail.start) - int64(tail.at) + int64(log.Area())) % int64(log.Area())
		if need := log.Need(len(logged), len(revoked)); int64(need) > room {
			return nil, fmt.Errorf("ext: the transaction needs %d log blocks, %d are free after the live log: %w", need, room, ErrNotJournaled)
		}
	}
	lb, _, err := log.Write(seq, start, logged, revoked, now)
	if errors.Is(err, jbd2.ErrTooSmall) || errors.Is(err, jbd2.ErrUnsupported) {
		return nil, fmt.Errorf("ext: %w: %w", err, ErrNotJournaled)
	}
	if err != nil {
		return nil, err
	}
	jsbOff := int64(l.phys(0)) * bs
	live := make([]byte, layout.JournalSuperblockSize)
	if _, err := base.ReadAt(live, jsbOff); err != nil {
		return nil, fmt.Errorf("ext: reading the on-disk journal superblock: %w", err)
	}
	empty := append([]byte(nil), live...)
	if tail == nil {
		if err := jbd2.SetSuperblock(live, start, seq); err != nil {
			return nil, err
		}
	}
	if err := jbd2.SetSuperblock(empty, 0, seq+1); err != nil {
		return nil, err
	}
	ops := make([]Op, 0, len(fresh)+2*len(lb)+8)
	ops = append(ops, fresh...)
	ops = append(ops, Op{Off: layout.SuperblockOffset, Data: oldSB})
	body, commit := lb[:len(lb)-1], lb[len(lb)-1]
	for _, b := range body {
		ops = append(ops, Op{Off: int64(l.phys(b.At)) * bs, Data: b.Data})
	}
	commitOp := Op{Off: int64(l.phys(commit.At)) * bs, Data: commit.Data}
	if tail == nil { // B: the journal superblock makes the log live
		ops = append(ops, commitOp, Op{Sync: true}, Op{Off: jsbOff, Data: live}, Op{Sync: true})
	} else { // a live log leads to the new transaction: its commit block is the commit point
		ops = append(ops, Op{Sync: true}, commitOp, Op{Sync: true})
	}
	for _, b := range logged {
		ops = append(ops, Op{Off: int64(b.Home) * bs, Data: b.Data})
	}
	// D needs no flush before the process ends: until it is durable
	// the journal replays to the same new filesystem (the checkpoint is
	// durable). The caller still flushes it at the end (Image.Commit),
	// and must: the next writer of this image — the next injection
	// writes its log from the journal's first block again, a tool may
	// write in place — sees the journal empty, and a power loss while
	// its first writes are on disk but D is not would replay this
	// transaction's log over them (or a log half overwritten by the
	// next one). jbd2 likewise makes the new log tail durable before
	// it reuses the log. So four flushes: the log before the commit
	// point, the commit point before the checkpoint, the checkpoint
	// before the retirement, the retirement before any later write.
	ops = append(ops, Op{Sync: true}, Op{Off: jsbOff, Data: empty}, Op{Off: layout.SuperblockOffset, Data: finalSB})
	return ops, nil
}

// markRecover sets needs_recovery in a primary superblock's bytes and
// refreshes its checksum.
func (f *FS) markRecover(sb []byte) {
	v := binary.LittleEndian.Uint32(sb[layout.SuperblockIncompatOffset:]) | uint32(layout.IncompatRecover)
	binary.LittleEndian.PutUint32(sb[layout.SuperblockIncompatOffset:], v)
	if f.geo.metaCsum {
		putLE32(sb[layout.SuperblockChecksumOffset:], crc32c(^uint32(0), sb[:layout.SuperblockChecksumOffset]))
	}
}
