package xfs

import (
	"math/bits"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// geometry is what Open derives from the validated superblock.
type geometry struct {
	blockSize  int64
	blockLog   uint
	sectSize   int64
	agBlocks   uint64
	agBlkLog   uint
	agCount    uint64
	dBlocks    uint64
	inodeSize  int64
	inoPBLog   uint
	dirBlkSize int64 // directory block size in bytes
	dirBlkLog  uint  // log2 of fs blocks per directory block
	crc        bool
	ftype      bool
	asciiCI    bool
	bigtimeFS  bool
	hasRT      bool
	metaUUID   [16]byte
}

// Limits of what Open accepts.
const (
	minBlockSize = 512
	maxBlockSize = 64 << 10
	minInodeSize = 256
	maxInodeSize = 2048
	minAGBlocks  = 64 // XFS's own minimum allocation group size
)

// loadSuperblock reads, decodes and validates the primary superblock.
func (f *FS) loadSuperblock() error {
	w := where{what: "superblock", ag: 0, block: 0, off: 0}
	if f.size < layout.BBSize {
		return ErrNotXFS
	}
	head := make([]byte, layout.BBSize)
	if err := f.readAt(head, 0, w); err != nil {
		return err
	}
	sb, err := layout.DecodeSuperblock(head)
	if err != nil {
		return w.corrupt("%v", err)
	}
	if sb.Magic != layout.SuperblockMagic {
		return ErrNotXFS
	}
	g, err := validateSuperblock(sb, f.size, w)
	if err != nil {
		return err
	}
	if g.crc {
		sect := head
		if g.sectSize > int64(len(head)) {
			sect = make([]byte, g.sectSize)
			if err := f.readAt(sect, 0, w); err != nil {
				return err
			}
		}
		if got, want := layout.StoredChecksum(sect, layout.SuperblockCRCOffset), layout.Checksum(sect, layout.SuperblockCRCOffset); got != want {
			return w.badChecksum(got, want)
		}
	}
	f.sb, f.geo = sb, g
	return nil
}

// log2 returns log2(v) when v is a power of two, else -1.
func log2(v uint64) int {
	if v == 0 || v&(v-1) != 0 {
		return -1
	}
	return bits.TrailingZeros64(v)
}

// validateSuperblock bounds every field the engine uses, against itself
// and the section size.
func validateSuperblock(sb *layout.Superblock, size int64, w where) (geometry, error) {
	var g geometry
	switch sb.Version() {
	case 4:
		if sb.Bits()&layout.VersionDirV2 == 0 {
			return g, unsupported("version 4 superblock without version 2 directories")
		}
	case 5:
	default:
		return g, unsupported("superblock version %d", sb.Version())
	}
	g.crc = sb.HasCRC()
	if g.crc {
		if unk := sb.FeaturesIncompat &^ layout.IncompatKnown; unk != 0 {
			return g, unsupported("incompatible feature %s", unk)
		}
		if sb.FeaturesIncompat&layout.IncompatNeedsRepair != 0 {
			return g, unsupported("incompatible feature needsrepair: the filesystem awaits xfs_repair")
		}
	} else if sb.Features2&layout.Features2CRC != 0 {
		return g, w.corrupt("version 4 superblock with the crc feature bit")
	}
	if sb.InProgress != 0 {
		return g, w.corrupt("mkfs did not finish (sb_inprogress %d)", sb.InProgress)
	}
	bl := log2(uint64(sb.BlockSize))
	if sb.BlockSize < minBlockSize || sb.BlockSize > maxBlockSize || bl < 0 || int(sb.BlockLog) != bl {
		return g, w.corrupt("block size %d (log %d) is not a power of two in [%d, %d]", sb.BlockSize, sb.BlockLog, minBlockSize, maxBlockSize)
	}
	g.blockSize, g.blockLog = int64(sb.BlockSize), uint(bl)
	sl := log2(uint64(sb.SectSize))
	if sb.SectSize < 512 || sb.SectSize > 32768 || sl < 0 || int(sb.SectLog) != sl || int64(sb.SectSize) > g.blockSize {
		return g, w.corrupt("sector size %d (log %d) is not a power of two in [512, 32768] at most the block size", sb.SectSize, sb.SectLog)
	}
	g.sectSize = int64(sb.SectSize)
	il := log2(uint64(sb.InodeSize))
	if sb.InodeSize < minInodeSize || sb.InodeSize > maxInodeSize || il < 0 || int(sb.InodeLog) != il || int64(sb.InodeSize) > g.blockSize {
		return g, w.corrupt("inode size %d (log %d) is not a power of two in [%d, %d] at most the block size", sb.InodeSize, sb.InodeLog, minInodeSize, maxInodeSize)
	}
	if g.crc && sb.InodeSize < 512 {
		return g, w.corrupt("inode size %d is below the 512 bytes a v5 filesystem needs", sb.InodeSize)
	}
	g.inodeSize = int64(sb.InodeSize)
	if int64(sb.InoPBlock) != g.blockSize/g.inodeSize || int(sb.InoPBLog) != bl-il {
		return g, w.corrupt("%d inodes per block (log %d) for %d-byte inodes in %d-byte blocks", sb.InoPBlock, sb.InoPBLog, sb.InodeSize, sb.BlockSize)
	}
	g.inoPBLog = uint(sb.InoPBLog)
	if sb.AGBlocks < minAGBlocks || sb.AGCount == 0 {
		return g, w.corrupt("%d allocation groups of %d blocks", sb.AGCount, sb.AGBlocks)
	}
	if want := bits.Len32(sb.AGBlocks - 1); int(sb.AGBlkLog) != want {
		return g, w.corrupt("AG block log %d, want %d for %d blocks", sb.AGBlkLog, want, sb.AGBlocks)
	}
	if int(sb.AGBlkLog)+int(sb.InoPBLog) > 32 {
		return g, w.corrupt("AG block log %d + inodes-per-block log %d leave no room for the AG number", sb.AGBlkLog, sb.InoPBLog)
	}
	g.agBlocks, g.agBlkLog, g.agCount = uint64(sb.AGBlocks), uint(sb.AGBlkLog), uint64(sb.AGCount)
	full := g.agBlocks * g.agCount
	if sb.DBlocks > full || sb.DBlocks <= full-g.agBlocks {
		return g, w.corrupt("%d data blocks do not fill %d allocation groups of %d blocks", sb.DBlocks, sb.AGCount, sb.AGBlocks)
	}
	if sb.DBlocks > uint64(size)>>g.blockLog {
		return g, w.corrupt("%d blocks of %d bytes exceed the %d-byte section", sb.DBlocks, sb.BlockSize, size)
	}
	g.dBlocks = sb.DBlocks
	if sb.DirBlkLog > 16 || g.blockSize<<sb.DirBlkLog > maxBlockSize {
		return g, w.corrupt("directory block log %d makes directory blocks above %d bytes", sb.DirBlkLog, maxBlockSize)
	}
	g.dirBlkLog, g.dirBlkSize = uint(sb.DirBlkLog), g.blockSize<<sb.DirBlkLog
	if sb.LogStart != 0 {
		lb := g.fsbLinear(sb.LogStart)
		if lb < 0 || sb.LogBlocks == 0 || uint64(sb.LogBlocks) > g.agBlocks-(sb.LogStart&(1<<g.agBlkLog-1)) {
			return g, w.corrupt("internal log at block %d (%d blocks) lies outside its allocation group", sb.LogStart, sb.LogBlocks)
		}
	}
	if g.inoAddr(sb.RootIno) < 0 {
		return g, w.corrupt("root inode %d lies outside the filesystem", sb.RootIno)
	}
	if sb.RBlocks != 0 {
		// Realtime files are refused one by one; the rest reads fine.
		g.hasRT = true
	}
	g.ftype = sb.HasFtype()
	g.asciiCI = sb.Bits()&layout.VersionBorg != 0
	g.bigtimeFS = g.crc && sb.FeaturesIncompat&layout.IncompatBigtime != 0
	g.metaUUID = sb.MetadataUUID()
	return g, nil
}

// fsbLinear converts a filesystem block number (AG number in the high
// bits, AG block in the low agBlkLog bits) to a linear block number, -1 if
// it lies outside the filesystem.
func (g *geometry) fsbLinear(fsb uint64) int64 {
	ag, agb := fsb>>g.agBlkLog, fsb&(1<<g.agBlkLog-1)
	if ag >= g.agCount || agb >= g.agBlocks {
		return -1
	}
	lin := ag*g.agBlocks + agb
	if lin >= g.dBlocks {
		return -1
	}
	return int64(lin)
}

// extentOK reports whether count blocks from fsb stay in one AG and in the
// filesystem.
func (g *geometry) extentOK(fsb uint64, count uint64) bool {
	lin := g.fsbLinear(fsb)
	agb := fsb & (1<<g.agBlkLog - 1)
	return lin >= 0 && count > 0 && count <= g.agBlocks-agb && uint64(lin)+count <= g.dBlocks
}

// inoAddr returns the byte offset of inode ino, -1 if the number lies
// outside the filesystem.
func (g *geometry) inoAddr(ino uint64) int64 {
	shift := g.agBlkLog + g.inoPBLog
	if shift >= 64 {
		return -1
	}
	ag := ino >> shift
	agb := (ino >> g.inoPBLog) & (1<<g.agBlkLog - 1)
	idx := ino & (1<<g.inoPBLog - 1)
	if ag >= g.agCount || agb >= g.agBlocks {
		return -1
	}
	lin := ag*g.agBlocks + agb
	if lin >= g.dBlocks {
		return -1
	}
	return int64(lin)<<g.blockLog + int64(idx)*g.inodeSize
}
