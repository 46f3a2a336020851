// Package jbd2 writes transactions into an ext3/ext4 internal journal's
// circular log: descriptor blocks (32- or 64-bit tags, the csum v3 tag3
// layout, csum v2/v3 block tails and tag checksums), the logged copies
// (escaped when they begin with the jbd2 magic), revoke blocks and the
// commit block (crc32c and timestamp), and the journal superblock edits
// that make a transaction live (s_start, s_sequence) or retire it.
//
// It does no I/O: Write returns the log blocks, each with the journal
// block (index inside the journal inode) it goes to; the caller maps them
// to disk and orders them with its flushes. The on-disk structures are in
// package layout (jbd2.go, journal.go); reading and replaying a log is
// package ext's (replay*.go), which the tests use as one of the oracles
// beside e2fsck and debugfs' logdump.
//
// Checksums follow the kernel's jbd2: every crc32c is seeded with the
// crc32c of the journal UUID; a tag's is taken over the big-endian
// sequence then the block as logged (escaped); a descriptor's or revoke
// block's tail and a commit block's h_chksum[0] over the whole block with
// that field zero. The old COMPAT_CHECKSUM (crc32_be) is not written:
// Check refuses such journals.
package jbd2

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Errors of the package; test with errors.Is.
var (
	// ErrUnsupported: the journal has a feature or a shape this writer
	// does not write (the caller then does not journal).
	ErrUnsupported = errs.New(errs.ErrUnsupported, "journal cannot be written by this writer")
	// ErrTooSmall: the transaction does not fit in the log area.
	ErrTooSmall = errs.New(errs.ErrNoSpace, "transaction larger than the journal")
)

// Log is the geometry and checksum flavour of a journal's circular log.
type Log struct {
	BlockSize int
	First     uint32 // first log block (s_first)
	End       uint32 // one past the last log block (s_maxlen less a fast-commit area)
	Incompat  layout.JournalIncompat
	UUID      [16]byte
}

// FromSuperblock describes the log of a decoded journal superblock and
// checks that this writer can write it: a v2 superblock, only the
// revoke, 64bit, async_commit, csum v2/v3 incompat features, no
// fast-commit blocks, no COMPAT_CHECKSUM, crc32c checksums. Where the
// next transaction goes (after a live log, or at s_first) is the
// caller's choice.
func FromSuperblock(s *layout.JournalSuperblock, blockSize int) (*Log, error) {
	known := layout.JournalIncompatRevoke | layout.JournalIncompat64Bit | layout.JournalIncompatAsyncCommit |
		layout.JournalIncompatCsumV2 | layout.JournalIncompatCsumV3
	switch {
	case s.Header.Magic != layout.JournalMagic:
		return nil, fmt.Errorf("jbd2: journal superblock magic %#x: %w", s.Header.Magic, ErrUnsupported)
	case s.Header.BlockType != layout.JournalSuperblockV2:
		return nil, fmt.Errorf("jbd2: journal superblock version (block type %d; only v2 is written): %w", s.Header.BlockType, ErrUnsupported)
	case s.FeatureIncompat&^known != 0:
		return nil, fmt.Errorf("jbd2: journal incompat features %#x (%v): %w", uint32(s.FeatureIncompat&^known), (s.FeatureIncompat &^ known).Names(), ErrUnsupported)
	case s.NumFcBlks != 0:
		return nil, fmt.Errorf("jbd2: the journal reserves %d fast-commit blocks: %w", s.NumFcBlks, ErrUnsupported)
	case s.FeatureCompat.Has(layout.JournalCompatChecksum) && s.FeatureIncompat&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) == 0:
		return nil, fmt.Errorf("jbd2: COMPAT_CHECKSUM (crc32_be) journals are not written: %w", ErrUnsupported)
	case s.FeatureIncompat&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) != 0 && s.ChecksumType != layout.JournalCsumTypeCRC32C:
		return nil, fmt.Errorf("jbd2: journal checksum type %d: %w", s.ChecksumType, ErrUnsupported)
	case int(s.BlockSize) != blockSize || blockSize < 1024 || blockSize&(blockSize-1) != 0:
		return nil, fmt.Errorf("jbd2: journal block size %d, filesystem %d: %w", s.BlockSize, blockSize, ErrUnsupported)
	case s.First == 0 || s.First >= s.MaxLen:
		return nil, fmt.Errorf("jbd2: first log block %d of %d: %w", s.First, s.MaxLen, ErrUnsupported)
	}
	return &Log{BlockSize: blockSize, First: s.First, End: s.MaxLen, Incompat: s.FeatureIncompat, UUID: s.UUID}, nil
}

// csum reports whether the log carries v2/v3 checksums.
func (l *Log) csum() bool {
	return l.Incompat&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) != 0
}

func (l *Log) seed() uint32 { return crc32c(^uint32(0), l.UUID[:]) }

func (l *Log) tail() int {
	if l.csum() {
		return layout.JournalBlockTailSize
	}
	return 0
}

// Area is the number of blocks of the log.
func (l *Log) Area() uint32 { return l.End - l.First }

// tagsPerDescriptor is how many tags one descriptor holds: the first
// carries the 16-byte UUID, the rest SAME_UUID.
func (l *Log) tagsPerDescriptor() int {
	room := l.BlockSize - layout.JournalHeaderSize - l.tail() - layout.JournalTagUUIDSize
	return room / layout.JournalTagSize(l.Incompat)
}

// revokesPerBlock is how many records one revoke block holds.
func (l *Log) revokesPerBlock() int {
	return (l.BlockSize - layout.JournalRevokeHeaderSize - l.tail()) / layout.JournalRevokeRecordSize(l.Incompat)
}

// Need returns how many log blocks a transaction of n logged blocks and
// r revoke records takes (descriptors, copies, revoke blocks, commit).
func (l *Log) Need(n, r int) int {
	per, rper := l.tagsPerDescriptor(), l.revokesPerBlock()
	return n + (n+per-1)/per + (r+rper-1)/rper + 1
}

// Block is a filesystem block to log: its number and its new contents
// (BlockSize bytes). Write never changes Data, and the log block it
// returns for it may share Data's bytes (unless escaped).
type Block struct {
	Home uint64
	Data []byte
}

// LogBlock is one block of the written log: the journal block it goes to
// and its bytes.
type LogBlock struct {
	At   uint32
	Data []byte
}

// Write lays out transaction seq from log block start: the revoke
// blocks (revoked), then descriptor blocks each followed by the copies
// it describes, then the commit block stamped with now. The log wraps
// from End back to First. It returns the blocks and the log block after
// the commit.
func (l *Log) Write(seq, start uint32, blocks []Block, revoked []uint64, now time.Time) ([]LogBlock, uint32, error) {
	if start < l.First || start >= l.End {
		return nil, 0, fmt.Errorf("jbd2: log start %d outside %d..%d", start, l.First, l.End-1)
	}
	if need := l.Need(len(blocks), len(revoked)); uint64(need) > uint64(l.Area()) {
		return nil, 0, fmt.Errorf("jbd2: %d logged blocks and %d revokes need %d log blocks, the log has %d: %w", len(blocks), len(revoked), need, l.Area(), ErrTooSmall)
	}
	w := &writer{l: l, seq: seq, at: start, seed: l.seed()}
	if err := w.revokes(revoked); err != nil {
		return nil, 0, err
	}
	if err := w.descriptors(blocks); err != nil {
		return nil, 0, err
	}
	w.commit(now)
	return w.out, w.at, nil
}

type writer struct {
	l    *Log
	seq  uint32
	at   uint32
	seed uint32
	out  []LogBlock
}

func (w *writer) emit(b []byte) {
	w.out = append(w.out, LogBlock{At: w.at, Data: b})
	if w.at++; w.at >= w.l.End {
		w.at = w.l.First
	}
}

func (w *writer) header(typ uint32) []byte {
	b := make([]byte, w.l.BlockSize)
	binary.BigEndian.PutUint32(b[0:], layout.JournalMagic)
	binary.BigEndian.PutUint32(b[4:], typ)
	binary.BigEndian.PutUint32(b[8:], w.seq)
	return b
}

// sealTail sets the crc32c tail of a descriptor or revoke block.
func (w *writer) sealTail(b []byte) {
	if !w.l.csum() {
		return
	}
	at := len(b) - layout.JournalBlockTailSize
	clear(b[at:])
	binary.BigEndian.PutUint32(b[at:], crc32c(w.seed, b))
}

func (w *writer) revokes(revoked []uint64) error {
	rec := layout.JournalRevokeRecordSize(w.l.Incompat)
	for len(revoked) > 0 {
		if !w.l.Incompat.Has(layout.JournalIncompatRevoke) {
			return fmt.Errorf("jbd2: revoke records in a journal without journal_incompat_revoke: %w", ErrUnsupported)
		}
		n := min(len(revoked), w.l.revokesPerBlock())
		b := w.header(layout.JournalBlockRevoke)
		off := layout.JournalRevokeHeaderSize
		for _, r := range revoked[:n] {
			if rec == 4 {
				if r > 0xFFFFFFFF {
					return fmt.Errorf("jbd2: revoking block %d needs journal_64bit: %w", r, ErrUnsupported)
				}
				binary.BigEndian.PutUint32(b[off:], uint32(r))
			} else {
				binary.BigEndian.PutUint64(b[off:], r)
			}
			off += rec
		}
		binary.BigEndian.PutUint32(b[layout.JournalHeaderSize:], uint32(off))
		w.sealTail(b)
		w.emit(b)
		revoked = revoked[n:]
	}
	return nil
}

func (w *writer) descriptors(blocks []Block) error {
	per, ts := w.l.tagsPerDescriptor(), layout.JournalTagSize(w.l.Incompat)
	v3 := w.l.Incompat.Has(layout.JournalIncompatCsumV3)
	for len(blocks) > 0 {
		n := min(len(blocks), per)
		d := w.header(layout.JournalBlockDescriptor)
		copies := make([][]byte, n)
		off := layout.JournalHeaderSize
		for i, blk := range blocks[:n] {
			if len(blk.Data) != w.l.BlockSize {
				return fmt.Errorf("jbd2: block %d has %d bytes, not %d", blk.Home, len(blk.Data), w.l.BlockSize)
			}
			if blk.Home > 0xFFFFFFFF && !w.l.Incompat.Has(layout.JournalIncompat64Bit) {
				return fmt.Errorf("jbd2: logging block %d needs journal_64bit: %w", blk.Home, ErrUnsupported)
			}
			c := blk.Data // logged as it is, unless escaped (a copy)
			var flags layout.JournalTagFlag
			if binary.BigEndian.Uint32(c) == layout.JournalMagic {
				c = append([]byte(nil), c...)
				clear(c[:4]) // escaped: replay restores the magic
				flags |= layout.TagEscape
			}
			if i > 0 {
				flags |= layout.TagSameUUID
			}
			if i == n-1 {
				flags |= layout.TagLastTag
			}
			t := layout.JournalTag{Block: blk.Home, Flags: flags}
			if w.l.csum() {
				var s [4]byte
				binary.BigEndian.PutUint32(s[:], w.seq)
				t.Checksum = crc32c(crc32c(w.seed, s[:]), c)
				if !v3 {
					t.Checksum &= 0xFFFF
				}
			}
			layout.EncodeJournalTag(d[off:], t, w.l.Incompat)
			off += ts
			if i == 0 {
				copy(d[off:], w.l.UUID[:])
				off += layout.JournalTagUUIDSize
			}
			copies[i] = c
		}
		w.sealTail(d)
		w.emit(d)
		for _, c := range copies {
			w.emit(c)
		}
		blocks = blocks[n:]
	}
	return nil
}

func (w *writer) commit(now time.Time) {
	b := w.header(layout.JournalBlockCommit)
	binary.BigEndian.PutUint64(b[0x30:], uint64(now.Unix()))
	binary.BigEndian.PutUint32(b[0x38:], uint32(now.Nanosecond()))
	if w.l.csum() { // h_chksum_type and _size stay 0 under v2/v3
		binary.BigEndian.PutUint32(b[layout.JournalCommitChecksumOffset:], crc32c(w.seed, b))
	}
	w.emit(b)
}

// SetSuperblock sets s_start and s_sequence in a journal superblock's
// first JournalSuperblockSize bytes and refreshes its checksum (v2/v3):
// start 0 marks the log empty, with seq the next transaction expected.
func SetSuperblock(raw []byte, start, seq uint32) error {
	if len(raw) < layout.JournalSuperblockSize || binary.BigEndian.Uint32(raw) != layout.JournalMagic {
		return fmt.Errorf("jbd2: not a journal superblock: %w", ErrUnsupported)
	}
	binary.BigEndian.PutUint32(raw[0x18:], seq)
	binary.BigEndian.PutUint32(raw[0x1C:], start)
	inc := layout.JournalIncompat(binary.BigEndian.Uint32(raw[0x28:]))
	if inc&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) != 0 {
		sb := raw[:layout.JournalSuperblockSize]
		clear(sb[layout.JournalCsumOffset : layout.JournalCsumOffset+4])
		binary.BigEndian.PutUint32(sb[layout.JournalCsumOffset:], crc32c(^uint32(0), sb))
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c continues the kernel's raw crc32c (no inversions) from seed.
func crc32c(seed uint32, p []byte) uint32 { return ^crc32.Update(^seed, castagnoli, p) }
