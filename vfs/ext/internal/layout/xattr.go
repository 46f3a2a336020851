package layout

import "encoding/binary"

// Extended attribute constants.
const (
	XattrMagic           = 0xEA020000
	XattrHeaderSize      = 32 // block header
	XattrIbodyHeaderSize = 4  // in-inode header: the magic alone
	XattrEntrySize       = 16 // fixed part of an entry, the name follows
	XattrPad             = 4
	XattrBlockCsumOffset = 0x10
)

// XattrHeader is struct ext4_xattr_header, at the start of an xattr block.
type XattrHeader struct {
	Magic    uint32    // 0x00
	Refcount uint32    // 0x04
	Blocks   uint32    // 0x08
	Hash     uint32    // 0x0C
	Checksum uint32    // 0x10
	Reserved [3]uint32 // 0x14
}

// XattrEntry is the fixed part of struct ext4_xattr_entry; NameLen name
// bytes follow, padded to 4.
type XattrEntry struct {
	NameLen   uint8  // 0x0
	NameIndex uint8  // 0x1
	ValueOffs uint16 // 0x2
	ValueInum uint32 // 0x4
	ValueSize uint32 // 0x8
	Hash      uint32 // 0xC
}

// DecodeXattrHeader decodes a block header from the start of b.
func DecodeXattrHeader(b []byte) (*XattrHeader, error) {
	var h XattrHeader
	return &h, decode(b, &h, "xattr header")
}

// DecodeXattrEntry decodes the entry head at the start of b.
func DecodeXattrEntry(b []byte) (*XattrEntry, error) {
	var e XattrEntry
	return &e, decode(b, &e, "xattr entry")
}

// IsXattrListEnd reports whether b starts with the 4 zero bytes that end an
// entry list (or is too short to hold another).
func IsXattrListEnd(b []byte) bool {
	return len(b) < 4 || binary.LittleEndian.Uint32(b) == 0
}

// XattrEntryLen is the space an entry with a name of n bytes takes.
func XattrEntryLen(n int) int { return (XattrEntrySize + n + XattrPad - 1) &^ (XattrPad - 1) }

// XattrValueLen is the space a value of n bytes takes.
func XattrValueLen(n int) int { return (n + XattrPad - 1) &^ (XattrPad - 1) }

// Name indexes and the prefixes they stand for.
const (
	XattrIndexUser            = 1
	XattrIndexPosixACLAccess  = 2
	XattrIndexPosixACLDefault = 3
	XattrIndexTrusted         = 4
	XattrIndexLustre          = 5
	XattrIndexSecurity        = 6
	XattrIndexSystem          = 7
	XattrIndexRichACL         = 8
	XattrIndexEncryption      = 9
	XattrIndexHurd            = 10
)

// XattrPrefix returns the name prefix of index i, and false for an unknown
// index.
func XattrPrefix(i uint8) (string, bool) {
	switch i {
	case XattrIndexUser:
		return "user.", true
	case XattrIndexPosixACLAccess:
		return "system.posix_acl_access", true
	case XattrIndexPosixACLDefault:
		return "system.posix_acl_default", true
	case XattrIndexTrusted:
		return "trusted.", true
	case XattrIndexLustre:
		return "lustre.", true
	case XattrIndexSecurity:
		return "security.", true
	case XattrIndexSystem:
		return "system.", true
	case XattrIndexRichACL:
		return "system.richacl", true
	case XattrIndexEncryption:
		return "encryption.", true
	case XattrIndexHurd:
		return "gnu.", true
	}
	return "", false
}

// POSIX ACL formats: the compact one ext4 stores, and the one the xattr
// interface hands to users.
const (
	ACLExt4Version  = 1
	ACLXattrVersion = 2
	ACLUserObj      = 0x01
	ACLUser         = 0x02
	ACLGroupObj     = 0x04
	ACLGroup        = 0x08
	ACLMask         = 0x10
	ACLOther        = 0x20
)
