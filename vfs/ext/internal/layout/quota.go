package layout

// Quota files (the quota ro_compat feature): hidden regular files, one per
// quota type (s_usr_quota_inum, s_grp_quota_inum, s_prj_quota_inum), in
// the "vfsv1" format of the kernel's quota_v2 and e2fsprogs' quotaio_v2.
// The file is an array of QuotaBlockSize-byte blocks, whatever the
// filesystem's block size:
//
//	block 0: QuotaHeader, then QuotaInfo at QuotaInfoOffset
//	block QuotaTreeOff (1): the root of a radix tree of QuotaTreeDepth
//	  levels; each tree block holds QuotaRefsPerBlock little-endian
//	  32-bit block numbers (0: none), indexed at level d by byte
//	  (id >> (8*(QuotaTreeDepth-1-d))) & 0xff of the id
//	the last level's references name data blocks: a QuotaDataHeader,
//	  then entries (QuotaEntryV1 for version 1), each id's in the block
//	  its reference names; an all-zero entry is unused
//
// Blocks with free entries form a doubly linked list (QuotaInfo.FreeEntry,
// QuotaDataHeader.NextFree/PrevFree); wholly free blocks a singly linked
// one (QuotaInfo.FreeBlk, NextFree).
const (
	QuotaBlockSize    = 1024
	QuotaTreeOff      = 1
	QuotaTreeDepth    = 4
	QuotaRefsPerBlock = QuotaBlockSize / 4
	QuotaHeaderSize   = 8
	QuotaInfoOffset   = QuotaHeaderSize
	QuotaInfoSize     = 24
	QuotaDataHdrSize  = 16
	QuotaEntryV1Size  = 72
	// QuotaEntriesV1 is how many version-1 entries a data block holds.
	QuotaEntriesV1 = (QuotaBlockSize - QuotaDataHdrSize) / QuotaEntryV1Size
	// QuotaVersionV1 is the version with 64-bit limits ("vfsv1") that
	// e2fsprogs and the kernel write for ext4's hidden quota files.
	QuotaVersionV1 = 1
	// QuotaMaxFileSize is the largest quota file e2fsprogs accepts.
	QuotaMaxFileSize = 1 << 31
)

// Quota types, the index into QuotaMagic.
const (
	QuotaUser = iota
	QuotaGroup
	QuotaProject
	NumQuotaTypes
)

// QuotaMagic is each type's QuotaHeader.Magic.
var QuotaMagic = [NumQuotaTypes]uint32{0xd9c01f11, 0xd9c01927, 0xd9c03f14}

// QuotaTypeNames name the types as debugfs and e2fsck do.
var QuotaTypeNames = [NumQuotaTypes]string{"user", "group", "project"}

// QuotaHeader is struct v2_disk_dqheader, at offset 0 of the file.
type QuotaHeader struct {
	Magic   uint32 // 0x00
	Version uint32 // 0x04
}

// QuotaInfo is struct v2_disk_dqinfo, at QuotaInfoOffset.
type QuotaInfo struct {
	BGrace    uint32 // 0x00 block grace time
	IGrace    uint32 // 0x04 inode grace time
	Flags     uint32 // 0x08
	Blocks    uint32 // 0x0C blocks in the file
	FreeBlk   uint32 // 0x10 first wholly free block
	FreeEntry uint32 // 0x14 first block with a free entry
}

// QuotaDataHeader is struct qt_disk_dqdbheader, at the start of a data
// block.
type QuotaDataHeader struct {
	NextFree uint32 // 0x00
	PrevFree uint32 // 0x04
	Entries  uint16 // 0x08 entries in use
	Pad1     uint16 // 0x0A
	Pad2     uint32 // 0x0C
}

// QuotaEntryV1 is struct v2r1_disk_dqblk: one id's limits and usage.
type QuotaEntryV1 struct {
	ID         uint32 // 0x00
	Pad        uint32 // 0x04
	IHardLimit uint64 // 0x08
	ISoftLimit uint64 // 0x10
	CurInodes  uint64 // 0x18
	BHardLimit uint64 // 0x20
	BSoftLimit uint64 // 0x28
	CurSpace   uint64 // 0x30 bytes
	BTime      uint64 // 0x38
	ITime      uint64 // 0x40 1 in an entry otherwise all zero (it marks it used)
}

// DecodeQuotaHeader, DecodeQuotaInfo, DecodeQuotaDataHeader and
// DecodeQuotaEntryV1 decode from the start of b.
func DecodeQuotaHeader(b []byte) (QuotaHeader, error) {
	var h QuotaHeader
	return h, decode(b, &h, "quota header")
}

func DecodeQuotaInfo(b []byte) (QuotaInfo, error) {
	var i QuotaInfo
	return i, decode(b, &i, "quota info")
}

func DecodeQuotaDataHeader(b []byte) (QuotaDataHeader, error) {
	var h QuotaDataHeader
	return h, decode(b, &h, "quota data block header")
}

func DecodeQuotaEntryV1(b []byte) (QuotaEntryV1, error) {
	var e QuotaEntryV1
	return e, decode(b, &e, "quota entry")
}

// Encode writes the structure into the start of b.
func (i *QuotaInfo) Encode(b []byte) error       { return encode(b, i) }
func (h *QuotaDataHeader) Encode(b []byte) error { return encode(b, h) }
func (e *QuotaEntryV1) Encode(b []byte) error    { return encode(b, e) }
func (h *QuotaHeader) Encode(b []byte) error     { return encode(b, h) }
