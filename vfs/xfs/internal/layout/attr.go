package layout

// Attribute namespace flags (in short-form and leaf entries).
const (
	AttrLocal      = 0x01 // value stored with the name
	AttrRoot       = 0x02 // "trusted." namespace
	AttrSecure     = 0x04 // "security." namespace
	AttrIncomplete = 0x80 // being created or removed: not visible
)

// Short-form attribute header (struct xfs_attr_sf_hdr) and entry prefix.
const (
	AttrSFHdrSize   = 4
	AttrSFEntrySize = 3 // namelen, valuelen, flags; name and value follow
)

// AttrSFHdr heads the short-form attribute fork.
type AttrSFHdr struct {
	TotSize uint16 // 0x00 bytes used, header included
	Count   uint8  // 0x02 entries
	Pad     uint8  // 0x03
}

// DecodeAttrSFHdr decodes the short-form attribute header.
func DecodeAttrSFHdr(b []byte) (*AttrSFHdr, error) {
	h := new(AttrSFHdr)
	return h, decode(b, h, "attr short-form header")
}

// Attribute leaf header sizes: v4 blkinfo + the counts and free map; v5
// with the self-describing block info and a pad word.
const (
	AttrLeafHdrSize   = 0x20
	Attr3LeafHdrSize  = 0x50
	AttrLeafEntrySize = 8
	AttrLeafMapSize   = 3
)

// AttrLeafMap is a free-map slot.
type AttrLeafMap struct {
	Base uint16
	Size uint16
}

// AttrLeafCounts follows the block info of an attribute leaf.
type AttrLeafCounts struct {
	Count     uint16 // entries
	UsedBytes uint16 // bytes of names and values
	FirstUsed uint16 // first used byte of the name area (0 means 65536 on v5)
	Holes     uint8  // the free map may be wrong
	Pad1      uint8
	FreeMap   [AttrLeafMapSize]AttrLeafMap
}

// DecodeAttrLeafCounts decodes the counts at the start of b.
func DecodeAttrLeafCounts(b []byte) (*AttrLeafCounts, error) {
	h := new(AttrLeafCounts)
	return h, decode(b, h, "attr leaf counts")
}

// AttrLeafEntry is struct xfs_attr_leaf_entry.
type AttrLeafEntry struct {
	Hashval uint32 // 0x00 hash of the name
	NameIdx uint16 // 0x04 byte offset of the name/value record in the block
	Flags   uint8  // 0x06 AttrLocal, namespace
	Pad2    uint8  // 0x07
}

// DecodeAttrLeafEntry decodes one leaf entry.
func DecodeAttrLeafEntry(b []byte) (AttrLeafEntry, error) {
	var e AttrLeafEntry
	return e, decode(b, &e, "attr leaf entry")
}

// AttrLeafNameLocal heads a local name/value record (value after the name).
type AttrLeafNameLocal struct {
	ValueLen uint16 // 0x00
	NameLen  uint8  // 0x02
}

// AttrLeafNameRemote heads a remote-value name record.
type AttrLeafNameRemote struct {
	ValueBlk uint32 // 0x00 first attr-fork block of the value
	ValueLen uint32 // 0x04 value bytes
	NameLen  uint8  // 0x08
}

// Record header sizes of AttrLeafNameLocal and AttrLeafNameRemote.
const (
	AttrLeafNameLocalSize  = 3
	AttrLeafNameRemoteSize = 9
)

// DecodeAttrLeafNameLocal and DecodeAttrLeafNameRemote decode the record
// headers.
func DecodeAttrLeafNameLocal(b []byte) (*AttrLeafNameLocal, error) {
	h := new(AttrLeafNameLocal)
	return h, decode(b, h, "attr local name")
}

func DecodeAttrLeafNameRemote(b []byte) (*AttrLeafNameRemote, error) {
	h := new(AttrLeafNameRemote)
	return h, decode(b, h, "attr remote name")
}

// Remote blocks: a v5 remote attribute value or symlink target block
// starts with a RemoteHdr; v4 blocks hold bare data.
const (
	AttrRemoteMagic    = 0x5841524D // "XARM"
	SymlinkMagic       = 0x58534C4D // "XSLM"
	RemoteHdrSize      = 0x38
	RemoteHdrCRCOffset = 0x0C
)

// RemoteHdr is struct xfs_attr3_rmt_hdr and struct xfs_dsymlink_hdr, which
// share one shape.
type RemoteHdr struct {
	Magic  uint32   // 0x00 AttrRemoteMagic or SymlinkMagic
	Offset uint32   // 0x04 byte offset of this block's data in the value
	Bytes  uint32   // 0x08 data bytes in this block
	CRC    uint32   // 0x0C little-endian on disk
	UUID   [16]byte // 0x10
	Owner  uint64   // 0x20 inode
	Blkno  uint64   // 0x28 disk address in 512-byte units
	LSN    uint64   // 0x30
}

// DecodeRemoteHdr decodes a v5 remote block header.
func DecodeRemoteHdr(b []byte) (*RemoteHdr, error) {
	h := new(RemoteHdr)
	if err := decode(b, h, "remote block header"); err != nil {
		return nil, err
	}
	h.CRC = StoredChecksum(b, RemoteHdrCRCOffset)
	return h, nil
}
