package layout

// Sizes the attribute writer lays out by, as the on-disk format fixes
// them.
const (
	// AttrSFEntSizeMax: a short-form entry's name and value lengths are
	// bytes, and a length of 255 or more moves the attribute fork to
	// leaf form (XFS_ATTR_SF_ENTSIZE_MAX).
	AttrSFEntSizeMax = 0xFF
	// AttrLeafNameAlign aligns each name/value record of a leaf block.
	AttrLeafNameAlign = 4
	// BmdrMinDataPtrs and BmdrMinAttrPtrs are the key/pointer pairs a
	// data-fork or attr-fork bmap btree root in the inode must have
	// room for (MINDBTPTRS, MINABTPTRS).
	BmdrMinDataPtrs = 3
	BmdrMinAttrPtrs = 2
)

// Inode field offsets of the attribute fork.
const (
	InodeANextentsOffset = 0x50 // di_anextents, 16 bits
	InodeForkOffOffset   = 0x52 // di_forkoff, 8-byte units
	InodeAFormatOffset   = 0x53 // di_aformat
)

// AttrSFEntSize is the short-form bytes of an entry: the three-byte
// prefix, the name and the value.
func AttrSFEntSize(nameLen, valueLen int) int { return AttrSFEntrySize + nameLen + valueLen }

// AttrLeafEntSizeLocal is the bytes a local name/value record takes in a
// leaf block: the three-byte header, name and value, rounded up to 4.
func AttrLeafEntSizeLocal(nameLen, valueLen int) int {
	return roundUp(AttrLeafNameLocalSize+nameLen+valueLen, AttrLeafNameAlign)
}

// AttrLeafEntSizeRemote is the bytes a remote-value name record takes:
// the format counts two bytes of padding after the nine-byte header.
func AttrLeafEntSizeRemote(nameLen int) int {
	return roundUp(AttrLeafNameRemoteSize+2+nameLen, AttrLeafNameAlign)
}

// AttrLeafEntSizeLocalMax is the size from which a value goes to remote
// blocks instead of the leaf: three quarters of the block.
func AttrLeafEntSizeLocalMax(blockSize int) int { return blockSize>>1 + blockSize>>2 }

// BmdrSpace is the bytes of an in-inode bmap btree root of n records.
func BmdrSpace(n int) int { return BmdrHeaderSize + n*(BmbtKeySize+BmbtPtrSize) }

func roundUp(v, a int) int { return (v + a - 1) / a * a }
