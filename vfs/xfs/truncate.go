package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// freeFSB returns n blocks at filesystem block fsb, o's, to their AG's
// free space (checked against the refcount btree on a reflink
// filesystem).
func (t *tx) freeFSB(fsb uint64, n uint32, o rmapOwner) error {
	g := &t.f.geo
	if n == 0 || !g.extentOK(fsb, uint64(n)) {
		return at("data fork", o.owner).corrupt("extent of %d blocks at %d lies outside the filesystem", n, fsb)
	}
	a, err := t.allocGroup(uint32(fsb >> g.agBlkLog))
	if err != nil {
		return err
	}
	return a.free(uint32(fsb&(1<<g.agBlkLog-1)), n, o)
}

// truncateData sets regular file ino's size: blocks wholly past the new
// end are freed (extents split where the end falls inside one), the bmap
// btree shrinks with them (back to an extent list when they fit the
// inode), and the bytes past the end of the last block are zeroed, so a
// later append or extension reads zeros there. Growing adds a hole. A
// file truncated to no blocks loses its reflink flag (nothing of it is
// shared any more). Freed space is returned after the references to it
// are written (tx.frees).
func (t *tx) truncateData(ino uint64, size uint64, now time.Time) error {
	g := &t.f.geo
	in, err := t.f.inode(ino)
	if err != nil {
		return err
	}
	if !in.isReg() || in.core.Flags&layout.FlagRealtime != 0 {
		return fmt.Errorf("xfs: truncating inode %d: %w", ino, vfs.ErrNotRegular)
	}
	if in.core.Version >= 3 && in.core.Flags2&layout.Flag2Nrext64 != 0 {
		return unsupported("truncating inode %d with large extent counters", ino)
	}
	if size > maxFileSize {
		return unsupported("a file of %d bytes", size)
	}
	old := uint64(in.core.Size)
	exts, err := t.f.readForkExtents(in, false)
	if err != nil {
		return err
	}
	leaves, err := t.bmbtLeaves(in)
	if err != nil {
		return err
	}
	bsz := uint64(g.blockSize)
	keepBlocks := (size + bsz - 1) >> g.blockLog
	var keep []layout.Extent
	var freed uint64
	for _, e := range exts {
		switch {
		case e.StartOff >= keepBlocks:
			if err := t.freeFSB(e.StartBlock, e.Count, ownData(ino, e.StartOff, e.Unwritten)); err != nil {
				return err
			}
			freed += uint64(e.Count)
		case e.StartOff+uint64(e.Count) > keepBlocks:
			k := uint32(keepBlocks - e.StartOff)
			if err := t.freeFSB(e.StartBlock+uint64(k), e.Count-k, ownData(ino, e.StartOff+uint64(k), e.Unwritten)); err != nil {
				return err
			}
			freed += uint64(e.Count - k)
			e.Count = k
			keep = append(keep, e)
		default:
			keep = append(keep, e)
		}
	}
	// Zero the bytes past the end of file in the block it ends in: the
	// new end when shrinking, the old one when growing.
	if edge := min(size, old); edge%bsz != 0 {
		fb := edge >> g.blockLog
		if i := findExtent(keep, fb); i >= 0 && !keep[i].Unwritten {
			fsb := keep[i].StartBlock + (fb - keep[i].StartOff)
			w := where{what: "file data", ag: int64(fsb >> g.agBlkLog), block: int64(fsb), ino: ino, off: g.fsbLinear(fsb) << g.blockLog}
			blk, b, err := t.dataBlock(w.off, int(bsz), w)
			if err != nil {
				return err
			}
			clear(blk[edge%bsz:])
			t.markDirty(b)
		}
	}
	var bmbtDelta int64
	if freed > 0 {
		// The fork shrinks with its extents: writeDataFork frees the
		// bmap leaves they no longer need (all, back to an extent list).
		if bmbtDelta, err = t.writeDataFork(in, keep, leaves); err != nil {
			return err
		}
	}
	off := g.inoAddr(ino)
	w := at("inode", ino)
	w.off = off
	b, err := t.buf(off, int(g.inodeSize), kindInode, classOwner, w)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint64(b.data[0x38:], size)                                                  // di_size
	binary.BigEndian.PutUint64(b.data[0x40:], uint64(int64(in.core.NBlocks)-int64(freed)+bmbtDelta)) // di_nblocks
	binary.BigEndian.PutUint32(b.data[0x4C:], uint32(len(keep)))                                     // di_nextents
	if len(keep) == 0 && in.core.Version >= 3 {
		f2 := binary.BigEndian.Uint64(b.data[0x78:]) &^ uint64(layout.Flag2Reflink)
		binary.BigEndian.PutUint64(b.data[0x78:], f2)
	}
	t.touchInode(b, in.core, now)
	return nil
}

// replaceInPlace sets regular file ino's content to data by overwriting
// its blocks where they are, when that frees nothing: the file's extents
// map every block below its end and no more, none unwritten, none shared
// (reflink), and data needs at least as many blocks. Blocks beyond go
// through appendData. It reports false, having changed nothing, when
// the file does not qualify (the caller truncates, then appends). As on
// ext, a crash can leave the old size over new bytes; never another
// file's block.
func (t *tx) replaceInPlace(ino uint64, data []byte, now time.Time) (bool, error) {
	g := &t.f.geo
	in, err := t.f.inode(ino)
	if err != nil {
		return false, err
	}
	if !in.isReg() || in.core.Flags&layout.FlagRealtime != 0 ||
		in.core.Version >= 3 && in.core.Flags2&(layout.Flag2Reflink|layout.Flag2Nrext64) != 0 {
		return false, nil
	}
	bsz := uint64(g.blockSize)
	oldBlocks := (uint64(in.core.Size) + bsz - 1) >> g.blockLog
	newBlocks := (uint64(len(data)) + bsz - 1) >> g.blockLog
	if newBlocks < oldBlocks {
		return false, nil
	}
	exts, err := t.f.readForkExtents(in, false)
	if err != nil {
		return false, err
	}
	var next uint64
	for _, e := range exts {
		if e.StartOff != next || e.Unwritten {
			return false, nil
		}
		next += uint64(e.Count)
	}
	if next != oldBlocks {
		return false, nil
	}
	for _, e := range exts {
		a, err := t.allocGroup(uint32(e.StartBlock >> g.agBlkLog))
		if err != nil {
			return false, err
		}
		if err := a.checkNotShared(uint32(e.StartBlock&(1<<g.agBlkLog-1)), e.Count); err != nil {
			if errors.Is(err, ErrUnsupportedFeature) {
				return false, nil // the truncation refuses it, saying why
			}
			return false, err
		}
	}
	rest := data
	for _, e := range exts {
		for i := uint64(0); i < uint64(e.Count); i++ {
			fsb := e.StartBlock + i
			w := where{what: "file data", ag: int64(fsb >> g.agBlkLog), block: int64(fsb), ino: ino, off: g.fsbLinear(fsb) << g.blockLog}
			blk, b, err := t.dataBlock(w.off, int(bsz), w)
			if err != nil {
				return false, err
			}
			n := copy(blk, rest)
			clear(blk[n:])
			t.markDirty(b)
			rest = rest[n:]
		}
	}
	b, c, err := t.inodeBuf(ino)
	if err != nil {
		return false, err
	}
	binary.BigEndian.PutUint64(b.data[0x38:], uint64(len(data)-len(rest))) // di_size
	t.touchInode(b, c, now)
	if len(rest) > 0 {
		return true, t.appendData(ino, rest, now)
	}
	return true, nil
}
