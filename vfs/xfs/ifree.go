package xfs

import (
	"encoding/binary"
	"time"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// freeForks returns every block inode in owns: the data fork's extents
// and bmap btree leaves (a directory's blocks, a remote symlink's, a
// file's) and the attribute fork's extents. An attribute fork in B+tree
// form is refused.
func (t *tx) freeForks(in *inode) error {
	switch in.core.Format {
	case layout.FormatExtents, layout.FormatBtree:
		exts, err := t.f.readForkExtents(in, false)
		if err != nil {
			return err
		}
		leaves, err := t.bmbtLeaves(in)
		if err != nil {
			return err
		}
		for _, e := range exts {
			if err := t.freeFSB(e.StartBlock, e.Count, ownData(in.ino, e.StartOff, e.Unwritten)); err != nil {
				return err
			}
		}
		for _, l := range leaves {
			if err := t.freeFSB(l, 1, ownBmbt(in.ino)); err != nil {
				return err
			}
		}
	}
	if in.attr != nil {
		switch in.core.AFormat {
		case layout.FormatExtents:
			exts, err := t.f.readForkExtents(in, true)
			if err != nil {
				return err
			}
			for _, e := range exts {
				if err := t.freeFSB(e.StartBlock, e.Count, ownAttr(in.ino, e.StartOff, e.Unwritten)); err != nil {
					return err
				}
			}
		case layout.FormatBtree:
			return unsupported("freeing inode %d, whose attribute fork is a B+tree", in.ino)
		}
	}
	return nil
}

// ifree marks inode in free, its blocks already returned: the inode
// btree record's free bit set (and the finobt's, the record inserted
// there when the chunk had no free inode), AGI and superblock free counts
// up by one, and the inode itself cleared as the kernel leaves a freed
// one (mode 0, no forks, the generation bumped). Chunks are kept when
// they become wholly free, as with the ikeep mount option.
func (t *tx) ifree(in *inode, now time.Time) error {
	g := &t.f.geo
	ino := in.ino
	ag := uint32(ino >> (g.agBlkLog + g.inoPBLog))
	agino := uint32(ino & (1<<(g.agBlkLog+g.inoPBLog) - 1))
	a, err := t.inodeGroup(ag)
	if err != nil {
		return err
	}
	var key [layout.InobtKeySize]byte
	binary.BigEndian.PutUint32(key[:], agino)
	path, err := a.inobt.lookup(key[:])
	if err != nil {
		return err
	}
	w := a.inobt.where(path[0].blk.agbno)
	if path[0].idx < 0 || path[0].idx >= path[0].blk.n() {
		return w.corrupt("inode %d is in no inode chunk", ino)
	}
	rec := layout.DecodeInobtRec(path[0].rec(), a.sparse)
	if agino >= rec.StartIno+layout.InodesPerChunk || !rec.Consistent() {
		return w.corrupt("inode %d is in no inode chunk (nearest record starts at %d)", ino, rec.StartIno)
	}
	bit := uint64(1) << (agino - rec.StartIno)
	if rec.Holes()&bit != 0 || rec.Free&bit != 0 {
		return w.corrupt("inode %d is already free or in a sparse hole of chunk %d", ino, rec.StartIno)
	}
	wasFull := rec.FreeCount == 0
	rec.Free |= bit
	rec.FreeCount++
	var enc [layout.InobtRecSize]byte
	layout.EncodeInobtRec(enc[:], rec, a.sparse)
	a.inobt.update(path, enc[:])
	if a.finobt != nil {
		if wasFull {
			err = a.finobt.insert(enc[:])
		} else {
			err = a.updateRec(a.finobt, rec.StartIno, enc[:], false)
		}
		if err != nil {
			return err
		}
	}
	a.addAGI32(layout.AGIFreeCountOffset, 1)
	if err := t.addSB64(sbIFreeOffset, 1); err != nil {
		return err
	}
	// The inode: cleared but for its identity.
	off := g.inoAddr(ino)
	iw := at("inode", ino)
	iw.off = off
	b, err := t.buf(off, int(g.inodeSize), kindInode, classOwner, iw)
	if err != nil {
		return err
	}
	d := b.data
	version := d[4]
	gen := binary.BigEndian.Uint32(d[0x5C:]) + 1
	var ident [layout.InodeCoreV3Size - 0x90]byte // v3: crtime, ino, uuid
	copy(ident[:], d[0x90:layout.InodeCoreV3Size])
	change := binary.BigEndian.Uint64(d[0x68:])
	clear(d)
	binary.BigEndian.PutUint16(d, layout.InodeMagic)
	d[4] = version
	d[5] = byte(layout.FormatExtents)
	d[0x53] = byte(layout.FormatExtents)
	binary.BigEndian.PutUint32(d[0x5C:], gen)
	binary.BigEndian.PutUint32(d[0x60:], layout.NullAGIno)
	if g.crc {
		binary.BigEndian.PutUint64(d[0x68:], change+1)
		copy(d[0x90:], ident[:])
		if g.bigtimeFS {
			binary.BigEndian.PutUint64(d[0x78:], uint64(layout.Flag2Bigtime))
		}
		ts := layout.MakeTimestamp(now, g.bigtimeFS)
		binary.BigEndian.PutUint64(d[0x30:], uint64(ts)) // di_ctime
	}
	t.markDirty(b)
	t.frees = true
	return nil
}
