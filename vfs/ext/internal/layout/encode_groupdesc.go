package layout

// Encode writes g into the size-byte descriptor slot b (32 bytes, or
// DescSize with 64bit). Bytes of b past the 64 this struct covers are left
// as they are; the checksum is written as it stands.
func (g *GroupDesc) Encode(b []byte, size int) {
	var buf [GroupDesc64Size]byte
	_ = encode(buf[:], g)
	copy(b[:min(size, GroupDesc64Size)], buf[:])
}

// SetBlockBitmap, SetInodeBitmap and SetInodeTable split block numbers;
// the setters below split counts into their Lo and Hi halves.
func (g *GroupDesc) SetBlockBitmap(n uint64) {
	g.BlockBitmapLo, g.BlockBitmapHi = uint32(n), uint32(n>>32)
}
func (g *GroupDesc) SetInodeBitmap(n uint64) {
	g.InodeBitmapLo, g.InodeBitmapHi = uint32(n), uint32(n>>32)
}
func (g *GroupDesc) SetInodeTable(n uint64) {
	g.InodeTableLo, g.InodeTableHi = uint32(n), uint32(n>>32)
}
func (g *GroupDesc) SetFreeBlocksCount(n uint32) {
	g.FreeBlocksCountLo, g.FreeBlocksCountHi = uint16(n), uint16(n>>16)
}
func (g *GroupDesc) SetFreeInodesCount(n uint32) {
	g.FreeInodesCountLo, g.FreeInodesCountHi = uint16(n), uint16(n>>16)
}
func (g *GroupDesc) SetUsedDirsCount(n uint32) {
	g.UsedDirsCountLo, g.UsedDirsCountHi = uint16(n), uint16(n>>16)
}
func (g *GroupDesc) SetItableUnused(n uint32) {
	g.ItableUnusedLo, g.ItableUnusedHi = uint16(n), uint16(n>>16)
}

// SetBlockBitmapCsum and SetInodeBitmapCsum store a crc32c: the low half
// always, the high half when the descriptor is 64 bytes or more.
func (g *GroupDesc) SetBlockBitmapCsum(c uint32, size int) {
	g.BlockBitmapCsumLo = uint16(c)
	if size >= GroupDesc64Size {
		g.BlockBitmapCsumHi = uint16(c >> 16)
	}
}
func (g *GroupDesc) SetInodeBitmapCsum(c uint32, size int) {
	g.InodeBitmapCsumLo = uint16(c)
	if size >= GroupDesc64Size {
		g.InodeBitmapCsumHi = uint16(c >> 16)
	}
}

// SetFreeBlocksCount splits a free-block count into the superblock's
// halves (the high half only with 64bit).
func (s *Superblock) SetFreeBlocksCount(n uint64) {
	s.FreeBlocksCountLo = uint32(n)
	if s.FeatureIncompat.Has(Incompat64Bit) {
		s.FreeBlocksCountHi = uint32(n >> 32)
	}
}
