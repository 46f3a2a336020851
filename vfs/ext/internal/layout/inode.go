package layout

import "encoding/binary"

// Inode sizes: the good old 128 bytes, and the extended part that
// ExtraIsize measures from there.
const (
	InodeBaseSize      = 128
	InodeExtSize       = 160 // the base plus every extended field below
	NBlocks            = 15  // i_block words
	NDirBlocks         = 12  // direct pointers in a block map
	IndBlock           = 12  // single indirect
	DIndBlock          = 13  // double indirect
	TIndBlock          = 14  // triple indirect
	InodeBlockSize     = 60  // bytes of i_block
	InodeChecksumLoOff = 0x7C
	InodeChecksumHiOff = 0x82
	// InodeCsumHiEnd: ExtraIsize must reach this far (from 128) for
	// ChecksumHi to exist.
	InodeCsumHiEnd = 4
)

// Inode is struct ext4_inode with the Linux osd fields; fields from
// ExtraIsize on exist only when the inode is larger than 128 bytes and
// ExtraIsize covers them (see HasExtra).
type Inode struct {
	Mode        uint16          // 0x00
	UIDLo       uint16          // 0x02
	SizeLo      uint32          // 0x04
	Atime       uint32          // 0x08
	Ctime       uint32          // 0x0C
	Mtime       uint32          // 0x10
	Dtime       uint32          // 0x14
	GIDLo       uint16          // 0x18
	LinksCount  uint16          // 0x1A
	BlocksLo    uint32          // 0x1C
	Flags       InodeFlag       // 0x20
	Version     uint32          // 0x24 osd1.linux1.l_i_version
	Block       [NBlocks]uint32 // 0x28
	Generation  uint32          // 0x64
	FileACLLo   uint32          // 0x68
	SizeHi      uint32          // 0x6C
	ObsoFaddr   uint32          // 0x70
	BlocksHi    uint16          // 0x74 osd2.linux2
	FileACLHi   uint16          // 0x76
	UIDHi       uint16          // 0x78
	GIDHi       uint16          // 0x7A
	ChecksumLo  uint16          // 0x7C
	Reserved    uint16          // 0x7E
	ExtraIsize  uint16          // 0x80
	ChecksumHi  uint16          // 0x82
	CtimeExtra  uint32          // 0x84
	MtimeExtra  uint32          // 0x88
	AtimeExtra  uint32          // 0x8C
	Crtime      uint32          // 0x90
	CrtimeExtra uint32          // 0x94
	VersionHi   uint32          // 0x98
	Projid      uint32          // 0x9C
}

// DecodeInode decodes an inode record (128 bytes or more). Extended fields
// beyond len(b) decode as zero; whether they are valid is for HasExtra.
func DecodeInode(b []byte) (*Inode, error) {
	var in Inode
	if len(b) >= InodeExtSize {
		return &in, decode(b, &in, "inode")
	}
	var buf [InodeExtSize]byte
	if len(b) < InodeBaseSize {
		return nil, decode(b, &in, "inode")
	}
	copy(buf[:], b)
	return &in, decode(buf[:], &in, "inode")
}

// HasExtra reports whether the extended field ending at byte end (an
// offset from the inode's start, e.g. 0x8C for MtimeExtra) is covered by
// ExtraIsize.
func (in *Inode) HasExtra(end int) bool { return InodeBaseSize+int(in.ExtraIsize) >= end }

// Extended-field ends, for HasExtra.
const (
	EndChecksumHi  = 0x84
	EndCtimeExtra  = 0x88
	EndMtimeExtra  = 0x8C
	EndAtimeExtra  = 0x90
	EndCrtimeExtra = 0x98
	EndProjid      = 0xA0
)

// UID and GID join the 16-bit halves.
func (in *Inode) UID() uint32 { return uint32(in.UIDHi)<<16 | uint32(in.UIDLo) }
func (in *Inode) GID() uint32 { return uint32(in.GIDHi)<<16 | uint32(in.GIDLo) }

// Size joins SizeLo and SizeHi (raw; the kernel ignores SizeHi of a
// directory without large_dir, which is the caller's call).
func (in *Inode) Size() uint64 { return uint64(in.SizeHi)<<32 | uint64(in.SizeLo) }

// FileACL joins the xattr block number halves.
func (in *Inode) FileACL() uint64 { return join16(in.FileACLLo, in.FileACLHi) }

// Blocks joins BlocksLo and BlocksHi; the unit (512 bytes, or a filesystem
// block with HugeFile) is the caller's call.
func (in *Inode) Blocks() uint64 { return join16(in.BlocksLo, in.BlocksHi) }

// BlockBytes returns i_block as the 60 raw bytes it is on disk (for inline
// data, fast symlinks and the in-inode extent root).
func (in *Inode) BlockBytes() []byte {
	b := make([]byte, InodeBlockSize)
	for i, w := range in.Block {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// Type returns the file type bits of Mode.
func (in *Inode) Type() uint16 { return in.Mode & 0xF000 }

// Inode file types (Mode & 0xF000).
const (
	ModeFIFO    = 0x1000
	ModeChar    = 0x2000
	ModeDir     = 0x4000
	ModeBlock   = 0x6000
	ModeRegular = 0x8000
	ModeSymlink = 0xA000
	ModeSocket  = 0xC000
)

// InodeFlag is i_flags.
type InodeFlag uint32

// Inode flags.
const (
	FlagSecrm       InodeFlag = 0x00000001
	FlagUnrm        InodeFlag = 0x00000002
	FlagCompr       InodeFlag = 0x00000004
	FlagSync        InodeFlag = 0x00000008
	FlagImmutable   InodeFlag = 0x00000010
	FlagAppend      InodeFlag = 0x00000020
	FlagNodump      InodeFlag = 0x00000040
	FlagNoatime     InodeFlag = 0x00000080
	FlagDirty       InodeFlag = 0x00000100
	FlagComprBlk    InodeFlag = 0x00000200
	FlagNoCompr     InodeFlag = 0x00000400
	FlagEncrypt     InodeFlag = 0x00000800
	FlagIndex       InodeFlag = 0x00001000
	FlagImagic      InodeFlag = 0x00002000
	FlagJournalData InodeFlag = 0x00004000
	FlagNotail      InodeFlag = 0x00008000
	FlagDirsync     InodeFlag = 0x00010000
	FlagTopdir      InodeFlag = 0x00020000
	FlagHugeFile    InodeFlag = 0x00040000
	FlagExtents     InodeFlag = 0x00080000
	FlagVerity      InodeFlag = 0x00100000
	FlagEAInode     InodeFlag = 0x00200000
	FlagDAX         InodeFlag = 0x02000000
	FlagInlineData  InodeFlag = 0x10000000
	FlagProjinherit InodeFlag = 0x20000000
	FlagCasefold    InodeFlag = 0x40000000
)

// Has reports whether every bit of g is set in f.
func (f InodeFlag) Has(g InodeFlag) bool { return f&g == g }

// Reserved inode numbers.
const (
	BadBlocksIno  = 1
	UsrQuotaIno   = 3
	GrpQuotaIno   = 4
	BootLoaderIno = 5
	UndelDirIno   = 6
	ResizeIno     = 7
	JournalIno    = 8
)

// Time extra fields: the low 2 bits extend the signed 32-bit seconds by
// 2^32 per epoch, the high 30 bits are nanoseconds.
const (
	TimeEpochMask = 0x3
	TimeNsecShift = 2
)

// DecodeTime returns seconds and nanoseconds from a time field and its
// extra word (pass 0 when the extra field is absent).
func DecodeTime(sec, extra uint32) (int64, int64) {
	s := int64(int32(sec)) + int64(extra&TimeEpochMask)<<32
	return s, int64(extra >> TimeNsecShift)
}
