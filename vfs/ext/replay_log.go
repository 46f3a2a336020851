package ext

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// jlog is an internal jbd2 journal prepared for replay: its superblock,
// where its blocks lie on disk, and the checksum flavour of its log.
type jlog struct {
	f       *FS
	j       *Journal
	bs      int
	runs    []run // the journal inode's blocks [0, MaxLen), in logical order, no holes
	inc     layout.JournalIncompat
	csum23  bool   // journal_checksum_v2 or _v3: crc32c tails, tags and commits
	compat  bool   // the old COMPAT_CHECKSUM: crc32_be over each transaction
	seed    uint32 // crc32c of the journal UUID
	tagSize int
	tail    int // bytes reserved at the end of descriptor and revoke blocks
}

// maxJournalRuns bounds how fragmented a journal inode may be.
const maxJournalRuns = 1 << 16

// openLog validates the internal journal for replay.
func (f *FS) openLog() (*jlog, error) {
	j, err := f.Journal()
	if err != nil {
		return nil, err
	}
	if j.incompat.Has(layout.JournalIncompatFastCommit) || j.NumFCBlocks != 0 {
		return nil, unsupported("journal fast commits (journal_fast_commit): replay with e2fsck")
	}
	l := &jlog{f: f, j: j, bs: int(f.geo.blockSize)}
	if j.Version == 2 {
		l.inc = j.incompat
		l.csum23 = l.inc&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) != 0
		l.compat = !l.csum23 && j.raw.FeatureCompat.Has(layout.JournalCompatChecksum)
	}
	if l.csum23 {
		l.seed = crc32c(^uint32(0), j.UUID[:])
		l.tail = layout.JournalBlockTailSize
	}
	l.tagSize = layout.JournalTagSize(l.inc)
	if err := l.mapRuns(); err != nil {
		return nil, err
	}
	return l, nil
}

// mapRuns records where each journal block lies, refusing holes and
// blocks outside the filesystem.
func (l *jlog) mapRuns() error {
	in, err := l.f.inode(l.j.Inode)
	if err != nil {
		return err
	}
	m, err := l.f.mapperFor(in)
	if err != nil {
		return err
	}
	max := uint64(l.j.MaxLen)
	for lb := uint64(0); lb < max; {
		if len(l.runs) >= maxJournalRuns {
			return corrupt("journal inode", uint64(in.num), 0, -1, "more than %d fragments", maxJournalRuns)
		}
		r, err := m.mapBlock(lb)
		if err != nil {
			return err
		}
		if r.n == 0 || r.lblk != lb {
			return corrupt("journal inode", uint64(in.num), 0, -1, "block map makes no progress at logical block %d", lb)
		}
		r.n = min(r.n, max-lb)
		if r.zero || !l.f.validRange(r.pblk, r.n) {
			return corrupt("journal inode", uint64(in.num), 0, -1, "logical blocks %d..%d are a hole or lie outside the filesystem", lb, lb+r.n-1)
		}
		l.runs = append(l.runs, r)
		lb += r.n
	}
	return nil
}

// phys returns the filesystem block holding journal block lb.
func (l *jlog) phys(lb uint32) uint64 {
	i := sort.Search(len(l.runs), func(i int) bool { return l.runs[i].lblk+l.runs[i].n > uint64(lb) })
	r := l.runs[i] // lb < MaxLen, which the runs cover
	return r.pblk + uint64(lb) - r.lblk
}

// inJournal reports whether filesystem block b holds part of the journal.
func (l *jlog) inJournal(b uint64) bool {
	for _, r := range l.runs {
		if b >= r.pblk && b-r.pblk < r.n {
			return true
		}
	}
	return false
}

// read reads journal block lb into buf (one block), from the image:
// nothing replayed lies in the journal.
func (l *jlog) read(lb uint32, buf []byte) error {
	p := l.phys(lb)
	return l.f.readDisk(buf, int64(p)*int64(l.bs), "journal block", uint64(lb))
}

// next returns the log block after lb, wrapping at the end of the journal.
func (l *jlog) next(lb uint32) uint32 {
	lb++
	if lb >= l.j.MaxLen {
		lb = l.j.First
	}
	return lb
}

// bad reports a log block that breaks the journal's rules.
func (l *jlog) bad(lb uint32, format string, args ...any) error {
	return corrupt("journal block", uint64(lb), l.j.Inode, int64(l.phys(lb))*int64(l.bs), format, args...)
}

// badSum reports a log block whose checksum does not match.
func (l *jlog) badSum(lb uint32, what string, got, want uint32) error {
	return &CorruptError{What: "journal block", Num: uint64(lb), Ino: l.j.Inode, Offset: int64(l.phys(lb)) * int64(l.bs),
		Detail: fmt.Sprintf("%s: stored checksum %#x, computed %#x", what, got, want), Err: ErrChecksum}
}

// checkTail verifies the crc32c tail of a descriptor or revoke block.
func (l *jlog) checkTail(lb uint32, b []byte, what string) error {
	if !l.csum23 {
		return nil
	}
	at := len(b) - layout.JournalBlockTailSize
	got := binary.BigEndian.Uint32(b[at:])
	want := crc32c(crc32c(l.seed, b[:at]), []byte{0, 0, 0, 0})
	if got != want {
		return l.badSum(lb, what+" block tail", got, want)
	}
	return nil
}

// checkCommit verifies a csum v2/v3 commit block's crc32c.
func (l *jlog) checkCommit(lb uint32, b []byte) error {
	const at = layout.JournalCommitChecksumOffset
	got := binary.BigEndian.Uint32(b[at:])
	c := crc32c(l.seed, b[:at])
	c = crc32c(c, []byte{0, 0, 0, 0})
	want := crc32c(c, b[at+4:])
	if got != want {
		return l.badSum(lb, "commit block", got, want)
	}
	return nil
}

// checkData verifies the checksum a v2/v3 tag holds for its logged block.
func (l *jlog) checkData(lb uint32, b []byte, seq uint32, tag layout.JournalTag) error {
	if !l.csum23 {
		return nil
	}
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], seq)
	want := crc32c(crc32c(l.seed, s[:]), b)
	if !l.inc.Has(layout.JournalIncompatCsumV3) {
		want &= 0xFFFF
	}
	if tag.Checksum != want {
		return l.badSum(lb, fmt.Sprintf("logged copy of block %d", tag.Block), tag.Checksum, want)
	}
	return nil
}

// crc32BE is the kernel's crc32_be (polynomial 0x04C11DB7, most
// significant bit first, no inversions), which COMPAT_CHECKSUM journals
// use.
func crc32BE(crc uint32, p []byte) uint32 {
	for _, c := range p {
		crc = crc<<8 ^ crc32BETable[byte(crc>>24)^c]
	}
	return crc
}

var crc32BETable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for k := 0; k < 8; k++ {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
