package layout

import "encoding/binary"

// Encode writes in back into rec, an inode record of the filesystem's
// inode size, as DecodeInode read it: the 128-byte base always, the
// extended fields only as far as ExtraIsize covers them (and rec is long
// enough). Bytes past 128+ExtraIsize (in-inode extended attributes) are
// left as they are; the checksum fields are written as they stand and are
// the caller's to compute.
func (in *Inode) Encode(rec []byte) {
	var buf [InodeExtSize]byte
	_ = encode(buf[:], in)
	n := InodeBaseSize
	if len(rec) > InodeBaseSize {
		n = min(InodeBaseSize+int(in.ExtraIsize), len(rec), InodeExtSize)
	}
	copy(rec[:n], buf[:n])
}

// SetBlockBytes sets i_block from the 60 raw bytes b (shorter b is padded
// with zeros): for inline data, fast symlinks and the extent root.
func (in *Inode) SetBlockBytes(b []byte) {
	var raw [InodeBlockSize]byte
	copy(raw[:], b)
	for i := range in.Block {
		in.Block[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
}

// SetSize splits a size into SizeLo and SizeHi.
func (in *Inode) SetSize(n uint64) { in.SizeLo, in.SizeHi = uint32(n), uint32(n>>32) }

// SetUID and SetGID split an id into its 16-bit halves.
func (in *Inode) SetUID(id uint32) { in.UIDLo, in.UIDHi = uint16(id), uint16(id>>16) }
func (in *Inode) SetGID(id uint32) { in.GIDLo, in.GIDHi = uint16(id), uint16(id>>16) }

// SetBlocks splits an i_blocks value into BlocksLo and BlocksHi.
func (in *Inode) SetBlocks(n uint64) { in.BlocksLo, in.BlocksHi = uint32(n), uint16(n>>32) }

// SetFileACL splits an xattr block number into FileACLLo and FileACLHi.
func (in *Inode) SetFileACL(n uint64) { in.FileACLLo, in.FileACLHi = uint32(n), uint16(n>>32) }

// EncodeTime is the inverse of DecodeTime: the 32-bit seconds field and
// its extra word (epoch bits and nanoseconds).
func EncodeTime(sec, nsec int64) (uint32, uint32) {
	epoch := uint32((sec - int64(int32(sec))) >> 32)
	return uint32(int32(sec)), uint32(nsec)<<TimeNsecShift | epoch&TimeEpochMask
}
