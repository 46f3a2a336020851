package layout

// Directory/attribute btree ("da btree") magics, in the 16-bit magic of
// struct xfs_da_blkinfo (v4) and xfs_da3_blkinfo (v5).
const (
	DANodeMagic    = 0xFEBE // v4 interior node
	DA3NodeMagic   = 0x3EBE // v5 interior node
	Dir2Leaf1Magic = 0xD2F1 // v4 single leaf of a leaf-form directory
	Dir3Leaf1Magic = 0x3DF1
	Dir2LeafNMagic = 0xD2FF // v4 leaf of a node-form directory
	Dir3LeafNMagic = 0x3DFF
	AttrLeafMagic  = 0xFBEE // v4 attribute leaf
	Attr3LeafMagic = 0x3BEE
)

// Sizes and the v5 CRC offset of the da block headers.
const (
	DABlkinfoSize       = 0x0C
	DA3BlkinfoSize      = 0x38
	DA3BlkinfoCRCOffset = 0x0C
)

// DABlkinfo starts every da btree block: sibling links and the magic.
// On v5 it is followed by DA3Blkinfo's self-describing fields.
type DABlkinfo struct {
	Forw  uint32 // 0x00 next block at this level (da block number), 0 if none
	Back  uint32 // 0x04 previous block
	Magic uint16 // 0x08
	Pad   uint16 // 0x0A
}

// DA3Blkinfo is the v5 block info.
type DA3Blkinfo struct {
	DABlkinfo          // 0x00
	CRC       uint32   // 0x0C little-endian on disk
	Blkno     uint64   // 0x10 its disk address in 512-byte units
	LSN       uint64   // 0x18
	UUID      [16]byte // 0x20
	Owner     uint64   // 0x30 the inode that owns the block
}

// DecodeDA3Blkinfo decodes the v5 block info (DA3BlkinfoSize bytes).
func DecodeDA3Blkinfo(b []byte) (*DA3Blkinfo, error) {
	h := new(DA3Blkinfo)
	if err := decode(b, h, "da3 blkinfo"); err != nil {
		return nil, err
	}
	h.CRC = StoredChecksum(b, DA3BlkinfoCRCOffset)
	return h, nil
}

// DecodeDABlkinfo decodes the v4 block info (the first 12 bytes of any
// da block, v5 included).
func DecodeDABlkinfo(b []byte) (*DABlkinfo, error) {
	h := new(DABlkinfo)
	return h, decode(b, h, "da blkinfo")
}

// Node header sizes: v4 blkinfo + count + level; v5 adds a pad word.
const (
	DANodeHdrSize   = 0x10
	DA3NodeHdrSize  = 0x40
	DANodeEntrySize = 8
)

// DANodeHdr is what follows the block info in an interior node.
type DANodeHdr struct {
	Count uint16 // entries in the node
	Level uint16 // 1 above the leaves
}

// DANodeEntry is one interior node entry (struct xfs_da_node_entry).
type DANodeEntry struct {
	Hashval uint32 // 0x00 highest hash in the subtree
	Before  uint32 // 0x04 da block number of the subtree
}

// DecodeDANodeHdr decodes the count and level at the start of b (the
// bytes right after the block info).
func DecodeDANodeHdr(b []byte) (*DANodeHdr, error) {
	h := new(DANodeHdr)
	return h, decode(b, h, "da node header")
}

// DecodeDANodeEntry decodes one node entry.
func DecodeDANodeEntry(b []byte) (DANodeEntry, error) {
	var e DANodeEntry
	return e, decode(b, &e, "da node entry")
}
