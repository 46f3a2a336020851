package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// A synthetic journal: blocks [0, maxLen) of an in-memory "filesystem"
// of synthBlocks blocks of synthBS bytes; block 0 stands for the journal
// superblock and the log area is [1, maxLen).
const (
	synthBS     = 1024
	synthBlocks = 1 << 16
)

// synthTx is one transaction to write into a synthetic log.
type synthTx struct {
	blocks   []uint64
	revokes  []uint64
	escape   int  // index+1 of a block whose content starts with the jbd2 magic
	noCommit bool // leave the commit block out
}

// synthLog lays transactions out as jbd2 would, from log block start
// with sequence seq. It returns the journal area and, per transaction,
// the content each block should get home.
type synthLog struct {
	inc    layout.JournalIncompat
	compat bool
	seq    uint32
	maxLen uint32
	start  uint32
	uuid   [16]byte
	area   []byte
	at     uint32
	crc    uint32
	rng    *rand.Rand
	homes  []map[uint64][]byte
}

func newSynth(inc layout.JournalIncompat, compat bool, seq, maxLen, start uint32) *synthLog {
	s := &synthLog{inc: inc, compat: compat, seq: seq, maxLen: maxLen, start: start, at: start,
		area: make([]byte, int(maxLen)*synthBS), rng: rand.New(rand.NewSource(int64(seq) ^ int64(inc)))}
	s.rng.Read(s.uuid[:])
	s.rng.Read(s.area) // stale garbage everywhere the log does not reach
	return s
}

func (s *synthLog) csum23() bool {
	return s.inc&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) != 0
}

func (s *synthLog) seed() uint32 { return crc32c(^uint32(0), s.uuid[:]) }

// blk returns the next log block's bytes and advances.
func (s *synthLog) blk() []byte {
	b := s.area[int(s.at)*synthBS : int(s.at+1)*synthBS]
	s.at++
	if s.at >= s.maxLen {
		s.at = 1
	}
	clear(b)
	return b
}

func (s *synthLog) header(b []byte, typ uint32) {
	binary.BigEndian.PutUint32(b, layout.JournalMagic)
	binary.BigEndian.PutUint32(b[4:], typ)
	binary.BigEndian.PutUint32(b[8:], s.seq)
}

func (s *synthLog) sealTail(b []byte) {
	if s.csum23() {
		at := len(b) - 4
		binary.BigEndian.PutUint32(b[at:], crc32c(crc32c(s.seed(), b[:at]), []byte{0, 0, 0, 0}))
	}
}

// add writes one transaction.
func (s *synthLog) add(tx synthTx) {
	homes := map[uint64][]byte{}
	s.crc = ^uint32(0)
	if len(tx.blocks) > 0 {
		s.descriptor(tx, homes)
	}
	if len(tx.revokes) > 0 {
		s.revoke(tx.revokes)
	}
	if !tx.noCommit {
		s.commit()
	}
	s.homes = append(s.homes, homes)
	s.seq++
}

func (s *synthLog) descriptor(tx synthTx, homes map[uint64][]byte) {
	d := s.blk()
	s.header(d, layout.JournalBlockDescriptor)
	ts := layout.JournalTagSize(s.inc)
	off := layout.JournalHeaderSize
	var datas [][]byte
	for i, home := range tx.blocks {
		data := s.blk()
		s.rng.Read(data)
		want := append([]byte(nil), data...)
		tag := layout.JournalTag{Block: home, Flags: layout.TagSameUUID}
		if i == 0 {
			tag.Flags = 0
		}
		if i == len(tx.blocks)-1 {
			tag.Flags |= layout.TagLastTag
		}
		if tx.escape == i+1 {
			binary.BigEndian.PutUint32(want, layout.JournalMagic)
			clear(data[:4])
			tag.Flags |= layout.TagEscape
		}
		var sq [4]byte
		binary.BigEndian.PutUint32(sq[:], s.seq)
		sum := crc32c(crc32c(s.seed(), sq[:]), data)
		if !s.inc.Has(layout.JournalIncompatCsumV3) {
			sum &= 0xFFFF
		}
		if s.csum23() {
			tag.Checksum = sum
		}
		layout.EncodeJournalTag(d[off:], tag, s.inc)
		off += ts
		if i == 0 {
			copy(d[off:], s.uuid[:])
			off += 16
		}
		homes[home] = want
		datas = append(datas, data)
	}
	s.sealTail(d)
	if s.compat {
		s.crc = crc32BE(s.crc, d)
		for _, data := range datas {
			s.crc = crc32BE(s.crc, data)
		}
	}
}

func (s *synthLog) revoke(blocks []uint64) {
	b := s.blk()
	s.header(b, layout.JournalBlockRevoke)
	rec := layout.JournalRevokeRecordSize(s.inc)
	off := layout.JournalRevokeHeaderSize
	for _, r := range blocks {
		if rec == 8 {
			binary.BigEndian.PutUint64(b[off:], r)
		} else {
			binary.BigEndian.PutUint32(b[off:], uint32(r))
		}
		off += rec
	}
	binary.BigEndian.PutUint32(b[layout.JournalHeaderSize:], uint32(off))
	s.sealTail(b)
}

func (s *synthLog) commit() {
	b := s.blk()
	s.header(b, layout.JournalBlockCommit)
	switch {
	case s.csum23():
		binary.BigEndian.PutUint32(b[layout.JournalCommitChecksumOffset:], crc32c(s.seed(), b))
	case s.compat:
		b[0xC], b[0xD] = layout.JournalCRC32Chksum, layout.JournalCRC32ChksumSize
		binary.BigEndian.PutUint32(b[layout.JournalCommitChecksumOffset:], s.crc)
	}
}

// end makes sure the block after the log does not continue it.
func (s *synthLog) end() {
	b := s.blk()
	_ = b // zeroed: no magic
}

// jlog returns a jlog over the synthetic area (which sits at filesystem
// block 0).
func (s *synthLog) jlog() *jlog {
	img := make([]byte, len(s.area))
	copy(img, s.area)
	return synthJlog(img, s.inc, s.compat, s.uuid, s.seq0(), s.start, s.maxLen)
}

func (s *synthLog) seq0() uint32 {
	return s.seq - uint32(len(s.homes))
}

// synthJlog builds a jlog reading the journal area img.
func synthJlog(img []byte, inc layout.JournalIncompat, compat bool, uuid [16]byte, seq, start, maxLen uint32) *jlog {
	f := &FS{r: bytes.NewReader(img), size: int64(len(img))}
	f.geo.blockSize, f.geo.logBlock, f.geo.blocksCount = synthBS, 10, synthBlocks
	j := &Journal{Inode: 8, BlockSize: synthBS, MaxLen: maxLen, First: 1, Start: start, Sequence: seq, Version: 2, incompat: inc, UUID: uuid}
	l := &jlog{f: f, j: j, bs: synthBS, inc: inc, runs: []run{{lblk: 0, n: uint64(maxLen), pblk: 0}}}
	l.csum23 = inc&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) != 0
	l.compat = compat && !l.csum23
	if l.csum23 {
		l.seed = crc32c(^uint32(0), uuid[:])
		l.tail = layout.JournalBlockTailSize
	}
	l.tagSize = layout.JournalTagSize(inc)
	return l
}

// rpRunPlan runs the three passes on l.
func rpRunPlan(l *jlog) ([]loggedBlock, uint32, error) {
	txs, revoked, end, err := l.scanLog()
	if err != nil {
		return nil, 0, err
	}
	plan, err := l.replayPlan(txs, revoked)
	return plan, end, err
}

// rpPlanContents reads what each planned block would write home.
func rpPlanContents(t *testing.T, l *jlog, plan []loggedBlock) map[uint64][]byte {
	t.Helper()
	got := map[uint64][]byte{}
	for _, b := range plan {
		buf := make([]byte, synthBS)
		if err := l.read(b.at, buf); err != nil {
			t.Fatal(err)
		}
		if b.escape {
			binary.BigEndian.PutUint32(buf, layout.JournalMagic)
		}
		got[b.home] = buf
	}
	return got
}

var synthFlavours = []struct {
	name   string
	inc    layout.JournalIncompat
	compat bool
}{
	{"plain32", 0, false},
	{"plain64", layout.JournalIncompat64Bit, false},
	{"compat-crc32", 0, true},
	{"csum2-32", layout.JournalIncompatCsumV2, false},
	{"csum2-64", layout.JournalIncompatCsumV2 | layout.JournalIncompat64Bit, false},
	{"csum3-32", layout.JournalIncompatCsumV3, false},
	{"csum3-64", layout.JournalIncompatCsumV3 | layout.JournalIncompat64Bit, false},
}

// TestReplaySynthetic: a log that wraps the journal's end and the 32-bit
// sequence, with escaped blocks, revokes that cancel earlier copies only,
// a rewrite after a revoke, and an uncommitted tail, in every tag form.
func TestReplaySynthetic(t *testing.T) {
	for _, fl := range synthFlavours {
		t.Run(fl.name, func(t *testing.T) {
			s := newSynth(fl.inc, fl.compat, 0xFFFFFFFE, 24, 17)
			s.add(synthTx{blocks: []uint64{100, 200, 300}, escape: 2})
			s.add(synthTx{revokes: []uint64{100, 200}})
			s.add(synthTx{blocks: []uint64{100, 400}, escape: 1})
			s.add(synthTx{blocks: []uint64{500}, noCommit: true})
			s.end()
			l := s.jlog()
			plan, end, err := rpRunPlan(l)
			if err != nil {
				t.Fatal(err)
			}
			if end != 1 { // 0xFFFFFFFE, 0xFFFFFFFF and 0 committed, 1 not
				t.Errorf("end transaction %#x, want 1", end)
			}
			want := map[uint64][]byte{300: s.homes[0][300], 100: s.homes[2][100], 400: s.homes[2][400]}
			got := rpPlanContents(t, l, plan)
			if len(got) != len(want) {
				t.Errorf("plan writes blocks %v, want %d blocks (100, 300, 400)", rpKeys(got), len(want))
			}
			for b, w := range want {
				if !bytes.Equal(got[b], w) {
					t.Errorf("block %d: wrong content planned", b)
				}
			}
		})
	}
}

func rpKeys(m map[uint64][]byte) []uint64 {
	var k []uint64
	for b := range m {
		k = append(k, b)
	}
	return k
}

// TestReplaySyntheticRefusals: every checksum and bound the scan checks
// refuses with the right class.
func TestReplaySyntheticRefusals(t *testing.T) {
	// The second transaction revokes the first block (a revoked block is
	// never written, so never checked): the bad homes come second.
	mk := func(inc layout.JournalIncompat, blocks ...uint64) *synthLog {
		s := newSynth(inc, false, 7, 32, 1)
		s.add(synthTx{blocks: blocks})
		s.add(synthTx{revokes: []uint64{blocks[0]}})
		s.end()
		return s
	}
	v3 := layout.JournalIncompatCsumV3 | layout.JournalIncompat64Bit
	for _, c := range []struct {
		name  string
		inc   layout.JournalIncompat
		homes []uint64
		flip  int // byte of the area to corrupt, -1 none
		want  error
	}{
		{"data-csum", v3, []uint64{100, 101}, 2*synthBS + 10, ErrChecksum},
		{"descriptor-tail", v3, []uint64{100, 101}, 1*synthBS + 40, ErrChecksum},
		{"revoke-tail", v3, []uint64{100, 101}, 5*synthBS + 20, ErrChecksum},
		{"commit-csum", v3, []uint64{100, 101}, 4*synthBS + 0x30, ErrChecksum},
		{"home-in-journal", 0, []uint64{101, 3}, -1, vfs.ErrCorrupt},
		{"home-beyond-fs", layout.JournalIncompat64Bit, []uint64{101, 1 << 40}, -1, vfs.ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mk(c.inc, c.homes...)
			if c.flip >= 0 {
				s.area[c.flip] ^= 0x55
			}
			_, _, err := rpRunPlan(s.jlog())
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestReplayRevokeCount: a revoke block claiming more bytes than it has
// is refused (j_corrupt_revoke_rcount in small).
func TestReplayRevokeCount(t *testing.T) {
	s := newSynth(0, false, 1, 16, 1)
	s.add(synthTx{blocks: []uint64{100}})
	s.add(synthTx{revokes: []uint64{100}})
	s.end()
	binary.BigEndian.PutUint32(s.area[4*synthBS+layout.JournalHeaderSize:], 0xFFFF)
	if _, _, err := rpRunPlan(s.jlog()); !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("got %v, want a corrupt revoke block", err)
	}
}

// TestReplayEndlessLog: a log whose every block continues it (a commit
// block per sequence, around and around) stops after one lap.
func TestReplayEndlessLog(t *testing.T) {
	const maxLen = 8
	img := make([]byte, maxLen*synthBS)
	for i := 1; i < maxLen; i++ {
		b := img[i*synthBS:]
		binary.BigEndian.PutUint32(b, layout.JournalMagic)
		binary.BigEndian.PutUint32(b[4:], layout.JournalBlockCommit)
		binary.BigEndian.PutUint32(b[8:], uint32(i))
	}
	l := synthJlog(img, 0, false, [16]byte{}, 1, 1, maxLen)
	txs, _, end, err := l.scanLog()
	if err != nil || len(txs) != maxLen-1 || end != maxLen {
		t.Fatalf("got %d transactions, end %d, err %v; want %d, %d", len(txs), end, err, maxLen-1, maxLen)
	}
}

// TestReplayManyRevokeBlocks: one transaction of 200 revoke blocks (50,400
// records, far below maxRevokeRecords) is replayed, its revokes cancelling
// the earlier copy: the records are counted once each (the count used to
// add the transaction's running total at every block, refusing such a
// transaction as "more than 4194304 revoke records"). Revokes of blocks
// never logged do not enter the table.
func TestReplayManyRevokeBlocks(t *testing.T) {
	const revokeBlocks, perBlock = 200, (synthBS - layout.JournalRevokeHeaderSize) / 4
	s := newSynth(0, false, 7, 256, 1)
	s.add(synthTx{blocks: []uint64{300, 301}})
	s.crc = ^uint32(0)
	for i := 0; i < revokeBlocks; i++ {
		recs := make([]uint64, perBlock)
		for k := range recs {
			recs[k] = uint64(1000 + i*perBlock + k)
		}
		if i == revokeBlocks-1 {
			recs[perBlock-1] = 300
		}
		s.revoke(recs)
	}
	s.commit()
	s.homes = append(s.homes, map[uint64][]byte{})
	s.seq++
	s.end()
	l := s.jlog()
	txs, revoked, _, err := l.scanLog()
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if len(txs) != 2 || len(revoked) != 1 || revoked[300] != 8 {
		t.Fatalf("%d transactions, revoke table %v; want 2 and {300: 8}", len(txs), revoked)
	}
	plan, err := l.replayPlan(txs, revoked)
	if err != nil || len(plan) != 1 || plan[0].home != 301 {
		t.Fatalf("plan %+v, %v; want block 301 only", plan, err)
	}
}
