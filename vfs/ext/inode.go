package ext

import (
	"io/fs"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// inode is a decoded, validated inode.
type inode struct {
	num  uint32
	raw  *layout.Inode
	rec  []byte // the whole on-disk record (inode size bytes), for in-inode xattrs
	size int64
	seed uint32 // checksum seed of this inode's blocks (metadata_csum)
}

// validIno reports whether n may appear in a directory entry: the root, or
// a non-reserved inode of the filesystem.
func (f *FS) validIno(n uint32) bool {
	return n == layout.RootIno || (n >= f.geo.firstIno && n <= f.sb.InodesCount)
}

// inode returns validated inode n (any number 1..s_inodes_count).
func (f *FS) inode(n uint32) (*inode, error) {
	if n == 0 || n > f.sb.InodesCount {
		return nil, corrupt("inode", uint64(n), 0, -1, "inode number out of range (%d inodes)", f.sb.InodesCount)
	}
	if in, ok := f.cache.inodes.Get(n); ok {
		return in, nil
	}
	rec, at, err := f.inodeRecord(n)
	if err != nil {
		return nil, err
	}
	in, err := f.decodeInode(n, rec, at)
	if err != nil {
		return nil, err
	}
	f.cache.inodes.Put(n, in)
	return in, nil
}

// inodeRecord reads the raw record of inode n and its byte offset.
func (f *FS) inodeRecord(n uint32) ([]byte, int64, error) {
	g, idx := (n-1)/f.geo.ipg, (n-1)%f.geo.ipg
	d, err := f.groupDesc(g)
	if err != nil {
		return nil, 0, err
	}
	if f.hasGroupCsum() && (d.Flags&layout.GroupInodeUninit != 0 || idx >= f.geo.ipg-d.ItableUnused()) {
		return nil, 0, corrupt("inode", uint64(n), 0, -1, "inode lies in the uninitialised part of group %d's inode table", g)
	}
	byteOff := uint64(idx) * uint64(f.geo.inodeSize)
	blk := d.InodeTable() + byteOff/uint64(f.geo.blockSize)
	b, err := f.block(blk, "inode table block", 0)
	if err != nil {
		return nil, 0, err
	}
	off := int(byteOff % uint64(f.geo.blockSize))
	rec := make([]byte, f.geo.inodeSize)
	copy(rec, b[off:])
	return rec, int64(blk)*f.geo.blockSize + int64(off), nil
}

// decodeInode checks and decodes record rec of inode n.
func (f *FS) decodeInode(n uint32, rec []byte, at int64) (*inode, error) {
	raw, err := layout.DecodeInode(rec)
	if err != nil {
		return nil, err
	}
	in := &inode{num: n, raw: raw, rec: rec}
	if f.geo.inodeSize == layout.InodeBaseSize {
		raw.ExtraIsize = 0
	} else if int(raw.ExtraIsize)+layout.InodeBaseSize > f.geo.inodeSize || raw.ExtraIsize%4 != 0 {
		return nil, corrupt("inode", uint64(n), 0, at, "extra inode size %d", raw.ExtraIsize)
	}
	if f.geo.metaCsum {
		in.seed = crc32cU32(crc32cU32(f.geo.csumSeed, n), raw.Generation)
		if err := f.checkInodeChecksum(in, at); err != nil {
			return nil, err
		}
	}
	if raw.Mode == 0 || raw.LinksCount == 0 && raw.Flags&layout.FlagEAInode == 0 {
		return nil, corrupt("inode", uint64(n), 0, at, "inode is not in use (mode %#o, %d links)", raw.Mode, raw.LinksCount)
	}
	in.size, err = f.inodeSize(in, at)
	return in, err
}

// inodeSize returns the file size as the kernel reads it: the high half
// counts for regular files, and for directories with large_dir.
func (f *FS) inodeSize(in *inode, at int64) (int64, error) {
	sz := uint64(in.raw.SizeLo)
	if in.raw.Type() == layout.ModeRegular || f.geo.largeDir {
		sz = in.raw.Size()
	}
	if sz > 1<<62 {
		return 0, corrupt("inode", uint64(in.num), 0, at, "size %d", sz)
	}
	return int64(sz), nil
}

// checkInodeChecksum verifies the crc32c of an inode record (only the low
// 16 bits exist in 128-byte inodes). An all-zero record is left to the
// in-use check.
func (f *FS) checkInodeChecksum(in *inode, at int64) error {
	rec := in.rec
	hasHi := f.geo.inodeSize > layout.InodeBaseSize && in.raw.ExtraIsize >= layout.InodeCsumHiEnd
	tmp := make([]byte, len(rec))
	copy(tmp, rec)
	tmp[layout.InodeChecksumLoOff], tmp[layout.InodeChecksumLoOff+1] = 0, 0
	got := uint32(in.raw.ChecksumLo)
	if hasHi {
		tmp[layout.InodeChecksumHiOff], tmp[layout.InodeChecksumHiOff+1] = 0, 0
		got |= uint32(in.raw.ChecksumHi) << 16
	}
	want := crc32c(in.seed, tmp)
	if !hasHi {
		want &= 0xFFFF
	}
	if got != want && !allZero(rec) {
		return badChecksum("inode", uint64(in.num), 0, at, got, want)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// mode returns the inode's type and permissions as an fs.FileMode.
func (in *inode) mode() fs.FileMode { return vfs.ModeFromUnix(uint32(in.raw.Mode)) }

func (in *inode) isDir() bool     { return in.raw.Type() == layout.ModeDir }
func (in *inode) isReg() bool     { return in.raw.Type() == layout.ModeRegular }
func (in *inode) isSymlink() bool { return in.raw.Type() == layout.ModeSymlink }
func (in *inode) flag(fl layout.InodeFlag) bool {
	return in.raw.Flags&fl != 0
}

// mtime returns the modification time, nanoseconds and epoch bits from
// the extra field when the inode has it.
func (in *inode) mtime() time.Time {
	var extra uint32
	if in.raw.HasExtra(layout.EndMtimeExtra) {
		extra = in.raw.MtimeExtra
	}
	s, ns := layout.DecodeTime(in.raw.Mtime, extra)
	return time.Unix(s, ns)
}

// rdev returns the device number of a device node in the Linux dev_t
// encoding: the old 16-bit form in i_block[0], else the new one in
// i_block[1].
func (in *inode) rdev() uint64 {
	t := in.raw.Type()
	if t != layout.ModeChar && t != layout.ModeBlock {
		return 0
	}
	var major, minor uint64
	if old := in.raw.Block[0]; old != 0 {
		major, minor = uint64(old>>8&0xFF), uint64(old&0xFF)
	} else {
		d := in.raw.Block[1]
		major = uint64(d&0xFFF00) >> 8
		minor = uint64(d&0xFF) | uint64(d>>12&0xFFF00)
	}
	return major&0xFFFFF000<<32 | major&0xFFF<<8 | minor&0xFFFFFF00<<12 | minor&0xFF
}

// blocks512 returns the space the inode uses in 512-byte units.
func (f *FS) blocks512(in *inode) uint64 {
	if !f.geo.hugeFile {
		return uint64(in.raw.BlocksLo)
	}
	n := in.raw.Blocks()
	if in.flag(layout.FlagHugeFile) {
		return n << (f.geo.logBlock - 9)
	}
	return n
}

// iblock returns the 60 bytes of i_block as stored on disk.
func (in *inode) iblock() []byte { return in.rec[0x28 : 0x28+layout.InodeBlockSize] }
