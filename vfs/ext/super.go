package ext

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Incompat features the engine reads; any other set bit refuses the open.
const readableIncompat = layout.IncompatFiletype | layout.IncompatRecover |
	layout.IncompatMetaBG | layout.IncompatExtents | layout.Incompat64Bit |
	layout.IncompatMMP | layout.IncompatFlexBG | layout.IncompatEAInode |
	layout.IncompatCsumSeed | layout.IncompatLargeDir | layout.IncompatInlineData |
	layout.IncompatEncrypt | layout.IncompatCasefold

// loadSuperblock reads, checks and interprets the primary superblock.
func (f *FS) loadSuperblock() error {
	if f.size < layout.SuperblockOffset+layout.SuperblockSize {
		return fmt.Errorf("%w: %d bytes is too small to hold a superblock", ErrNotExt, f.size)
	}
	buf := make([]byte, layout.SuperblockSize)
	if err := f.readAt(buf, layout.SuperblockOffset, "superblock", 0); err != nil {
		return err
	}
	sb, err := layout.DecodeSuperblock(buf)
	if err != nil {
		return err
	}
	if sb.Magic != layout.Magic {
		return fmt.Errorf("%w: magic %#04x at offset 0x438", ErrNotExt, sb.Magic)
	}
	f.sb = sb
	if err := checkFeatures(sb); err != nil {
		return err
	}
	if err := f.checkSuperChecksum(buf); err != nil {
		return err
	}
	return f.deriveGeometry()
}

// sbErr reports a superblock field that fails validation.
func sbErr(format string, args ...any) error {
	return corrupt("superblock", 0, 0, layout.SuperblockOffset, format, args...)
}

// checkFeatures refuses the incompat features the engine cannot read.
func checkFeatures(sb *layout.Superblock) error {
	if sb.RevLevel > layout.RevDynamic {
		return unsupported("revision level %d", sb.RevLevel)
	}
	inc := sb.FeatureIncompat
	if u := inc.Unknown(); u != 0 {
		return unsupported("unknown incompat feature bits %#x (%s)", uint32(u), u)
	}
	if bad := inc &^ readableIncompat; bad != 0 {
		return unsupported("incompat feature %s", bad)
	}
	if inc.Has(layout.IncompatCasefold) && sb.Encoding != layout.EncodingUTF8_12_1 {
		return unsupported("filename encoding %d", sb.Encoding)
	}
	ro := sb.FeatureROCompat
	if ro.Has(layout.ROCompatMetadataCsum) && sb.ChecksumType != layout.ChecksumTypeCRC32C {
		return unsupported("metadata checksum type %d", sb.ChecksumType)
	}
	return nil
}

// checkSuperChecksum verifies s_checksum under metadata_csum.
func (f *FS) checkSuperChecksum(buf []byte) error {
	if !f.sb.FeatureROCompat.Has(layout.ROCompatMetadataCsum) {
		return nil
	}
	want := crc32c(^uint32(0), buf[:layout.SuperblockChecksumOffset])
	if got := f.sb.Checksum; got != want {
		return badChecksum("superblock", 0, 0, layout.SuperblockOffset, got, want)
	}
	return nil
}

// deriveGeometry validates every superblock field the engine uses and
// derives the filesystem's shape from them.
func (f *FS) deriveGeometry() error {
	sb, g := f.sb, &f.geo
	if err := f.deriveBlocks(sb, g); err != nil {
		return err
	}
	if err := deriveInodes(sb, g); err != nil {
		return err
	}
	if err := f.deriveDescriptors(sb, g); err != nil {
		return err
	}
	deriveFlags(sb, g)
	return nil
}

// deriveBlocks checks the block and cluster sizes, counts and groups.
func (f *FS) deriveBlocks(sb *layout.Superblock, g *geometry) error {
	if sb.LogBlockSize > 6 {
		return sbErr("block size 2^(10+%d) is outside 1 KiB..64 KiB", sb.LogBlockSize)
	}
	g.logBlock = 10 + sb.LogBlockSize
	g.blockSize = 1 << g.logBlock
	bigalloc := sb.FeatureROCompat.Has(layout.ROCompatBigalloc)
	switch {
	case !bigalloc && sb.LogClusterSize != sb.LogBlockSize:
		return sbErr("cluster size log %d differs from block size log %d without bigalloc", sb.LogClusterSize, sb.LogBlockSize)
	case bigalloc && (sb.LogClusterSize < sb.LogBlockSize || sb.LogClusterSize > sb.LogBlockSize+16):
		return sbErr("cluster size log %d is invalid for block size log %d", sb.LogClusterSize, sb.LogBlockSize)
	}
	g.clusterSize = 1 << (10 + sb.LogClusterSize)
	ratio := uint64(g.clusterSize / g.blockSize)
	bitsPerBlock := uint64(g.blockSize) * 8
	if sb.ClustersPerGroup == 0 || uint64(sb.ClustersPerGroup) > bitsPerBlock ||
		uint64(sb.BlocksPerGroup) != uint64(sb.ClustersPerGroup)*ratio {
		return sbErr("%d blocks and %d clusters per group do not fit a %d-byte bitmap block", sb.BlocksPerGroup, sb.ClustersPerGroup, g.blockSize)
	}
	g.bpg = sb.BlocksPerGroup
	g.firstData = uint64(sb.FirstDataBlock)
	wantFirst := uint64(0)
	if g.blockSize == 1024 && !bigalloc {
		wantFirst = 1
	}
	if g.firstData != wantFirst {
		return sbErr("first data block %d, want %d for %d-byte blocks", g.firstData, wantFirst, g.blockSize)
	}
	g.blocksCount = sb.BlocksCount()
	if g.blocksCount <= g.firstData+1 {
		return sbErr("block count %d is too small", g.blocksCount)
	}
	if max := uint64(f.size) / uint64(g.blockSize); g.blocksCount > max {
		return sbErr("block count %d exceeds the %d blocks the %d-byte image holds", g.blocksCount, max, f.size)
	}
	groups := (g.blocksCount - g.firstData + uint64(g.bpg) - 1) / uint64(g.bpg)
	if groups > 1<<32-1 {
		return sbErr("%d block groups", groups)
	}
	g.groups = uint32(groups)
	return nil
}

// deriveInodes checks the inode size, counts and first inode.
func deriveInodes(sb *layout.Superblock, g *geometry) error {
	if sb.InodesPerGroup == 0 || int64(sb.InodesPerGroup) > g.blockSize*8 {
		return sbErr("%d inodes per group", sb.InodesPerGroup)
	}
	g.ipg = sb.InodesPerGroup
	if uint64(sb.InodesCount) != uint64(g.groups)*uint64(g.ipg) {
		return sbErr("inode count %d is not %d groups of %d", sb.InodesCount, g.groups, g.ipg)
	}
	g.inodeSize, g.firstIno = layout.GoodOldInodeSize, layout.GoodOldFirstIno
	if sb.RevLevel == layout.RevGoodOld {
		return nil
	}
	n := int(sb.InodeSize)
	if n < layout.InodeBaseSize || int64(n) > g.blockSize || bits.OnesCount(uint(n)) != 1 {
		return sbErr("inode size %d", n)
	}
	g.inodeSize = n
	if sb.FirstIno < layout.GoodOldFirstIno || sb.FirstIno > sb.InodesCount {
		return sbErr("first inode %d", sb.FirstIno)
	}
	g.firstIno = sb.FirstIno
	return nil
}

// deriveDescriptors checks the descriptor size and the table's placement.
func (f *FS) deriveDescriptors(sb *layout.Superblock, g *geometry) error {
	g.descSize = layout.GroupDescMinSize
	if sb.FeatureIncompat.Has(layout.Incompat64Bit) {
		n := int(sb.DescSize)
		if n < layout.GroupDesc64Size || n > layout.GroupDescMaxSize || bits.OnesCount(uint(n)) != 1 || int64(n) > g.blockSize {
			return sbErr("group descriptor size %d", n)
		}
		g.descSize = n
	}
	g.descPerBlock = uint32(g.blockSize / int64(g.descSize))
	g.descBlocks = (g.groups + g.descPerBlock - 1) / g.descPerBlock
	if sb.FeatureIncompat.Has(layout.IncompatMetaBG) {
		if sb.FirstMetaBg > g.descBlocks {
			return sbErr("first meta block group %d beyond %d descriptor blocks", sb.FirstMetaBg, g.descBlocks)
		}
		return nil
	}
	if f.sbBlock()+1+uint64(g.descBlocks) > g.blocksCount {
		return sbErr("%d descriptor blocks do not fit the filesystem", g.descBlocks)
	}
	return nil
}

// deriveFlags records the features the mechanism branches on.
func deriveFlags(sb *layout.Superblock, g *geometry) {
	ro, inc := sb.FeatureROCompat, sb.FeatureIncompat
	g.metaCsum = ro.Has(layout.ROCompatMetadataCsum)
	g.gdtCsum = !g.metaCsum && ro.Has(layout.ROCompatGdtCsum)
	if g.metaCsum {
		if inc.Has(layout.IncompatCsumSeed) {
			g.csumSeed = sb.ChecksumSeed
		} else {
			g.csumSeed = crc32c(^uint32(0), sb.UUID[:])
		}
	}
	g.filetype = inc.Has(layout.IncompatFiletype)
	g.extents = inc.Has(layout.IncompatExtents)
	g.hugeFile = ro.Has(layout.ROCompatHugeFile)
	g.largeDir = inc.Has(layout.IncompatLargeDir)
	g.dirIndex = sb.FeatureCompat.Has(layout.CompatDirIndex)
	g.hashUnsigned = sb.Flags&layout.FlagUnsignedHash != 0
}

// sbBlock is the block holding the primary superblock.
func (f *FS) sbBlock() uint64 {
	if f.geo.blockSize == 1024 {
		return 1
	}
	return 0
}

// le32 reads a little-endian word at off of b.
func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
