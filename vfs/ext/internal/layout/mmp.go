package layout

// The multi-mount protection block (struct mmp_struct), little-endian,
// in the block the superblock's MMPBlock names.
const (
	MMPSize        = 1024
	MMPMagic       = 0x004D4D50
	MMPSeqClean    = 0xFF4D4D50 // unmounted cleanly
	MMPSeqFsck     = 0xE24D4D50 // e2fsck holds the filesystem
	MMPSeqMax      = 0xE24D4D4F // highest sequence of a running mounter
	MMPNodeOff     = 0x10
	MMPNodeLen     = 64
	MMPDevOff      = 0x50
	MMPDevLen      = 32
	MMPChecksumOff = 0x3FC // crc32c of the bytes before it (metadata_csum)
)

// MMP is struct mmp_struct.
type MMP struct {
	Magic         uint32           // 0x000
	Seq           uint32           // 0x004
	Time          uint64           // 0x008
	NodeName      [MMPNodeLen]byte // 0x010
	BdevName      [MMPDevLen]byte  // 0x050
	CheckInterval uint16           // 0x070
	Pad1          uint16           // 0x072
	Pad2          [226]uint32      // 0x074
	Checksum      uint32           // 0x3FC
}

// DecodeMMP decodes an MMP block from the start of b.
func DecodeMMP(b []byte) (*MMP, error) {
	var m MMP
	return &m, decode(b, &m, "MMP block")
}
