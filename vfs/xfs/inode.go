package xfs

import (
	"io/fs"
	"sync"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// inode is a decoded, validated on-disk inode.
type inode struct {
	ino  uint64
	core *layout.InodeCore
	data []byte // the data fork area
	attr []byte // the attr fork area, nil when the inode has none

	// The data fork's extent list, kept once read when it is small
	// (maxCachedExtents): repeated lookups in a directory do not walk
	// its bmap btree again.
	mu   sync.Mutex
	exts []layout.Extent
}

// inode reads and validates inode ino through the inode cache.
func (f *FS) inode(ino uint64) (*inode, error) {
	w := at("inode", ino)
	off := f.geo.inoAddr(ino)
	if off < 0 {
		return nil, w.corrupt("inode number lies outside the filesystem")
	}
	pending := f.tx != nil && f.tx.covers(off, int(f.geo.inodeSize))
	if in, ok := f.inodes.Get(ino); ok && !pending {
		return in, nil
	}
	w.ag = int64(ino >> (f.geo.agBlkLog + f.geo.inoPBLog))
	w.block = off >> f.geo.blockLog
	w.off = off
	raw := make([]byte, f.geo.inodeSize)
	if err := f.readAt(raw, off, w); err != nil {
		return nil, err
	}
	in, err := f.decodeInode(ino, raw, w)
	if err != nil {
		return nil, err
	}
	if !pending {
		f.inodes.Put(ino, in)
	}
	return in, nil
}

// decodeInode validates the raw inode bytes of ino.
func (f *FS) decodeInode(ino uint64, raw []byte, w where) (*inode, error) {
	c, err := layout.DecodeInodeCore(raw)
	if err != nil {
		return nil, w.corrupt("%v", err)
	}
	if c.Magic != layout.InodeMagic {
		return nil, w.corrupt("bad magic %#x", c.Magic)
	}
	if f.geo.crc {
		if c.Version != 3 {
			return nil, w.corrupt("version %d inode on a v5 filesystem", c.Version)
		}
		if got, want := c.CRC, layout.Checksum(raw, layout.InodeCRCOffset); got != want {
			return nil, w.badChecksum(got, want)
		}
		if c.Ino != ino {
			return nil, w.corrupt("inode claims to be number %d", c.Ino)
		}
		if c.UUID != f.geo.metaUUID {
			return nil, w.corrupt("inode belongs to another filesystem (UUID mismatch)")
		}
	} else if c.Version != 1 && c.Version != 2 {
		return nil, w.corrupt("version %d inode on a v4 filesystem", c.Version)
	}
	if c.Mode == 0 {
		return nil, w.corrupt("inode is free (mode 0)")
	}
	core := int64(c.CoreSize())
	area := f.geo.inodeSize - core
	dsize := area
	if c.ForkOff != 0 {
		dsize = int64(c.ForkOff) * 8
		if dsize >= area {
			return nil, w.corrupt("attr fork offset %d leaves no room for the attr fork", c.ForkOff)
		}
	}
	in := &inode{ino: ino, core: c, data: raw[core : core+dsize]}
	if c.ForkOff != 0 {
		in.attr = raw[core+dsize:]
	}
	if c.Size > 1<<62 {
		return nil, w.corrupt("size %d", c.Size)
	}
	ok := false
	switch c.Mode & vfs.UnixTypeMask {
	case vfs.UnixRegular:
		ok = c.Format == layout.FormatExtents || c.Format == layout.FormatBtree
	case vfs.UnixDir:
		ok = c.Format == layout.FormatLocal || c.Format == layout.FormatExtents || c.Format == layout.FormatBtree
	case vfs.UnixSymlink:
		ok = c.Format == layout.FormatLocal || c.Format == layout.FormatExtents || c.Format == layout.FormatBtree
	case vfs.UnixChar, vfs.UnixBlock, vfs.UnixFIFO, vfs.UnixSocket:
		ok = c.Format == layout.FormatDev
	default:
		return nil, w.corrupt("unknown file type in mode %#o", c.Mode)
	}
	if !ok {
		return nil, w.corrupt("data fork format %s for mode %#o", c.Format, c.Mode)
	}
	if in.attr != nil {
		switch c.AFormat {
		case layout.FormatLocal, layout.FormatExtents, layout.FormatBtree:
		default:
			return nil, w.corrupt("attr fork format %s", c.AFormat)
		}
	}
	return in, nil
}

func (in *inode) typ() uint32       { return uint32(in.core.Mode) & vfs.UnixTypeMask }
func (in *inode) isDir() bool       { return in.typ() == vfs.UnixDir }
func (in *inode) isReg() bool       { return in.typ() == vfs.UnixRegular }
func (in *inode) isSymlink() bool   { return in.typ() == vfs.UnixSymlink }
func (in *inode) size() int64       { return int64(in.core.Size) }
func (in *inode) mode() fs.FileMode { return vfs.ModeFromUnix(uint32(in.core.Mode)) }
func (in *inode) mtime() time.Time  { return in.core.Mtime.Time(in.core.Bigtime()) }

// rdev returns the Linux device number (major<<8 | minor, in the glibc
// encoding) of a device inode, 0 for anything else.
func (in *inode) rdev() uint64 {
	if in.core.Format != layout.FormatDev || len(in.data) < 4 {
		return 0
	}
	t := in.typ()
	if t != vfs.UnixChar && t != vfs.UnixBlock {
		return 0
	}
	v := uint32(in.data[0])<<24 | uint32(in.data[1])<<16 | uint32(in.data[2])<<8 | uint32(in.data[3])
	ma, mi := layout.DevNumber(v)
	return uint64(ma&0xfff)<<8 | uint64(ma&^0xfff)<<32 | uint64(mi&0xff) | uint64(mi&^0xff)<<12
}
