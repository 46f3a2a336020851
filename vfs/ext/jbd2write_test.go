package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs/ext/internal/jbd2"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// TestJbd2WriterReplays writes, with vfs/ext/jbd2, two transactions into
// a synthetic journal in every tag form (32/64-bit tags, csum v2, the
// csum v3 tag3 layout): the first starts 5 blocks before the end of the
// log so the second wraps around it, the sequence wraps past 2^32, each
// holds more blocks than a descriptor describes, one block begins with
// the jbd2 magic (escaped), and the second revokes two blocks of the first (a revoke also cancels
// copies of its own transaction, so jbd2 never logs a block it revokes).
// Our replay (the scan that checks every checksum) must carry home the
// newest copy of each block, nothing revoked, and stop at the end.
func TestJbd2WriterReplays(t *testing.T) {
	const maxLen = 200
	for _, fl := range synthFlavours {
		if fl.compat {
			continue // COMPAT_CHECKSUM journals are not written
		}
		t.Run(fl.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(fl.inc)))
			var uuid [16]byte
			rng.Read(uuid[:])
			inc := fl.inc | layout.JournalIncompatRevoke
			log := &jbd2.Log{BlockSize: synthBS, First: 1, End: maxLen, Incompat: inc, UUID: uuid}
			img := make([]byte, maxLen*synthBS)
			rng.Read(img) // stale garbage
			blk := func(home uint64) jbd2.Block {
				b := make([]byte, synthBS)
				rng.Read(b)
				return jbd2.Block{Home: home, Data: b}
			}
			var a, b []jbd2.Block
			for i := 0; i < 90; i++ {
				a = append(a, blk(uint64(1000+i)))
			}
			binary.BigEndian.PutUint32(a[3].Data, layout.JournalMagic) // escaped
			for i := 0; i < 70; i++ {
				b = append(b, blk(uint64(1050+i))) // 1050..1089 rewrite a's
			}
			revoked := []uint64{1001, 1002}
			put := func(lbs []jbd2.LogBlock) {
				for _, x := range lbs {
					copy(img[int(x.At)*synthBS:], x.Data)
				}
			}
			var seq uint32 = 0xFFFFFFFF
			start := uint32(maxLen - 5)
			la, next, err := log.Write(seq, start, a, nil, time.Unix(1700000000, 5))
			if err != nil {
				t.Fatal(err)
			}
			lb, end, err := log.Write(seq+1, next, b, revoked, time.Unix(1700000001, 0))
			if err != nil {
				t.Fatal(err)
			}
			put(la)
			put(lb)
			clear(img[int(end)*synthBS : int(end+1)*synthBS]) // the log ends here
			if got, want := len(la), log.Need(len(a), 0); got != want {
				t.Fatalf("first transaction: %d log blocks, Need says %d", got, want)
			}
			if next >= start {
				t.Fatalf("the first transaction did not wrap: next block %d", next)
			}
			l := synthJlog(img, inc, false, uuid, seq, start, maxLen)
			plan, last, err := rpRunPlan(l)
			if err != nil {
				t.Fatal(err)
			}
			if last != seq+2 {
				t.Fatalf("scan ended expecting sequence %d, want %d", last, seq+2)
			}
			want := map[uint64][]byte{}
			for _, x := range a {
				want[x.Home] = x.Data
			}
			delete(want, 1001) // revoked by the second transaction
			delete(want, 1002)
			for _, x := range b {
				want[x.Home] = x.Data
			}
			got := rpPlanContents(t, l, plan)
			if len(got) != len(want) {
				t.Fatalf("replay carries %d blocks home, want %d", len(got), len(want))
			}
			for h, w := range want {
				if !bytes.Equal(got[h], w) {
					t.Fatalf("block %d: replayed content differs", h)
				}
			}
			// A flipped bit in a logged copy is caught by the tag checksum.
			if fl.inc&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) != 0 {
				img[int(la[1].At)*synthBS+100] ^= 1
				if _, _, err := rpRunPlan(synthJlog(img, inc, false, uuid, seq, start, maxLen)); !errors.Is(err, ErrChecksum) {
					t.Fatalf("damaged copy: %v, want ErrChecksum", err)
				}
			}
		})
	}
}

// TestJbd2WriterRefuses: a transaction larger than the log, and journals
// the writer does not write, are refused before anything is laid out.
func TestJbd2WriterRefuses(t *testing.T) {
	log := &jbd2.Log{BlockSize: synthBS, First: 1, End: 20, Incompat: layout.JournalIncompatCsumV3}
	blocks := make([]jbd2.Block, 19)
	for i := range blocks {
		blocks[i] = jbd2.Block{Home: uint64(100 + i), Data: make([]byte, synthBS)}
	}
	if _, _, err := log.Write(1, 1, blocks, nil, time.Now()); !errors.Is(err, jbd2.ErrTooSmall) {
		t.Fatalf("19 blocks in a 19-block log: %v, want ErrTooSmall", err)
	}
	if _, _, err := log.Write(1, 1, blocks[:2], []uint64{5}, time.Now()); !errors.Is(err, jbd2.ErrUnsupported) {
		t.Fatalf("revoke without journal_incompat_revoke: %v, want ErrUnsupported", err)
	}
	sb := layout.JournalSuperblock{Header: layout.JournalHeader{Magic: layout.JournalMagic, BlockType: layout.JournalSuperblockV2},
		BlockSize: synthBS, MaxLen: 1024, First: 1}
	for name, edit := range map[string]func(s *layout.JournalSuperblock){
		"v1":           func(s *layout.JournalSuperblock) { s.Header.BlockType = layout.JournalSuperblockV1 },
		"fast-commit":  func(s *layout.JournalSuperblock) { s.FeatureIncompat |= layout.JournalIncompatFastCommit },
		"fc-blocks":    func(s *layout.JournalSuperblock) { s.NumFcBlks = 256 },
		"unknown":      func(s *layout.JournalSuperblock) { s.FeatureIncompat |= 0x100 },
		"compat-crc32": func(s *layout.JournalSuperblock) { s.FeatureCompat |= layout.JournalCompatChecksum },
		"block-size":   func(s *layout.JournalSuperblock) { s.BlockSize = 4096 },
		"checksum-type": func(s *layout.JournalSuperblock) {
			s.FeatureIncompat |= layout.JournalIncompatCsumV3
			s.ChecksumType = 1
		},
		"first-past-end": func(s *layout.JournalSuperblock) { s.First = 1024 },
	} {
		s := sb
		edit(&s)
		if _, err := jbd2.FromSuperblock(&s, synthBS); !errors.Is(err, jbd2.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
	if _, err := jbd2.FromSuperblock(&sb, synthBS); err != nil {
		t.Fatalf("a plain v2 journal: %v", err)
	}
}
