package layout

// Extent tree node constants.
const (
	ExtentMagic      = 0xF30A
	ExtentHeaderSize = 12
	ExtentEntrySize  = 12
	ExtentTailSize   = 4
	ExtentMaxDepth   = 5
	// ExtentInitMaxLen: an ee_len above this marks an uninitialized extent
	// of ee_len-ExtentInitMaxLen blocks.
	ExtentInitMaxLen = 32768
)

// ExtentHeader is struct ext4_extent_header, at the start of every node.
type ExtentHeader struct {
	Magic      uint16 // 0x0
	Entries    uint16 // 0x2
	Max        uint16 // 0x4
	Depth      uint16 // 0x6
	Generation uint32 // 0x8
}

// Extent is struct ext4_extent, an entry of a leaf node (Depth 0).
type Extent struct {
	Block   uint32 // 0x0 first logical block
	Len     uint16 // 0x4
	StartHi uint16 // 0x6
	StartLo uint32 // 0x8
}

// ExtentIndex is struct ext4_extent_idx, an entry of an interior node.
type ExtentIndex struct {
	Block  uint32 // 0x0 first logical block covered by the child
	LeafLo uint32 // 0x4
	LeafHi uint16 // 0x8
	Unused uint16 // 0xA
}

// DecodeExtentHeader decodes a node header from the start of b.
func DecodeExtentHeader(b []byte) (ExtentHeader, error) {
	if len(b) < ExtentHeaderSize {
		return ExtentHeader{}, short("extent header", ExtentHeaderSize, len(b))
	}
	return ExtentHeader{Magic: le.Uint16(b), Entries: le.Uint16(b[2:]), Max: le.Uint16(b[4:]), Depth: le.Uint16(b[6:]), Generation: le.Uint32(b[8:])}, nil
}

// DecodeExtent decodes the i-th leaf entry of node b.
func DecodeExtent(b []byte, i int) (Extent, error) {
	e := sub(b, ExtentHeaderSize+i*ExtentEntrySize)
	if len(e) < ExtentEntrySize {
		return Extent{}, short("extent", ExtentEntrySize, len(e))
	}
	return Extent{Block: le.Uint32(e), Len: le.Uint16(e[4:]), StartHi: le.Uint16(e[6:]), StartLo: le.Uint32(e[8:])}, nil
}

// DecodeExtentIndex decodes the i-th index entry of node b.
func DecodeExtentIndex(b []byte, i int) (ExtentIndex, error) {
	e := sub(b, ExtentHeaderSize+i*ExtentEntrySize)
	if len(e) < ExtentEntrySize {
		return ExtentIndex{}, short("extent index", ExtentEntrySize, len(e))
	}
	return ExtentIndex{Block: le.Uint32(e), LeafLo: le.Uint32(e[4:]), LeafHi: le.Uint16(e[8:]), Unused: le.Uint16(e[10:])}, nil
}

// Start joins the physical start block halves.
func (e *Extent) Start() uint64 { return join16(e.StartLo, e.StartHi) }

// Length returns the number of blocks and whether the extent is
// uninitialized (allocated, reads as zeros).
func (e *Extent) Length() (n uint32, uninit bool) {
	if e.Len > ExtentInitMaxLen {
		return uint32(e.Len) - ExtentInitMaxLen, true
	}
	return uint32(e.Len), false
}

// Leaf joins the child block number halves.
func (e *ExtentIndex) Leaf() uint64 { return join16(e.LeafLo, e.LeafHi) }

// ExtentTailOffset is where the checksum of a node with max entries sits.
func ExtentTailOffset(max int) int { return ExtentHeaderSize + max*ExtentEntrySize }

// sub returns b from off, or nothing when off is past its end.
func sub(b []byte, off int) []byte {
	if off < 0 || off > len(b) {
		return nil
	}
	return b[off:]
}
