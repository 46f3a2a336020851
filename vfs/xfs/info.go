package xfs

import (
	"fmt"
	"strings"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// Info summarises the superblock for inspection.
type Info struct {
	Version    int // 4 or 5
	Label      string
	UUID       [16]byte
	BlockSize  int
	Blocks     uint64 // data blocks
	FreeBlocks uint64 // as the superblock counts them (lazy counters may lag)
	Inodes     uint64 // allocated inodes
	FreeInodes uint64
	Features   []string
	Log        LogState
}

// Info describes the filesystem from the superblock and Open's log check.
func (f *FS) Info() Info {
	defer f.rlock()()
	sb := f.sb
	var feats []string
	add := func(s string) {
		if s != "" {
			feats = append(feats, strings.Split(s, ",")...)
		}
	}
	add(sb.Bits().String())
	if sb.Bits()&layout.VersionMoreBits != 0 {
		add(sb.Features2.String())
	}
	if sb.HasCRC() {
		add(sb.FeaturesROCompat.String())
		add(sb.FeaturesIncompat.String())
		add(sb.FeaturesLogIncompat.String())
	}
	return Info{
		Version: sb.Version(), Label: sb.Label(), UUID: sb.UUID, BlockSize: int(f.geo.blockSize),
		Blocks: sb.DBlocks, FreeBlocks: sb.FDBlocks, Inodes: sb.ICount, FreeInodes: sb.IFree,
		Features: feats, Log: f.log,
	}
}

// UUIDString formats a UUID in its usual 8-4-4-4-12 form.
func UUIDString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
