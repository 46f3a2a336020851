package ext

import (
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// groupDesc returns the validated descriptor of group g, reading its
// descriptor block on first use.
func (f *FS) groupDesc(g uint32) (*layout.GroupDesc, error) {
	if g >= f.geo.groups {
		return nil, corrupt("group descriptor", uint64(g), 0, -1, "group out of range (%d groups)", f.geo.groups)
	}
	if d, ok := f.cache.descs.Get(g); ok {
		return d, nil
	}
	blk := f.descBlockLoc(g / f.geo.descPerBlock)
	b, err := f.block(blk, "group descriptor block", 0)
	if err != nil {
		return nil, err
	}
	off := int(g%f.geo.descPerBlock) * f.geo.descSize
	raw := b[off : off+f.geo.descSize]
	at := int64(blk)*f.geo.blockSize + int64(off)
	if err := f.checkDescChecksum(g, raw, at); err != nil {
		return nil, err
	}
	d, err := layout.DecodeGroupDesc(raw, f.geo.descSize)
	if err != nil {
		return nil, err
	}
	if err := f.checkDesc(g, d, at); err != nil {
		return nil, err
	}
	f.cache.descs.Put(g, d)
	return d, nil
}

// descBlockLoc is where descriptor block i lives: right after the primary
// superblock, or with meta_bg (from s_first_meta_bg on) in the first group
// of its meta group, after that group's superblock backup if it has one.
func (f *FS) descBlockLoc(i uint32) uint64 {
	sb := f.sb
	if !sb.FeatureIncompat.Has(layout.IncompatMetaBG) || i < sb.FirstMetaBg {
		return f.sbBlock() + 1 + uint64(i)
	}
	group := uint64(i) * uint64(f.geo.descPerBlock)
	blk := f.geo.firstData + group*uint64(f.geo.bpg)
	if f.groupHasSuper(group) {
		blk++
	}
	if i == 0 && f.geo.blockSize == 1024 && f.geo.clusterSize > f.geo.blockSize {
		blk++ // bigalloc with 1 KiB blocks: group 0 starts at block 0, the superblock is block 1
	}
	return blk
}

// groupHasSuper reports whether group g holds a superblock copy (and so a
// descriptor copy), under sparse_super and sparse_super2.
func (f *FS) groupHasSuper(g uint64) bool {
	sb := f.sb
	switch {
	case g == 0:
		return true
	case sb.FeatureCompat.Has(layout.CompatSparseSuper2):
		return g == uint64(sb.BackupBgs[0]) || g == uint64(sb.BackupBgs[1])
	case g <= 1 || !sb.FeatureROCompat.Has(layout.ROCompatSparseSuper):
		return true
	case g%2 == 0:
		return false
	}
	return isPower(g, 3) || isPower(g, 5) || isPower(g, 7)
}

func isPower(n, base uint64) bool {
	for n%base == 0 {
		n /= base
	}
	return n == 1
}

// checkDescChecksum verifies a descriptor's bg_checksum: crc32c (low 16
// bits) under metadata_csum, crc16 under gdt_csum.
func (f *FS) checkDescChecksum(g uint32, raw []byte, at int64) error {
	if !f.geo.metaCsum && !f.geo.gdtCsum {
		return nil
	}
	got := uint16(raw[layout.GroupDescCsumOffset]) | uint16(raw[layout.GroupDescCsumOffset+1])<<8
	want := f.descChecksum(g, raw)
	if got != want {
		return badChecksum("group descriptor", uint64(g), 0, at, uint32(got), uint32(want))
	}
	return nil
}

// descChecksum computes the checksum of descriptor g, the checksum field
// counted as zero.
func (f *FS) descChecksum(g uint32, raw []byte) uint16 {
	const off = layout.GroupDescCsumOffset
	var zero [2]byte
	var le [4]byte
	le[0], le[1], le[2], le[3] = byte(g), byte(g>>8), byte(g>>16), byte(g>>24)
	if f.geo.metaCsum {
		c := crc32c(f.geo.csumSeed, le[:])
		c = crc32c(c, raw[:off])
		c = crc32c(c, zero[:])
		c = crc32c(c, raw[off+2:])
		return uint16(c)
	}
	c := crc16(0xFFFF, f.sb.UUID[:])
	c = crc16(c, le[:])
	c = crc16(c, raw[:off])
	if len(raw) > off+2 {
		c = crc16(c, raw[off+2:])
	}
	return c
}

// checkDesc bounds the inode table of a descriptor; the bitmaps are not
// read by this engine.
func (f *FS) checkDesc(g uint32, d *layout.GroupDesc, at int64) error {
	itBlocks := (uint64(f.geo.ipg)*uint64(f.geo.inodeSize) + uint64(f.geo.blockSize) - 1) / uint64(f.geo.blockSize)
	if !f.validRange(d.InodeTable(), itBlocks) {
		return corrupt("group descriptor", uint64(g), 0, at, "inode table at block %d (+%d) is outside the filesystem", d.InodeTable(), itBlocks)
	}
	if f.hasGroupCsum() && d.ItableUnused() > f.geo.ipg {
		return corrupt("group descriptor", uint64(g), 0, at, "%d unused inodes in a group of %d", d.ItableUnused(), f.geo.ipg)
	}
	return nil
}

// hasGroupCsum reports whether descriptors carry the uninit flags and
// itable_unused (gdt_csum or metadata_csum).
func (f *FS) hasGroupCsum() bool { return f.geo.metaCsum || f.geo.gdtCsum }
