package layout

// Directory entry constants.
const (
	DirentHeaderSize = 8  // inode, rec_len, name_len, file_type
	DirentTailSize   = 12 // struct ext4_dir_entry_tail
	DirentTailFT     = 0xDE
	MaxNameLen       = 255
	MaxRecLen        = 65535 // rec_len value meaning a whole 64 KiB block
)

// Dirent is the fixed head of struct ext4_dir_entry_2; the name follows
// it. Without the filetype feature, NameLen and FileType are the low and
// high bytes of a 16-bit name length (see NameLength).
type Dirent struct {
	Inode    uint32 // 0x0
	RecLen   uint16 // 0x4
	NameLen  uint8  // 0x6
	FileType uint8  // 0x7
}

// DirentTail is struct ext4_dir_entry_tail, a fake entry closing a leaf
// block of a metadata_csum filesystem.
type DirentTail struct {
	ReservedZero1 uint32 // 0x0
	RecLen        uint16 // 0x4 == 12
	ReservedZero2 uint8  // 0x6
	ReservedFT    uint8  // 0x7 == 0xDE
	Checksum      uint32 // 0x8
}

// DecodeDirent decodes an entry head from the start of b.
func DecodeDirent(b []byte) (Dirent, error) {
	if len(b) < DirentHeaderSize {
		return Dirent{}, short("directory entry", DirentHeaderSize, len(b))
	}
	return Dirent{Inode: le.Uint32(b), RecLen: le.Uint16(b[4:]), NameLen: b[6], FileType: b[7]}, nil
}

// DecodeDirentTail decodes a tail from the last DirentTailSize bytes of a
// block.
func DecodeDirentTail(block []byte) (DirentTail, error) {
	b := sub(block, len(block)-DirentTailSize)
	if len(b) < DirentTailSize {
		return DirentTail{}, short("directory tail", DirentTailSize, len(b))
	}
	return DirentTail{ReservedZero1: le.Uint32(b), RecLen: le.Uint16(b[4:]), ReservedZero2: b[6], ReservedFT: b[7], Checksum: le.Uint32(b[8:])}, nil
}

// IsTail reports whether t has the shape of a dirent tail.
func (t *DirentTail) IsTail() bool {
	return t.ReservedZero1 == 0 && t.RecLen == DirentTailSize && t.ReservedZero2 == 0 && t.ReservedFT == DirentTailFT
}

// NameLength returns the name length, which is 16 bits wide when the
// filesystem lacks the filetype feature.
func (d *Dirent) NameLength(filetype bool) int {
	if filetype {
		return int(d.NameLen)
	}
	return int(d.FileType)<<8 | int(d.NameLen)
}

// RecLength decodes rec_len for a block of blockSize bytes: 64 KiB blocks
// store 65536 as 65535 (or 0) and spread larger values over the low bits.
func (d *Dirent) RecLength(blockSize int) int {
	n := int(d.RecLen)
	if blockSize < 65536 {
		return n
	}
	if n == MaxRecLen || n == 0 {
		return blockSize
	}
	return n&65532 | (n&3)<<16
}

// DirentSize is the space an entry with a name of n bytes needs (rounded
// to 4).
func DirentSize(n int) int { return (DirentHeaderSize + n + 3) &^ 3 }

// Directory entry file types (with the filetype feature).
const (
	FTUnknown = 0
	FTRegular = 1
	FTDir     = 2
	FTChar    = 3
	FTBlock   = 4
	FTFIFO    = 5
	FTSocket  = 6
	FTSymlink = 7
)
