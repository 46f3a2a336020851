package ext

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Journal replay follows the jbd2 recovery algorithm in three passes:
//
//  1. scan: from s_start/s_sequence, walk descriptor, revoke and commit
//     blocks while each block carries the jbd2 magic and the expected
//     sequence; a transaction counts once its commit block is found. Every
//     checksum (descriptor and revoke tails, logged-block tags, commit
//     blocks, the old COMPAT_CHECKSUM) is verified here, so a journal we
//     refuse is refused before anything is written.
//  2. revoke: the revoke records of the committed transactions form a
//     table block -> newest revoking transaction, built as the scan
//     commits each transaction and holding only blocks logged so far (a
//     revoke cancels copies in its own and earlier transactions only), so
//     it is no larger than the log.
//  3. replay: every block logged by a committed transaction and not
//     revoked by the same or a later one is copied home, the newest copy
//     winning.
//
// The log is bounded by the journal: at most MaxLen-First blocks are
// walked (a log cannot be longer than its area), tags per descriptor by
// the block size, revoke records by the block size and a global cap.
// Memory follows the log, not the filesystem: the transactions' lists,
// the set of logged blocks, the revoke table and pass 3's map hold at
// most one entry per log block (about 300 bytes per logged block in all,
// measured: 4.7 MB for a 16,000-block log), plus the revoke records of the
// one transaction being read (maxRevokeRecords at most). They are dropped
// after the scan; the replay then keeps its 16-byte plan entries
// (replay_write.go).

// loggedBlock is one block a transaction logged.
type loggedBlock struct {
	home   uint64 // filesystem block it belongs to
	at     uint32 // journal block holding the copy
	escape bool   // the copy's first four bytes must be restored to the jbd2 magic
}

// transaction is what the scan learnt of one transaction.
type transaction struct {
	seq    uint32
	blocks []loggedBlock
}

// logScan is the state of pass 1.
type logScan struct {
	l         *jlog
	seq       uint32 // sequence of the open transaction
	at        uint32 // next log block
	endAt     uint32 // the log block after the last commit block read
	left      uint32 // log blocks the walk may still consume
	cur       transaction
	done      []transaction // committed transactions, oldest first
	crc       uint32        // COMPAT_CHECKSUM running crc32_be
	revokes   []uint64      // revoke records of the open transaction
	nrevokes  int           // revoke records read, all transactions
	logged    map[uint64]bool
	revoked   map[uint64]uint32 // pass 2: block -> newest committed transaction revoking it
	buf, data []byte
}

// maxRevokeRecords bounds the revoke table a hostile journal can build.
const maxRevokeRecords = 1 << 22

// errEndOfLog ends the scan: the block does not continue the log.
var errEndOfLog = fmt.Errorf("end of log")

// scanLog runs passes 1 and 2: it returns the committed transactions,
// the revoke table (block -> newest committed transaction revoking it)
// and the sequence of the first transaction not found.
func (l *jlog) scanLog() ([]transaction, map[uint64]uint32, uint32, error) {
	s, err := l.scan()
	if err != nil {
		return nil, nil, 0, err
	}
	return s.done, s.revoked, s.seq, nil
}

// scan runs passes 1 and 2 and returns their state.
func (l *jlog) scan() (*logScan, error) {
	s := &logScan{l: l, seq: l.j.Sequence, at: l.j.Start, endAt: l.j.Start, left: l.j.MaxLen - l.j.First,
		crc: ^uint32(0), buf: make([]byte, l.bs), data: make([]byte, l.bs),
		logged: map[uint64]bool{}, revoked: map[uint64]uint32{}}
	s.cur.seq = s.seq
	for s.left > 0 {
		err := s.step()
		if err == errEndOfLog {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// take reads the next log block into buf and returns its number.
func (s *logScan) take(buf []byte) (uint32, error) {
	if s.left == 0 {
		return 0, errEndOfLog
	}
	lb := s.at
	s.at, s.left = s.l.next(s.at), s.left-1
	return lb, s.l.read(lb, buf)
}

// step consumes one metadata block of the log and what it describes.
func (s *logScan) step() error {
	lb, err := s.take(s.buf)
	if err != nil {
		return err
	}
	h := layout.DecodeJournalHeader(s.buf)
	if h.Magic != layout.JournalMagic || h.Sequence != s.seq {
		return errEndOfLog
	}
	switch h.BlockType {
	case layout.JournalBlockDescriptor:
		return s.descriptor(lb)
	case layout.JournalBlockRevoke:
		return s.revoke(lb)
	case layout.JournalBlockCommit:
		return s.commit(lb)
	}
	return errEndOfLog // an unknown block type ends the log, as in jbd2
}

// descriptor reads the tags of a descriptor block and the blocks they log.
func (s *logScan) descriptor(lb uint32) error {
	l := s.l
	if err := l.checkTail(lb, s.buf, "descriptor"); err != nil {
		return err
	}
	tags := l.parseTags(s.buf)
	if l.compat {
		s.crc = crc32BE(s.crc, s.buf)
	}
	for _, tag := range tags {
		at, err := s.take(s.data)
		if err == errEndOfLog {
			return errEndOfLog // the log ends inside this transaction
		}
		if err != nil {
			return err
		}
		if err := l.checkData(at, s.data, s.seq, tag); err != nil {
			return err
		}
		if l.compat {
			s.crc = crc32BE(s.crc, s.data)
		}
		s.cur.blocks = append(s.cur.blocks, loggedBlock{home: tag.Block, at: at, escape: tag.Flags.Has(layout.TagEscape)})
		s.logged[tag.Block] = true
	}
	return nil
}

// parseTags decodes the tags of descriptor block b: they stop at the
// LAST_TAG flag or where the next tag would overrun the block.
func (l *jlog) parseTags(b []byte) []layout.JournalTag {
	var tags []layout.JournalTag
	limit := len(b) - l.tail
	for off := layout.JournalHeaderSize; off+l.tagSize <= limit; {
		t := layout.DecodeJournalTag(b[off:], l.inc)
		tags = append(tags, t)
		off += l.tagSize
		if !t.Flags.Has(layout.TagSameUUID) {
			off += layout.JournalTagUUIDSize
		}
		if t.Flags.Has(layout.TagLastTag) {
			break
		}
	}
	return tags
}

// revoke records the block numbers a revoke block lists.
func (s *logScan) revoke(lb uint32) error {
	l := s.l
	if err := l.checkTail(lb, s.buf, "revoke"); err != nil {
		return err
	}
	count := binary.BigEndian.Uint32(s.buf[layout.JournalHeaderSize:])
	if count < layout.JournalRevokeHeaderSize || int64(count) > int64(l.bs-l.tail) {
		return l.bad(lb, "revoke block claims %d bytes of a %d-byte block", count, l.bs-l.tail)
	}
	rec := layout.JournalRevokeRecordSize(l.inc)
	n := (int(count) - layout.JournalRevokeHeaderSize) / rec
	if s.nrevokes += n; s.nrevokes > maxRevokeRecords {
		return l.bad(lb, "more than %d revoke records", maxRevokeRecords)
	}
	for off := layout.JournalRevokeHeaderSize; off+rec <= int(count); off += rec {
		var b uint64
		if rec == 8 {
			b = binary.BigEndian.Uint64(s.buf[off:])
		} else {
			b = uint64(binary.BigEndian.Uint32(s.buf[off:]))
		}
		s.revokes = append(s.revokes, b)
	}
	return nil
}

// closeRevokes enters the committed transaction's revoke records in the
// revoke table: only for blocks logged so far (by it or an earlier
// transaction), the only copies a revoke can cancel; the newest
// transaction wins, and the scan meets them oldest first.
func (s *logScan) closeRevokes() {
	for _, b := range s.revokes {
		if s.logged[b] {
			s.revoked[b] = s.seq
		}
	}
	s.revokes = s.revokes[:0]
}

// commit verifies a commit block and closes the open transaction.
func (s *logScan) commit(lb uint32) error {
	l := s.l
	switch {
	case l.csum23:
		if err := l.checkCommit(lb, s.buf); err != nil {
			return err
		}
	case l.compat:
		if err := s.checkCompatSum(lb); err != nil {
			return err
		}
	}
	s.done = append(s.done, s.cur)
	s.endAt = s.at
	s.closeRevokes()
	s.seq++
	s.cur = transaction{seq: s.seq}
	s.crc = ^uint32(0)
	return nil
}

// checkCompatSum checks the COMPAT_CHECKSUM crc32_be of the transaction
// (a commit block may also leave the checksum unused: all zero).
func (s *logScan) checkCompatSum(lb uint32) error {
	c := layout.DecodeJournalCommitHeader(s.buf)
	if c.ChecksumType == 0 && c.ChecksumSize == 0 && c.Checksum[0] == 0 {
		return nil
	}
	if c.ChecksumType != layout.JournalCRC32Chksum || c.ChecksumSize != layout.JournalCRC32ChksumSize || c.Checksum[0] != s.crc {
		return s.l.badSum(lb, fmt.Sprintf("commit block (crc32 type %d size %d)", c.ChecksumType, c.ChecksumSize), c.Checksum[0], s.crc)
	}
	return nil
}

// tidAfter reports whether transaction ID a comes after b, modulo 2^32.
func tidAfter(a, b uint32) bool { return int32(a-b) > 0 }

// replayPlan runs pass 3: for each home block, the newest logged copy
// that no revoke cancels, sorted by home block. Every home block is
// checked to lie inside the filesystem and outside the journal.
func (l *jlog) replayPlan(txs []transaction, revoked map[uint64]uint32) ([]loggedBlock, error) {
	newest := make(map[uint64]loggedBlock)
	for _, tx := range txs {
		for _, b := range tx.blocks {
			if rs, ok := revoked[b.home]; ok && !tidAfter(tx.seq, rs) {
				continue
			}
			if err := l.checkHome(b); err != nil {
				return nil, err
			}
			newest[b.home] = b
		}
	}
	plan := make([]loggedBlock, 0, len(newest))
	for _, b := range newest {
		plan = append(plan, b)
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].home < plan[j].home })
	return plan, nil
}

// checkHome refuses a logged block whose home is not a block replay may
// write: past the end of the filesystem, the boot block of a 1 KiB-block
// filesystem, or the journal itself.
func (l *jlog) checkHome(b loggedBlock) error {
	switch {
	case b.home >= l.f.geo.blocksCount:
		return l.bad(b.at, "logs block %d, beyond the filesystem's %d blocks", b.home, l.f.geo.blocksCount)
	case b.home < l.f.sbBlock():
		return l.bad(b.at, "logs block %d, before the superblock", b.home)
	case l.inJournal(b.home):
		return l.bad(b.at, "logs block %d, which belongs to the journal itself", b.home)
	}
	return nil
}
