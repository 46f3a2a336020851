package ext

import (
	"bytes"
	"fmt"
	"time"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Info summarises a filesystem, as dumpe2fs -h would.
type Info struct {
	BlockSize       int
	ClusterSize     int
	BlocksCount     uint64
	FreeBlocks      uint64
	ReservedBlocks  uint64
	FirstDataBlock  uint64
	BlocksPerGroup  uint32
	Groups          uint32
	InodesCount     uint32
	FreeInodes      uint32
	InodesPerGroup  uint32
	InodeSize       int
	FirstInode      uint32
	DescSize        int
	Label           string
	UUID            [16]byte
	LastMounted     string
	Revision        uint32
	MinorRevision   uint16
	Compat          []string
	Incompat        []string
	ROCompat        []string
	UnknownROCompat uint32 // unknown ro_compat bits (read-only open allowed)
	Clean           bool   // cleanly unmounted
	Errors          bool   // errors recorded
	Journal         JournalStatus
	DefHashVersion  uint8
	HashUnsigned    bool
	HashSeed        [4]uint32
	Checksums       string // "metadata_csum", "gdt_csum" or "none"
	Encoding        string // "utf8-12.1" for casefold filesystems, else ""
	Created         time.Time
	LastWritten     time.Time
	MMP             bool
	// JournalReplayed is the number of blocks a journal replay carries
	// home, when this FS was opened over a journal needing recovery and
	// replayed it; JournalWasReplayed says whether one happened, and
	// JournalReplayPending that it is held in memory only (the image has
	// not been written since: Journal.NeedsRecovery is then still true).
	// Every other field describes the filesystem as reads see it, replay
	// included.
	JournalReplayed      int
	JournalWasReplayed   bool
	JournalReplayPending bool
}

// Info describes the filesystem from its superblock.
func (f *FS) Info() Info {
	defer f.rlock()()
	sb := f.sb
	i := Info{
		BlockSize: int(f.geo.blockSize), ClusterSize: int(f.geo.clusterSize),
		BlocksCount: f.geo.blocksCount, FreeBlocks: sb.FreeBlocksCount(), ReservedBlocks: sb.RBlocksCount(),
		FirstDataBlock: f.geo.firstData, BlocksPerGroup: f.geo.bpg, Groups: f.geo.groups,
		InodesCount: sb.InodesCount, FreeInodes: sb.FreeInodesCount, InodesPerGroup: f.geo.ipg,
		InodeSize: f.geo.inodeSize, FirstInode: f.geo.firstIno, DescSize: f.geo.descSize,
		Label: cString(sb.VolumeName[:]), UUID: sb.UUID, LastMounted: cString(sb.LastMounted[:]),
		Revision: sb.RevLevel, MinorRevision: sb.MinorRevLevel,
		Compat: sb.FeatureCompat.Names(), Incompat: sb.FeatureIncompat.Names(), ROCompat: sb.FeatureROCompat.Names(),
		UnknownROCompat: uint32(sb.FeatureROCompat.Unknown()),
		Clean:           sb.State&layout.StateValid != 0, Errors: sb.State&layout.StateErrors != 0,
		Journal: f.journalStatus(), DefHashVersion: sb.DefHashVersion, HashUnsigned: f.geo.hashUnsigned,
		HashSeed: sb.HashSeed, Checksums: "none",
		Created:     time.Unix(int64(sb.MkfsTime)|int64(sb.MkfsTimeHi)<<32, 0),
		LastWritten: time.Unix(int64(sb.Wtime)|int64(sb.WtimeHi)<<32, 0),
		MMP:         sb.FeatureIncompat.Has(layout.IncompatMMP),
	}
	i.JournalReplayed, i.JournalWasReplayed = f.JournalReplayed()
	if f.replayPending() {
		i.JournalReplayPending, i.Journal.NeedsRecovery = true, true
		i.Incompat = (sb.FeatureIncompat | layout.IncompatRecover).Names()
	}
	switch {
	case f.geo.metaCsum:
		i.Checksums = "metadata_csum"
	case f.geo.gdtCsum:
		i.Checksums = "gdt_csum"
	}
	if sb.FeatureIncompat.Has(layout.IncompatCasefold) {
		i.Encoding = "utf8-12.1"
	}
	return i
}

// UUIDString formats a UUID the usual way.
func UUIDString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
