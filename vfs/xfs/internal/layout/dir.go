package layout

// Directory block magics (32-bit, at the start of a data block).
const (
	Dir2BlockMagic = 0x58443242 // "XD2B" v4 single-block directory
	Dir2DataMagic  = 0x58443244 // "XD2D" v4 data block
	Dir3BlockMagic = 0x58444233 // "XDB3" v5
	Dir3DataMagic  = 0x58444433 // "XDD3" v5
	Dir2FreeMagic  = 0x58443246 // "XD2F" v4 free-space index
	Dir3FreeMagic  = 0x58444633 // "XDF3" v5
)

// Directory geometry shared by every directory format: the data, leaf and
// free-index areas start at fixed byte offsets in the directory's address
// space, and leaf entries address data entries in 8-byte units.
const (
	DirLeafOffset   = 32 << 30 // first leaf block's byte offset
	DirFreeOffset   = 64 << 30 // first free-index block's byte offset
	DirDataAlignLog = 3
	DirDataAlign    = 1 << DirDataAlignLog
	// DirNullDataptr is a leaf entry marked stale.
	DirNullDataptr = 0
	// DirDataFreeTag marks an unused region in a data block.
	DirDataFreeTag = 0xFFFF
)

// Data block header sizes and the v5 CRC offset.
const (
	DirDataHdrSize       = 0x10
	Dir3DataHdrSize      = 0x40
	Dir3DataHdrCRCOffset = 0x04
	DirDataBestFree      = 3
)

// DirDataFree is one bestfree slot of a data block header.
type DirDataFree struct {
	Offset uint16
	Length uint16
}

// DirDataHdr is the v4 data/block header (struct xfs_dir2_data_hdr).
type DirDataHdr struct {
	Magic    uint32                       // 0x00
	BestFree [DirDataBestFree]DirDataFree // 0x04
}

// Dir3BlkHdr is the v5 self-describing block header (struct
// xfs_dir3_blk_hdr) that starts data and free blocks.
type Dir3BlkHdr struct {
	Magic uint32   // 0x00
	CRC   uint32   // 0x04 little-endian on disk
	Blkno uint64   // 0x08 disk address in 512-byte units
	LSN   uint64   // 0x10
	UUID  [16]byte // 0x18
	Owner uint64   // 0x28 the directory inode
}

// Dir3DataHdr is the v5 data/block header.
type Dir3DataHdr struct {
	Dir3BlkHdr                              // 0x00
	BestFree   [DirDataBestFree]DirDataFree // 0x30
	Pad        uint32                       // 0x3C
}

// DecodeDir3DataHdr decodes a v5 data block header.
func DecodeDir3DataHdr(b []byte) (*Dir3DataHdr, error) {
	h := new(Dir3DataHdr)
	if err := decode(b, h, "dir3 data header"); err != nil {
		return nil, err
	}
	h.CRC = StoredChecksum(b, Dir3DataHdrCRCOffset)
	return h, nil
}

// DecodeDirDataHdr decodes a v4 data block header.
func DecodeDirDataHdr(b []byte) (*DirDataHdr, error) {
	h := new(DirDataHdr)
	return h, decode(b, h, "dir2 data header")
}

// DirDataEntrySize is the 8-aligned size of a data entry holding a name of
// n bytes: inode number, name length, name, file type byte (when the
// filesystem records it), padding, and the 2-byte tag.
func DirDataEntrySize(n int, ftype bool) int {
	s := 8 + 1 + n + 2
	if ftype {
		s++
	}
	return (s + DirDataAlign - 1) &^ (DirDataAlign - 1)
}

// Block-form tail: at the very end of a single-block directory.
const DirBlockTailSize = 8

// DirBlockTail is struct xfs_dir2_block_tail.
type DirBlockTail struct {
	Count uint32 // leaf entries, stale ones included
	Stale uint32 // stale leaf entries
}

// DecodeDirBlockTail decodes a block-form tail.
func DecodeDirBlockTail(b []byte) (*DirBlockTail, error) {
	h := new(DirBlockTail)
	return h, decode(b, h, "dir2 block tail")
}

// DirLeafEntrySize is the size of one leaf entry (hash + address).
const DirLeafEntrySize = 8

// DirLeafEntry is struct xfs_dir2_leaf_entry.
type DirLeafEntry struct {
	Hashval uint32 // hash of the name
	Address uint32 // data entry byte offset / DirDataAlign, DirNullDataptr if stale
}

// DecodeDirLeafEntry decodes one leaf entry.
func DecodeDirLeafEntry(b []byte) (DirLeafEntry, error) {
	var e DirLeafEntry
	return e, decode(b, &e, "dir2 leaf entry")
}

// Leaf header sizes: v4 blkinfo + count + stale; v5 adds a pad word.
const (
	DirLeafHdrSize  = 0x10
	Dir3LeafHdrSize = 0x40
)

// DirLeafCounts is the count/stale pair after a leaf's block info.
type DirLeafCounts struct {
	Count uint16
	Stale uint16
}

// DecodeDirLeafCounts decodes the pair at the start of b.
func DecodeDirLeafCounts(b []byte) (*DirLeafCounts, error) {
	h := new(DirLeafCounts)
	return h, decode(b, h, "dir2 leaf counts")
}

// Short-form directory header sizes: count, i8count, then the parent
// inode in 4 bytes (or 8 when any entry needs 8).
const (
	DirSFHdrSize4 = 6
	DirSFHdrSize8 = 10
)

// DirSFHdr is the fixed part of struct xfs_dir2_sf_hdr.
type DirSFHdr struct {
	Count   uint8 // 0x00 entries with 4-byte inode numbers (or all, if I8Count)
	I8Count uint8 // 0x01 entries needing 8-byte inode numbers
}

// DecodeDirSFHdr decodes the short-form header's counts.
func DecodeDirSFHdr(b []byte) (*DirSFHdr, error) {
	h := new(DirSFHdr)
	return h, decode(b, h, "dir2 short-form header")
}

// Directory entry file types (when the filesystem records them).
const (
	FtypeUnknown = 0
	FtypeRegular = 1
	FtypeDir     = 2
	FtypeChar    = 3
	FtypeBlock   = 4
	FtypeFIFO    = 5
	FtypeSocket  = 6
	FtypeSymlink = 7
	FtypeMax     = 8 // one past the last valid type
)

// Free-index block header sizes (struct xfs_dir2_free_hdr: magic,
// firstdb, nvalid, nused; v5: the self-describing block header, the same
// three counts and a pad word), after which come the 16-bit bests.
const (
	DirFreeHdrSize  = 0x10
	Dir3FreeHdrSize = 0x40
)

// DirLeafTailSize is the leaf-form tail (struct xfs_dir2_leaf_tail: the
// number of bests stored just before it, at the end of the leaf block).
const DirLeafTailSize = 4

// DirNullDataOff is a best-free value for a data block that does not
// exist (a hole in the data area).
const DirNullDataOff = 0xFFFF

// DirNameMax is the longest directory entry name.
const DirNameMax = 255
