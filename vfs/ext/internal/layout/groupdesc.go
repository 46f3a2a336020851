package layout

// Group descriptor sizes: 32 bytes without the 64bit feature, DescSize
// (at least 64, a power of two) with it.
const (
	GroupDescMinSize    = 32
	GroupDesc64Size     = 64
	GroupDescMaxSize    = 1024
	GroupDescCsumOffset = 0x1E
)

// GroupDesc is struct ext4_group_desc; the fields from BlockBitmapHi on
// exist only in 64-byte descriptors (they decode as zero from a 32-byte one).
type GroupDesc struct {
	BlockBitmapLo     uint32    // 0x00
	InodeBitmapLo     uint32    // 0x04
	InodeTableLo      uint32    // 0x08
	FreeBlocksCountLo uint16    // 0x0C
	FreeInodesCountLo uint16    // 0x0E
	UsedDirsCountLo   uint16    // 0x10
	Flags             GroupFlag // 0x12
	ExcludeBitmapLo   uint32    // 0x14
	BlockBitmapCsumLo uint16    // 0x18
	InodeBitmapCsumLo uint16    // 0x1A
	ItableUnusedLo    uint16    // 0x1C
	Checksum          uint16    // 0x1E
	BlockBitmapHi     uint32    // 0x20
	InodeBitmapHi     uint32    // 0x24
	InodeTableHi      uint32    // 0x28
	FreeBlocksCountHi uint16    // 0x2C
	FreeInodesCountHi uint16    // 0x2E
	UsedDirsCountHi   uint16    // 0x30
	ItableUnusedHi    uint16    // 0x32
	ExcludeBitmapHi   uint32    // 0x34
	BlockBitmapCsumHi uint16    // 0x38
	InodeBitmapCsumHi uint16    // 0x3A
	Reserved          uint32    // 0x3C
}

// GroupFlag is bg_flags.
type GroupFlag uint16

// Group flags.
const (
	GroupInodeUninit GroupFlag = 0x1 // inode table and bitmap not initialised
	GroupBlockUninit GroupFlag = 0x2 // block bitmap not initialised
	GroupInodeZeroed GroupFlag = 0x4 // inode table zeroed
)

// DecodeGroupDesc decodes a descriptor of size bytes (32, or DescSize with
// 64bit) from the start of b.
func DecodeGroupDesc(b []byte, size int) (*GroupDesc, error) {
	var g GroupDesc
	if size >= GroupDesc64Size {
		return &g, decode(b, &g, "group descriptor")
	}
	var buf [GroupDesc64Size]byte
	if len(b) < GroupDescMinSize {
		return nil, decode(b, &g, "group descriptor")
	}
	copy(buf[:], b[:GroupDescMinSize])
	return &g, decode(buf[:], &g, "group descriptor")
}

// BlockBitmap, InodeBitmap, InodeTable, ItableUnused, FreeBlocksCount,
// FreeInodesCount and UsedDirsCount join their Lo and Hi halves.
func (g *GroupDesc) BlockBitmap() uint64 { return join32(g.BlockBitmapLo, g.BlockBitmapHi) }
func (g *GroupDesc) InodeBitmap() uint64 { return join32(g.InodeBitmapLo, g.InodeBitmapHi) }
func (g *GroupDesc) InodeTable() uint64  { return join32(g.InodeTableLo, g.InodeTableHi) }
func (g *GroupDesc) ItableUnused() uint32 {
	return uint32(g.ItableUnusedHi)<<16 | uint32(g.ItableUnusedLo)
}
func (g *GroupDesc) FreeBlocksCount() uint32 {
	return uint32(g.FreeBlocksCountHi)<<16 | uint32(g.FreeBlocksCountLo)
}
func (g *GroupDesc) FreeInodesCount() uint32 {
	return uint32(g.FreeInodesCountHi)<<16 | uint32(g.FreeInodesCountLo)
}
func (g *GroupDesc) UsedDirsCount() uint32 {
	return uint32(g.UsedDirsCountHi)<<16 | uint32(g.UsedDirsCountLo)
}

func join32(lo, hi uint32) uint64        { return uint64(hi)<<32 | uint64(lo) }
func join16(lo uint32, hi uint16) uint64 { return uint64(hi)<<32 | uint64(lo) }
