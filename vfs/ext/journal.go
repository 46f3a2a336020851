package ext

import (
	"fmt"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// JournalKind says where a filesystem's journal lives.
type JournalKind string

// Journal kinds.
const (
	JournalNone     JournalKind = "none"
	JournalInternal JournalKind = "internal"
	JournalExternal JournalKind = "external"
)

// JournalStatus is what the superblock says of the journal.
type JournalStatus struct {
	Kind          JournalKind
	Inode         uint32   // internal journal inode
	DeviceUUID    [16]byte // external journal device
	Device        uint32   // external journal device number, as recorded
	NeedsRecovery bool
}

// journalStatus reads the journal fields of the superblock.
func (f *FS) journalStatus() JournalStatus {
	sb := f.sb
	js := JournalStatus{Kind: JournalNone, NeedsRecovery: sb.FeatureIncompat.Has(layout.IncompatRecover)}
	if !sb.FeatureCompat.Has(layout.CompatHasJournal) {
		return js
	}
	if sb.JournalUUID != [16]byte{} || sb.JournalInum == 0 {
		js.Kind, js.DeviceUUID, js.Device = JournalExternal, sb.JournalUUID, sb.JournalDev
		return js
	}
	js.Kind, js.Inode = JournalInternal, sb.JournalInum
	return js
}

// checkJournalState replays, for a read-only open, a journal that needs
// recovery into memory (replayInMemory: reads see what a mount would, the
// image is not written). When that cannot be done safely it refuses
// (ErrNeedsRecovery and the cause) unless AllowDirtyJournal, which reads
// the unreplayed filesystem with a warning. A writable or checking open
// has replayed (or refused) already, in checkWritableState.
func (f *FS) checkJournalState() error {
	js := f.journalStatus()
	if !js.NeedsRecovery || f.opts.Writable || f.opts.CheckWritable {
		return nil
	}
	n, err := f.replayInMemory()
	if err == nil {
		f.warn(fmt.Sprintf("ext: the %s journal needs recovery: reading through a replay of %d blocks made in memory (the image is not changed)", js.Kind, n))
		return nil
	}
	if !f.opts.AllowDirtyJournal {
		return err
	}
	f.warn(fmt.Sprintf("ext: the %s journal needs recovery and was not replayed (%v): reads may miss the newest metadata", js.Kind, err))
	return nil
}

// Journal describes a validated internal jbd2 journal superblock.
type Journal struct {
	Inode        uint32
	BlockSize    uint32
	MaxLen       uint32 // journal length in blocks
	First        uint32 // first log block
	Sequence     uint32 // first expected commit sequence
	Start        uint32 // first block of the log, 0 when the journal is empty
	Errno        int32
	Version      int // 1 or 2
	incompat     layout.JournalIncompat
	Features     []string
	ChecksumType uint8
	NumFCBlocks  uint32
	UUID         [16]byte
	raw          *layout.JournalSuperblock // the decoded superblock, for the replay and the commit
}

// Journal reads and validates the internal journal's superblock. It fails
// for a filesystem without a journal or with an external one.
func (f *FS) Journal() (*Journal, error) {
	js := f.journalStatus()
	if js.Kind != JournalInternal {
		return nil, fmt.Errorf("ext: no internal journal (journal is %s)", js.Kind)
	}
	in, err := f.inode(js.Inode)
	if err != nil {
		return nil, err
	}
	d, err := f.openData(in)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, layout.JournalSuperblockSize)
	if n, err := d.ReadAt(buf, 0); n < len(buf) {
		return nil, corrupt("journal superblock", 0, in.num, -1, "journal inode holds %d bytes: %v", n, err)
	}
	jsb, err := layout.DecodeJournalSuperblock(buf)
	if err != nil {
		return nil, err
	}
	return f.checkJournal(in, buf, jsb)
}

// checkJournal validates a decoded journal superblock.
func (f *FS) checkJournal(in *inode, buf []byte, s *layout.JournalSuperblock) (*Journal, error) {
	bad := func(format string, args ...any) (*Journal, error) {
		return nil, corrupt("journal superblock", 0, in.num, -1, format, args...)
	}
	j := &Journal{Inode: in.num, BlockSize: s.BlockSize, MaxLen: s.MaxLen, First: s.First,
		Sequence: s.Sequence, Start: s.Start, Errno: s.Errno, incompat: s.FeatureIncompat,
		Features: s.FeatureIncompat.Names(), ChecksumType: s.ChecksumType, NumFCBlocks: s.NumFcBlks,
		UUID: s.UUID, raw: s}
	switch s.Header.BlockType {
	case layout.JournalSuperblockV1:
		j.Version = 1
	case layout.JournalSuperblockV2:
		j.Version = 2
	default:
		return bad("block type %d", s.Header.BlockType)
	}
	fileBlocks := uint64(in.size) / uint64(f.geo.blockSize)
	switch {
	case s.Header.Magic != layout.JournalMagic:
		return bad("magic %#x", s.Header.Magic)
	case int64(s.BlockSize) != f.geo.blockSize:
		return bad("block size %d, filesystem uses %d", s.BlockSize, f.geo.blockSize)
	case s.MaxLen < 1024 || uint64(s.MaxLen) > fileBlocks:
		return bad("length %d blocks, inode holds %d", s.MaxLen, fileBlocks)
	case s.First == 0 || s.First >= s.MaxLen:
		return bad("first log block %d of %d", s.First, s.MaxLen)
	case s.Start != 0 && (s.Start < s.First || s.Start >= s.MaxLen):
		return bad("log start %d outside %d..%d", s.Start, s.First, s.MaxLen)
	}
	if j.Version == 2 {
		return f.checkJournalV2(j, buf, bad)
	}
	return j, nil
}

// checkJournalV2 checks features and the superblock checksum.
func (f *FS) checkJournalV2(j *Journal, buf []byte, bad func(string, ...any) (*Journal, error)) (*Journal, error) {
	s := j.raw
	if u := s.FeatureIncompat &^ layout.JournalIncompatKnown; u != 0 {
		return nil, unsupported("journal incompat features %#x", uint32(u))
	}
	v2v3 := s.FeatureIncompat&(layout.JournalIncompatCsumV2|layout.JournalIncompatCsumV3) != 0
	if !v2v3 {
		return j, nil
	}
	if s.ChecksumType != layout.JournalCsumTypeCRC32C {
		return bad("checksum type %d", s.ChecksumType)
	}
	tmp := append([]byte(nil), buf...)
	clear(tmp[layout.JournalCsumOffset : layout.JournalCsumOffset+4])
	if want := crc32c(^uint32(0), tmp); want != s.Checksum {
		return nil, badChecksum("journal superblock", 0, j.Inode, -1, s.Checksum, want)
	}
	return j, nil
}
