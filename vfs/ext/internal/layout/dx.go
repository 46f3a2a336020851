package layout

// Hash tree (dir_index) constants.
const (
	DxRootInfoOffset = 0x18 // after the "." and ".." entries
	DxRootInfoSize   = 8
	DxRootEntries    = 0x20 // the count/limit pair, then entries
	DxNodeEntries    = 0x08 // after a fake empty dirent
	DxEntrySize      = 8
	DxTailSize       = 8
	DxMaxLevels      = 2 // indirect levels without large_dir
	DxMaxLevelsLarge = 3 // with large_dir
)

// DxRootInfo is struct dx_root_info, at DxRootInfoOffset in block 0 of an
// indexed directory.
type DxRootInfo struct {
	ReservedZero   uint32 // 0x0
	HashVersion    uint8  // 0x4
	InfoLength     uint8  // 0x5 == 8
	IndirectLevels uint8  // 0x6
	UnusedFlags    uint8  // 0x7
}

// DxCountLimit is struct dx_countlimit: it overlays the hash of the first
// entry of a root or node.
type DxCountLimit struct {
	Limit uint16 // 0x0
	Count uint16 // 0x2
}

// DxEntry is struct dx_entry: the first block of the subtree holding the
// names whose hash is at least Hash.
type DxEntry struct {
	Hash  uint32 // 0x0
	Block uint32 // 0x4 logical block in the directory
}

// DxTail is struct dx_tail, after Limit entries in a metadata_csum tree.
type DxTail struct {
	Reserved uint32 // 0x0
	Checksum uint32 // 0x4
}

// DecodeDxRootInfo decodes the root info of directory block 0.
func DecodeDxRootInfo(block []byte) (*DxRootInfo, error) {
	var r DxRootInfo
	return &r, decode(sub(block, DxRootInfoOffset), &r, "dx root info")
}

// DecodeDxCountLimit decodes the count/limit pair at off.
func DecodeDxCountLimit(block []byte, off int) (*DxCountLimit, error) {
	var c DxCountLimit
	return &c, decode(sub(block, off), &c, "dx count/limit")
}

// DecodeDxEntry decodes the i-th entry of the array starting at off (entry
// 0's Hash is the count/limit pair and means 0).
func DecodeDxEntry(block []byte, off, i int) (*DxEntry, error) {
	var e DxEntry
	if err := decode(sub(block, off+i*DxEntrySize), &e, "dx entry"); err != nil {
		return nil, err
	}
	if i == 0 {
		e.Hash = 0
	}
	return &e, nil
}

// DecodeDxTail decodes a tail at off.
func DecodeDxTail(block []byte, off int) (*DxTail, error) {
	var t DxTail
	return &t, decode(sub(block, off), &t, "dx tail")
}

// Directory hash versions (DxRootInfo.HashVersion, DefHashVersion).
const (
	HashLegacy          = 0
	HashHalfMD4         = 1
	HashTea             = 2
	HashLegacyUnsigned  = 3
	HashHalfMD4Unsigned = 4
	HashTeaUnsigned     = 5
	HashSipHash         = 6
)
