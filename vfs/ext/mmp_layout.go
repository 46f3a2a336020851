package ext

import "encoding/binary"

// The multi-mount protection block (struct mmp_struct), little-endian.
// Layout only: mmp.go reads it.
//
//	0x000 mmp_magic          uint32
//	0x004 mmp_seq            uint32
//	0x008 mmp_time           uint64
//	0x010 mmp_nodename       [64]byte
//	0x050 mmp_bdevname       [32]byte
//	0x070 mmp_check_interval uint16
//	0x072 mmp_pad1           uint16
//	0x074 mmp_pad2           [226]uint32
//	0x3FC mmp_checksum       uint32 (crc32c of the bytes before it, metadata_csum)
const (
	mmpSize        = 1024
	mmpMagic       = 0x004D4D50
	mmpSeqClean    = 0xFF4D4D50 // unmounted cleanly
	mmpSeqFsck     = 0xE24D4D50 // e2fsck holds the filesystem
	mmpSeqMax      = 0xE24D4D4F // highest sequence of a running mounter
	mmpNodeOff     = 0x10
	mmpNodeLen     = 64
	mmpDevOff      = 0x50
	mmpDevLen      = 32
	mmpIntervalOff = 0x70
	mmpChecksumOff = 0x3FC
)

// mmpBlock is a decoded MMP block.
type mmpBlock struct {
	Magic    uint32
	Seq      uint32
	Time     uint64
	Node     string
	Device   string
	Interval uint16
	Checksum uint32
}

// decodeMMP decodes the first mmpSize bytes of b.
func decodeMMP(b []byte) mmpBlock {
	le := binary.LittleEndian
	return mmpBlock{
		Magic: le.Uint32(b[0x0:]), Seq: le.Uint32(b[0x4:]), Time: le.Uint64(b[0x8:]),
		Node:     cString(b[mmpNodeOff : mmpNodeOff+mmpNodeLen]),
		Device:   cString(b[mmpDevOff : mmpDevOff+mmpDevLen]),
		Interval: le.Uint16(b[mmpIntervalOff:]), Checksum: le.Uint32(b[mmpChecksumOff:]),
	}
}
