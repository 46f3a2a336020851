package layout

import "encoding/binary"

// Encoders for the directory structures: the inverse of the decoders in
// dirent.go and dx.go, writing into a caller's block in place.

// EncodeRecLen returns the on-disk rec_len of an entry n bytes long: a
// whole 64 KiB block is stored as MaxRecLen, longer values in 64 KiB
// blocks keep their bits 16-17 in the low bits (which are always zero
// otherwise, rec_len being a multiple of 4). It is the inverse of
// Dirent.RecLength.
func EncodeRecLen(n int) uint16 {
	if n >= 1<<16 {
		return MaxRecLen
	}
	return uint16(n&0xFFFC | n>>16&3)
}

// PutDirent writes an entry head and its name at the start of b. Without
// the filetype feature the name length is 16 bits wide and ftype is not
// stored. b must hold DirentHeaderSize+len(name) bytes.
func PutDirent(b []byte, ino uint32, recLen int, name []byte, ftype uint8, filetype bool) {
	binary.LittleEndian.PutUint32(b[0:], ino)
	binary.LittleEndian.PutUint16(b[4:], EncodeRecLen(recLen))
	if filetype {
		b[6], b[7] = uint8(len(name)), ftype
	} else {
		binary.LittleEndian.PutUint16(b[6:], uint16(len(name)))
	}
	copy(b[DirentHeaderSize:], name)
}

// PutDirentTail writes a dirent tail holding csum over the last
// DirentTailSize bytes of block.
func PutDirentTail(block []byte, csum uint32) {
	t := block[len(block)-DirentTailSize:]
	clear(t)
	binary.LittleEndian.PutUint16(t[4:], DirentTailSize)
	t[7] = DirentTailFT
	binary.LittleEndian.PutUint32(t[8:], csum)
}

// PutDxRootInfo writes the root info of directory block 0.
func PutDxRootInfo(block []byte, r DxRootInfo) {
	b := block[DxRootInfoOffset:]
	binary.LittleEndian.PutUint32(b[0:], r.ReservedZero)
	b[4], b[5], b[6], b[7] = r.HashVersion, r.InfoLength, r.IndirectLevels, r.UnusedFlags
}

// PutDxCountLimit writes the count/limit pair at off.
func PutDxCountLimit(block []byte, off int, c DxCountLimit) {
	binary.LittleEndian.PutUint16(block[off:], c.Limit)
	binary.LittleEndian.PutUint16(block[off+2:], c.Count)
}

// PutDxEntry writes the i-th entry of the array starting at off; entry 0
// keeps the count/limit pair in place of its hash.
func PutDxEntry(block []byte, off, i int, e DxEntry) {
	p := off + i*DxEntrySize
	if i != 0 {
		binary.LittleEndian.PutUint32(block[p:], e.Hash)
	}
	binary.LittleEndian.PutUint32(block[p+4:], e.Block)
}

// PutDxTail writes a dx tail at off.
func PutDxTail(block []byte, off int, t DxTail) {
	binary.LittleEndian.PutUint32(block[off:], t.Reserved)
	binary.LittleEndian.PutUint32(block[off+4:], t.Checksum)
}
