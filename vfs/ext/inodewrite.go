package ext

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// newExtraIsize is the i_extra_isize of new inodes: every extended field
// (checksum high half, time extras, crtime, version, projid).
const newExtraIsize = layout.InodeExtSize - layout.InodeBaseSize

// freshInode builds the in-memory inode for newly allocated number ino.
func (t *tx) freshInode(ino uint32) (*inode, error) {
	f := t.f
	raw := &layout.Inode{}
	if f.geo.inodeSize >= layout.InodeExtSize {
		raw.ExtraIsize = uint16(max(newExtraIsize, int(f.sb.WantExtraIsize), int(f.sb.MinExtraIsize)))
		if int(raw.ExtraIsize)+layout.InodeBaseSize > f.geo.inodeSize || raw.ExtraIsize%4 != 0 {
			raw.ExtraIsize = newExtraIsize
		}
	}
	var g [4]byte
	if _, err := rand.Read(g[:]); err != nil {
		return nil, fmt.Errorf("ext: inode generation: %w", err)
	}
	raw.Generation = binary.LittleEndian.Uint32(g[:])
	if f.geo.extents {
		raw.Flags |= layout.FlagExtents
	}
	in := &inode{num: ino, raw: raw, rec: make([]byte, f.geo.inodeSize)}
	in.seed = f.inodeSeed(in)
	t.setTimes(in, true, true, true, true)
	if in.flag(layout.FlagExtents) {
		setEmptyExtentRoot(in)
	}
	t.inodes.copies[ino] = in
	t.space.recordBorn(ino)
	return in, nil
}

// inodeSeed is the checksum seed of in's metadata (metadata_csum).
func (f *FS) inodeSeed(in *inode) uint32 {
	if !f.geo.metaCsum {
		return 0
	}
	return crc32cU32(crc32cU32(f.geo.csumSeed, in.num), in.raw.Generation)
}

// setTimes sets the chosen timestamps to the transaction's time, with
// nanoseconds where the inode has the extra fields (crtime only there).
func (t *tx) setTimes(in *inode, atime, ctime, mtime, crtime bool) {
	sec, extra := layout.EncodeTime(t.now.Unix(), int64(t.now.Nanosecond()))
	r := in.raw
	set := func(want bool, s *uint32, x *uint32, end int) {
		if !want {
			return
		}
		*s = sec
		if r.HasExtra(end) && len(in.rec) > layout.InodeBaseSize {
			*x = extra
		}
	}
	set(atime, &r.Atime, &r.AtimeExtra, layout.EndAtimeExtra)
	set(ctime, &r.Ctime, &r.CtimeExtra, layout.EndCtimeExtra)
	set(mtime, &r.Mtime, &r.MtimeExtra, layout.EndMtimeExtra)
	if crtime && r.HasExtra(layout.EndCrtimeExtra) && len(in.rec) > layout.InodeBaseSize {
		r.Crtime, r.CrtimeExtra = sec, extra
	}
}

// setSize sets the inode's size (in.size and i_size/i_size_high), and the
// large_file feature when a regular file passes 2 GiB.
func (t *tx) setSize(in *inode, n int64) {
	in.size = n
	in.raw.SetSize(uint64(n))
	if n >= 1<<31 && !t.f.sb.FeatureROCompat.Has(layout.ROCompatLargeFile) {
		t.setLargeFile = true
	}
}

// addBlocks adds delta filesystem blocks to in's i_blocks, in 512-byte
// units, or in filesystem blocks (EXT4_HUGE_FILE_FL) past 2^48 units
// with huge_file.
func (t *tx) addBlocks(in *inode, delta int64) {
	f := t.f
	units := int64(f.blocks512(in)) + delta*(f.geo.blockSize/512)
	if units < 0 {
		units = 0
	}
	switch {
	case f.geo.hugeFile && units >= 1<<48:
		in.raw.Flags |= layout.FlagHugeFile
		in.raw.SetBlocks(uint64(units) >> (f.geo.logBlock - 9))
	case f.geo.hugeFile:
		in.raw.Flags &^= layout.FlagHugeFile
		in.raw.SetBlocks(uint64(units))
	default:
		in.raw.SetBlocks(uint64(units) & 0xFFFFFFFF)
	}
	t.dirtyInode(in)
}

// checkBlocksRoom refuses growth i_blocks cannot count (without
// huge_file, 2^32 512-byte units).
func (t *tx) checkBlocksRoom(in *inode, more uint64) error {
	if t.f.geo.hugeFile {
		return nil
	}
	if t.f.blocks512(in)+more*uint64(t.f.geo.blockSize/512) > 0xFFFFFFFF {
		return fmt.Errorf("%w: inode %d would use more blocks than i_blocks counts without huge_file", ErrUnsupportedFeature, in.num)
	}
	return nil
}

// inodeLoc returns the inode table block holding inode ino and the
// record's offset in it (for any inode, used or not).
func (t *tx) inodeLoc(ino uint32) (uint64, int, error) {
	f := t.f
	if ino == 0 || ino > f.sb.InodesCount {
		return 0, 0, corrupt("inode", uint64(ino), 0, -1, "inode number out of range")
	}
	g, idx := (ino-1)/f.geo.ipg, (ino-1)%f.geo.ipg
	d, err := f.groupDesc(g)
	if err != nil {
		return 0, 0, err
	}
	byteOff := uint64(idx) * uint64(f.geo.inodeSize)
	return d.InodeTable() + byteOff/uint64(f.geo.blockSize), int(byteOff % uint64(f.geo.blockSize)), nil
}

// encodeInode writes in into in.rec with its checksum.
func (t *tx) encodeInode(in *inode) {
	in.raw.Encode(in.rec)
	if !t.f.geo.metaCsum {
		return
	}
	rec := in.rec
	hasHi := len(rec) > layout.InodeBaseSize && in.raw.ExtraIsize >= layout.InodeCsumHiEnd
	rec[layout.InodeChecksumLoOff], rec[layout.InodeChecksumLoOff+1] = 0, 0
	if hasHi {
		rec[layout.InodeChecksumHiOff], rec[layout.InodeChecksumHiOff+1] = 0, 0
	}
	c := crc32c(in.seed, rec)
	in.raw.ChecksumLo = uint16(c)
	binary.LittleEndian.PutUint16(rec[layout.InodeChecksumLoOff:], uint16(c))
	if hasHi {
		in.raw.ChecksumHi = uint16(c >> 16)
		binary.LittleEndian.PutUint16(rec[layout.InodeChecksumHiOff:], uint16(c>>16))
	}
}

// flushInodes encodes every dirty inode into its inode table block.
func (t *tx) flushInodes() error {
	for ino := range t.inodes.dirty {
		in := t.inodes.copies[ino]
		blk, off, err := t.inodeLoc(ino)
		if err != nil {
			return err
		}
		b, err := t.metaBlock(blk, kindInodeTable)
		if err != nil {
			return err
		}
		t.encodeInode(in)
		copy(b[off:off+len(in.rec)], in.rec)
	}
	return nil
}

// setIblock replaces i_block with b (at most 60 bytes, zero padded).
func setIblock(in *inode, b []byte) {
	in.raw.SetBlockBytes(b)
	copy(in.rec[0x28:0x28+layout.InodeBlockSize], in.raw.BlockBytes())
}

func putLE32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }
