package layout

import "encoding/binary"

// EmptyExtentLeaf returns a leaf node with no extents (room for one):
// what a lookup stands in for a hole before a subtree.
func EmptyExtentLeaf() []byte {
	b := make([]byte, ExtentHeaderSize+ExtentEntrySize)
	PutExtentHeader(b, ExtentHeader{Magic: ExtentMagic, Max: 1})
	return b
}

// PutExtentHeader writes a node header at the start of b.
func PutExtentHeader(b []byte, h ExtentHeader) {
	binary.LittleEndian.PutUint16(b[0x0:], h.Magic)
	binary.LittleEndian.PutUint16(b[0x2:], h.Entries)
	binary.LittleEndian.PutUint16(b[0x4:], h.Max)
	binary.LittleEndian.PutUint16(b[0x6:], h.Depth)
	binary.LittleEndian.PutUint32(b[0x8:], h.Generation)
}

// PutExtent writes leaf entry i of node b.
func PutExtent(b []byte, i int, e Extent) {
	p := b[ExtentHeaderSize+i*ExtentEntrySize:]
	binary.LittleEndian.PutUint32(p[0x0:], e.Block)
	binary.LittleEndian.PutUint16(p[0x4:], e.Len)
	binary.LittleEndian.PutUint16(p[0x6:], e.StartHi)
	binary.LittleEndian.PutUint32(p[0x8:], e.StartLo)
}

// PutExtentIndex writes index entry i of node b.
func PutExtentIndex(b []byte, i int, e ExtentIndex) {
	p := b[ExtentHeaderSize+i*ExtentEntrySize:]
	binary.LittleEndian.PutUint32(p[0x0:], e.Block)
	binary.LittleEndian.PutUint32(p[0x4:], e.LeafLo)
	binary.LittleEndian.PutUint16(p[0x8:], e.LeafHi)
	binary.LittleEndian.PutUint16(p[0xA:], e.Unused)
}

// NewExtent builds a leaf entry of n blocks (at most ExtentInitMaxLen, or
// ExtentInitMaxLen-1 when uninit) from logical block l to physical p.
func NewExtent(l uint32, p uint64, n uint16, uninit bool) Extent {
	if uninit {
		n += ExtentInitMaxLen
	}
	return Extent{Block: l, Len: n, StartHi: uint16(p >> 32), StartLo: uint32(p)}
}

// NewExtentIndex builds an index entry for the child at block p covering
// logical blocks from l.
func NewExtentIndex(l uint32, p uint64) ExtentIndex {
	return ExtentIndex{Block: l, LeafLo: uint32(p), LeafHi: uint16(p >> 32)}
}

// ExtentNodeMax is how many entries a node of size bytes holds (the
// checksum tail, when present, fits in what is left).
func ExtentNodeMax(size int) int { return (size - ExtentHeaderSize) / ExtentEntrySize }
