package ext

import (
	"encoding/binary"
	"testing"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Fuzz input: byte 0 selects the journal features (bits of
// JournalIncompat, 0x80 for COMPAT_CHECKSUM), bytes 1-4 the expected
// sequence (big-endian), byte 5 the log start, bytes 6-7 are unused;
// the rest is the journal area, whole 1 KiB blocks (at most 64).
const rpFuzzHeader = 8

func rpFuzzInput(inc layout.JournalIncompat, compat bool, seq uint32, start uint32, area []byte) []byte {
	b := make([]byte, rpFuzzHeader, rpFuzzHeader+len(area))
	b[0] = byte(inc)
	if compat {
		b[0] |= 0x80
	}
	binary.BigEndian.PutUint32(b[1:], seq)
	b[5] = byte(start - 1)
	return append(b, area...)
}

// FuzzJournalScan runs the three replay passes over arbitrary journal
// blocks: descriptor tags, revoke records and commit blocks in every
// form. It must not panic, must consume at most one lap of the log, and
// may only plan writes inside the filesystem and outside the journal.
func FuzzJournalScan(f *testing.F) {
	for _, fl := range synthFlavours {
		s := newSynth(fl.inc, fl.compat, 0xFFFFFFFF, 12, 6)
		s.add(synthTx{blocks: []uint64{100, 200}, escape: 1})
		s.add(synthTx{revokes: []uint64{100}})
		s.add(synthTx{blocks: []uint64{300}, noCommit: true})
		f.Add(rpFuzzInput(fl.inc, fl.compat, s.seq0(), s.start, s.area))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < rpFuzzHeader+2*synthBS {
			return
		}
		inc := layout.JournalIncompat(data[0]) & (layout.JournalIncompatRevoke | layout.JournalIncompat64Bit |
			layout.JournalIncompatCsumV2 | layout.JournalIncompatCsumV3)
		compat := data[0]&0x80 != 0
		seq := binary.BigEndian.Uint32(data[1:])
		area := data[rpFuzzHeader:]
		maxLen := uint32(min(len(area)/synthBS, 64))
		start := 1 + uint32(data[5])%(maxLen-1)
		l := synthJlog(area[:maxLen*synthBS], inc, compat, [16]byte{}, seq, start, maxLen)
		txs, revoked, end, err := l.scanLog()
		if err != nil {
			return
		}
		blocks := 0
		for _, tx := range txs {
			blocks += len(tx.blocks) + 1
		}
		if blocks > int(maxLen-1) || uint32(len(txs)) != end-seq {
			t.Fatalf("%d transactions of %d blocks from a %d-block log, end %d from %d", len(txs), blocks, maxLen-1, end, seq)
		}
		if len(revoked) > blocks {
			t.Fatalf("a revoke table of %d blocks from %d logged blocks", len(revoked), blocks)
		}
		plan, err := l.replayPlan(txs, revoked)
		if err != nil {
			return
		}
		for _, b := range plan {
			if b.home >= synthBlocks || b.home < uint64(maxLen) || b.at < 1 || b.at >= maxLen {
				t.Fatalf("planned %+v in a %d-block log", b, maxLen)
			}
		}
	})
}
