package xfs

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// sfEntry is a decoded short-form directory entry and where it sits.
type sfEntry struct {
	pos    int    // byte position in the fork
	size   int    // bytes it takes in the fork
	offset uint16 // its position in the would-be data block
	name   string
	ino    uint64
	ftype  uint8 // 0 without the ftype feature
}

// dirInodeBuf returns the transaction's buffer of directory inode ino
// and its decoded core.
func (t *tx) dirInodeBuf(ino uint64) (*txBuf, *layout.InodeCore, error) {
	b, c, err := t.inodeBufAs(ino, "directory inode", className)
	if err != nil {
		return nil, nil, err
	}
	if c.Mode&vfs.UnixTypeMask != vfs.UnixDir {
		return nil, nil, fmt.Errorf("xfs: inode %d: %w", ino, vfs.ErrNotDir)
	}
	return b, c, nil
}

// sfEntries decodes the short-form directory in fork (size bytes).
func (t *tx) sfEntries(ino uint64, fork []byte, size int) (i8 bool, ents []sfEntry, err error) {
	w := at("short-form directory", ino)
	if size > len(fork) || size < layout.DirSFHdrSize4 {
		return false, nil, w.corrupt("size %d does not fit the %d-byte data fork", size, len(fork))
	}
	b := fork[:size]
	count, i8count := int(b[0]), int(b[1])
	isz := 4
	if i8count != 0 {
		isz, i8 = 8, true
	}
	ftype := t.f.geo.ftype
	pos := 2 + isz
	prevEnd := uint16(0)
	for i := 0; i < count; i++ {
		if pos+3 > len(b) {
			return false, nil, w.corrupt("entry %d runs past the %d-byte directory", i, len(b))
		}
		nl := int(b[pos])
		n := 3 + nl + isz
		if ftype {
			n++
		}
		if nl == 0 || pos+n > len(b) {
			return false, nil, w.corrupt("entry %d runs past the %d-byte directory", i, len(b))
		}
		e := sfEntry{pos: pos, size: n, offset: binary.BigEndian.Uint16(b[pos+1:]), name: string(b[pos+3 : pos+3+nl])}
		q := pos + 3 + nl
		if ftype {
			e.ftype = b[q]
			q++
		}
		if isz == 8 {
			e.ino = binary.BigEndian.Uint64(b[q:])
		} else {
			e.ino = uint64(binary.BigEndian.Uint32(b[q:]))
		}
		if e.offset < prevEnd {
			return false, nil, w.corrupt("entry %d at offset %d overlaps the one before", i, e.offset)
		}
		prevEnd = e.offset + uint16(layout.DirDataEntrySize(nl, ftype))
		ents = append(ents, e)
		pos += n
	}
	if pos != size {
		return false, nil, w.corrupt("%d entries end at byte %d of %d", count, pos, size)
	}
	return i8, ents, nil
}

// dataFirstOffset is where the first named entry of a data block starts:
// after the header and the "." and ".." entries.
func (f *FS) dataFirstOffset() int {
	return f.dataHdrSize() + layout.DirDataEntrySize(1, f.geo.ftype) + layout.DirDataEntrySize(2, f.geo.ftype)
}

// ftypeOf returns the directory entry file type of a mode.
func ftypeOf(mode uint32) uint8 {
	switch mode & vfs.UnixTypeMask {
	case vfs.UnixRegular:
		return layout.FtypeRegular
	case vfs.UnixDir:
		return layout.FtypeDir
	case vfs.UnixChar:
		return layout.FtypeChar
	case vfs.UnixBlock:
		return layout.FtypeBlock
	case vfs.UnixFIFO:
		return layout.FtypeFIFO
	case vfs.UnixSocket:
		return layout.FtypeSocket
	case vfs.UnixSymlink:
		return layout.FtypeSymlink
	}
	return layout.FtypeUnknown
}

// sfAddEntry adds name → ino (of the given mode) to short-form directory
// dir, appended after the last entry with the next offset, as the
// kernel's easy case does. A directory that would outgrow its inode, or
// one block once converted, or that needs 8-byte inode numbers it does
// not have, fails with errSFFull (dirAddEntry then converts it to a
// block); a name already present is refused (fs.ErrExist).
func (t *tx) sfAddEntry(dir uint64, name string, ino uint64, mode uint32, now time.Time) error {
	if err := checkName(name); err != nil || name == "." || name == ".." {
		return fmt.Errorf("xfs: adding %q to directory %d: %w", name, dir, vfs.ErrInvalidPath)
	}
	b, c, err := t.dirInodeBuf(dir)
	if err != nil {
		return err
	}
	if c.Format != layout.FormatLocal {
		return unsupported("adding to directory %d in %s form (only short form is written yet)", dir, c.Format)
	}
	g := &t.f.geo
	core := c.CoreSize()
	area := int(g.inodeSize) - core
	if c.ForkOff != 0 {
		area = int(c.ForkOff) * 8
	}
	fork := b.data[core : core+area]
	i8, ents, err := t.sfEntries(dir, fork, int(c.Size))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if t.f.nameEqual([]byte(e.name), name) {
			return fmt.Errorf("xfs: %q in directory %d: %w", name, dir, fs.ErrExist)
		}
	}
	if ino > 0xFFFFFFFF && !i8 {
		return errSFFull
	}
	isz := 4
	if i8 {
		isz = 8
	}
	offset := t.f.dataFirstOffset()
	if n := len(ents); n > 0 {
		last := ents[n-1]
		offset = int(last.offset) + layout.DirDataEntrySize(len(last.name), g.ftype)
	}
	// Once in block form the entries, their leaf entries (with "." and
	// ".."), and the tail must fit one directory block.
	blockUse := offset + layout.DirDataEntrySize(len(name), g.ftype) + (len(ents)+3)*layout.DirLeafEntrySize + layout.DirBlockTailSize
	entSize := 3 + len(name) + isz
	if g.ftype {
		entSize++
	}
	size := int(c.Size)
	if blockUse > int(g.dirBlkSize) || size+entSize > area || len(ents) >= 255 {
		return errSFFull
	}
	e := fork[size : size+entSize]
	e[0] = byte(len(name))
	binary.BigEndian.PutUint16(e[1:], uint16(offset))
	copy(e[3:], name)
	q := 3 + len(name)
	if g.ftype {
		e[q] = ftypeOf(mode)
		q++
	}
	if isz == 8 {
		binary.BigEndian.PutUint64(e[q:], ino)
	} else {
		binary.BigEndian.PutUint32(e[q:], uint32(ino))
	}
	fork[0]++ // count
	if ino > 0xFFFFFFFF {
		fork[1]++ // i8count: entries needing 8 bytes
	}
	binary.BigEndian.PutUint64(b.data[0x38:], uint64(size+entSize)) // di_size
	if mode&vfs.UnixTypeMask == vfs.UnixDir {
		binary.BigEndian.PutUint32(b.data[0x10:], c.Nlink+1) // the child's ".."
	}
	t.touchInode(b, c, now)
	return nil
}

// touchInode sets mtime and ctime of an inode buffer to now and bumps
// its change count (v3), then marks it dirty.
func (t *tx) touchInode(b *txBuf, c *layout.InodeCore, now time.Time) {
	ts := layout.MakeTimestamp(now, c.Bigtime())
	binary.BigEndian.PutUint64(b.data[0x28:], uint64(ts)) // di_mtime
	binary.BigEndian.PutUint64(b.data[0x30:], uint64(ts)) // di_ctime
	if c.Version >= 3 {
		binary.BigEndian.PutUint64(b.data[0x68:], c.ChangeCount+1)
	}
	t.markDirty(b)
}

// create makes an empty file, directory or device node name in
// directory dir, owned by uid:gid, with what it inherits from dir
// (newInode.inheritFrom): an inode from an existing chunk near the
// directory, then the entry.
func (t *tx) create(dir uint64, name string, mode, uid, gid uint32, now time.Time) (uint64, error) {
	g := &t.f.geo
	n := newInode{mode: mode, uid: uid, gid: gid, nlink: 1, now: now}
	if mode&vfs.UnixTypeMask == vfs.UnixDir {
		n.nlink, n.parent = 2, dir
	}
	pd, err := t.f.inode(dir)
	if err != nil {
		return 0, err
	}
	n.inheritFrom(pd.core, g.agBlocks, t.f.sb.FeaturesROCompat&layout.ROCompatReflink != 0)
	ino, err := t.ialloc(uint32(dir>>(g.agBlkLog+g.inoPBLog)), n)
	if err != nil {
		return 0, err
	}
	return ino, t.dirAddEntry(dir, name, ino, mode, now)
}
