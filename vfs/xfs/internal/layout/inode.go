package layout

import (
	"encoding/binary"
	"time"
)

// InodeMagic starts every on-disk inode ("IN").
const InodeMagic = 0x494E

// Sizes of the inode core: version 1 and 2 inodes end at 0x64, version 3
// (v5 filesystems) at 0xB0; the data fork follows.
const (
	InodeCoreV2Size = 0x64
	InodeCoreV3Size = 0xB0
	InodeCRCOffset  = 0x64
)

// Fork formats (di_format, di_aformat).
type ForkFormat uint8

const (
	FormatDev     ForkFormat = 0 // a device number
	FormatLocal   ForkFormat = 1 // data inside the inode
	FormatExtents ForkFormat = 2 // an array of extent records
	FormatBtree   ForkFormat = 3 // the root of a bmap btree
	FormatUUID    ForkFormat = 4 // unused
	FormatRmap    ForkFormat = 5 // reverse-map btree root (metadata inodes)
)

func (f ForkFormat) String() string {
	switch f {
	case FormatDev:
		return "dev"
	case FormatLocal:
		return "local"
	case FormatExtents:
		return "extents"
	case FormatBtree:
		return "btree"
	case FormatUUID:
		return "uuid"
	case FormatRmap:
		return "rmap"
	}
	return "unknown"
}

// InodeFlag is di_flags.
type InodeFlag uint16

const (
	FlagRealtime     InodeFlag = 0x0001
	FlagPrealloc     InodeFlag = 0x0002
	FlagNewRtBM      InodeFlag = 0x0004
	FlagImmutable    InodeFlag = 0x0008
	FlagAppend       InodeFlag = 0x0010
	FlagSync         InodeFlag = 0x0020
	FlagNoAtime      InodeFlag = 0x0040
	FlagNoDump       InodeFlag = 0x0080
	FlagRtInherit    InodeFlag = 0x0100
	FlagProjInherit  InodeFlag = 0x0200
	FlagNoSymlinks   InodeFlag = 0x0400
	FlagExtSize      InodeFlag = 0x0800
	FlagExtSzInherit InodeFlag = 0x1000
	FlagNoDefrag     InodeFlag = 0x2000
	FlagFilestream   InodeFlag = 0x4000
)

// InodeFlag2 is di_flags2 (version 3 inodes).
type InodeFlag2 uint64

const (
	Flag2DAX        InodeFlag2 = 0x01
	Flag2Reflink    InodeFlag2 = 0x02
	Flag2CowExtSize InodeFlag2 = 0x04
	Flag2Bigtime    InodeFlag2 = 0x08 // timestamps are 64-bit nanosecond counters
	Flag2Nrext64    InodeFlag2 = 0x10 // 64-bit data extent counter
)

// Timestamp is an inode time: seconds and nanoseconds, or with bigtime one
// nanosecond counter from BigtimeEpochOffset seconds before 1970.
type Timestamp uint64

// BigtimeEpochOffset is how many seconds before the Unix epoch a bigtime
// counter starts (the most negative 32-bit time).
const BigtimeEpochOffset = 1 << 31

// Time decodes t as bigtime or as classic seconds and nanoseconds.
func (t Timestamp) Time(bigtime bool) time.Time {
	if bigtime {
		ns := uint64(t)
		return time.Unix(int64(ns/1e9)-BigtimeEpochOffset, int64(ns%1e9))
	}
	return time.Unix(int64(int32(uint32(t>>32))), int64(int32(uint32(t))))
}

// InodeCore is the fixed start of an on-disk inode (struct xfs_dinode).
// Version 1 and 2 inodes stop at NextUnlinked; version 3 ones carry the
// rest.
type InodeCore struct {
	Magic        uint16     // 0x00 "IN"
	Mode         uint16     // 0x02 type and permission bits
	Version      uint8      // 0x04 1, 2 or 3
	Format       ForkFormat // 0x05 data fork format
	ONlink       uint16     // 0x06 link count of version 1 inodes
	UID          uint32     // 0x08
	GID          uint32     // 0x0C
	Nlink        uint32     // 0x10 link count (version 2 and 3)
	ProjidLo     uint16     // 0x14
	ProjidHi     uint16     // 0x16
	BigNextents  uint64     // 0x18 nrext64: data fork extents; else padding and di_flushiter
	Atime        Timestamp  // 0x20
	Mtime        Timestamp  // 0x28
	Ctime        Timestamp  // 0x30
	Size         uint64     // 0x38 bytes in the file
	NBlocks      uint64     // 0x40 blocks used, forks and btree blocks included
	ExtSize      uint32     // 0x48 extent size hint
	Nextents     uint32     // 0x4C data extents, or with nrext64 attr extents
	Anextents    uint16     // 0x50 attr extents (zero with nrext64)
	ForkOff      uint8      // 0x52 attr fork offset in 8-byte units from the fork area
	AFormat      ForkFormat // 0x53 attr fork format
	DMEvMask     uint32     // 0x54
	DMState      uint16     // 0x58
	Flags        InodeFlag  // 0x5A
	Gen          uint32     // 0x5C generation
	NextUnlinked uint32     // 0x60 unlinked list
	CRC          uint32     // 0x64 v3: CRC32c of the whole inode (little-endian)
	ChangeCount  uint64     // 0x68 v3
	LSN          uint64     // 0x70 v3
	Flags2       InodeFlag2 // 0x78 v3
	CowExtSize   uint32     // 0x80 v3
	Pad2         [12]byte   // 0x84 v3
	Crtime       Timestamp  // 0x90 v3 creation time
	Ino          uint64     // 0x98 v3 its own inode number
	UUID         [16]byte   // 0xA0 v3 metadata UUID
}

// DecodeInodeCore decodes the inode core at the start of b. b must hold
// the version 3 core (an inode is never smaller than 256 bytes); for
// version 1 and 2 inodes the fields from CRC on are meaningless.
func DecodeInodeCore(b []byte) (*InodeCore, error) {
	c := new(InodeCore)
	if err := decode(b, c, "inode core"); err != nil {
		return nil, err
	}
	c.CRC = binary.LittleEndian.Uint32(b[InodeCRCOffset:])
	return c, nil
}

// CoreSize is where the data fork starts for this inode's version.
func (c *InodeCore) CoreSize() int {
	if c.Version >= 3 {
		return InodeCoreV3Size
	}
	return InodeCoreV2Size
}

// Projid joins the project id halves.
func (c *InodeCore) Projid() uint32 { return uint32(c.ProjidHi)<<16 | uint32(c.ProjidLo) }

// Links returns the link count as the version stores it.
func (c *InodeCore) Links() uint32 {
	if c.Version == 1 {
		return uint32(c.ONlink)
	}
	return c.Nlink
}

// Bigtime reports 64-bit nanosecond timestamps.
func (c *InodeCore) Bigtime() bool { return c.Version >= 3 && c.Flags2&Flag2Bigtime != 0 }

// DataExtents is the number of data fork extent records.
func (c *InodeCore) DataExtents() uint64 {
	if c.Version >= 3 && c.Flags2&Flag2Nrext64 != 0 {
		return c.BigNextents
	}
	return uint64(c.Nextents)
}

// AttrExtents is the number of attr fork extent records.
func (c *InodeCore) AttrExtents() uint64 {
	if c.Version >= 3 && c.Flags2&Flag2Nrext64 != 0 {
		return uint64(c.Nextents)
	}
	return uint64(c.Anextents)
}

// DevNumber splits the 32-bit device number a device inode's data fork
// holds (major in the high 14 bits, minor in the low 18).
func DevNumber(v uint32) (major, minor uint32) { return v >> 18, v & 0x3FFFF }
