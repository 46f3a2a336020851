package xfs

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// maxExtentBlocks is the longest extent a bmap record holds (21 bits).
const maxExtentBlocks = 1<<21 - 1

// appendData appends data to regular file ino. The tail of the last
// block, when the size ends inside one, is filled in place (those bytes
// lie past the end of file, so writing them first is harmless); the rest
// goes to blocks allocated near the inode's AG (any AG when it is full),
// written as fresh blocks, and mapped by extents merged with the last one
// when contiguous. The data fork stays an extent list while it fits in
// the inode and becomes a bmap btree (root in the inode, one level of
// leaves) beyond; a tree needing a second level of nodes is refused.
// Blocks mapped past the end of file (preallocation) and an unwritten
// last block are refused too, before anything changes.
func (t *tx) appendData(ino uint64, data []byte, now time.Time) error {
	g := &t.f.geo
	in, err := t.f.inode(ino)
	if err != nil {
		return err
	}
	if !in.isReg() || in.core.Flags&layout.FlagRealtime != 0 {
		return fmt.Errorf("xfs: appending to inode %d: %w", ino, vfs.ErrNotRegular)
	}
	if in.core.Version >= 3 && in.core.Flags2&(layout.Flag2Reflink|layout.Flag2Nrext64) != 0 {
		return unsupported("appending to inode %d with reflink or large extent counters", ino)
	}
	size := uint64(in.core.Size)
	newSize := size + uint64(len(data))
	if newSize > maxFileSize {
		return unsupported("appending %d bytes to inode %d of %d bytes: a file past %d bytes", len(data), ino, size, uint64(maxFileSize))
	}
	exts, err := t.f.readForkExtents(in, false)
	if err != nil {
		return err
	}
	bsz := uint64(g.blockSize)
	endBlock := (size + bsz - 1) >> g.blockLog
	for _, e := range exts {
		if e.StartOff+uint64(e.Count) > endBlock {
			return unsupported("appending to inode %d, which has blocks mapped past its end (preallocation)", ino)
		}
	}
	fileBlock := endBlock
	if part := size % bsz; part != 0 && len(data) > 0 {
		lastFB := size >> g.blockLog
		i := findExtent(exts, lastFB)
		if i < 0 {
			// A hole: the new block starts with zeros up to the end of file.
			data = append(make([]byte, part), data...)
			fileBlock = lastFB
		} else {
			e := exts[i]
			if e.Unwritten {
				return unsupported("appending to inode %d whose last block is unwritten (preallocated)", ino)
			}
			fsb := e.StartBlock + (lastFB - e.StartOff)
			w := where{what: "file data", ag: int64(fsb >> g.agBlkLog), block: int64(fsb), ino: ino, off: g.fsbLinear(fsb) << g.blockLog}
			blk, b, err := t.dataBlock(w.off, int(bsz), w)
			if err != nil {
				return err
			}
			n := copy(blk[part:], data)
			clear(blk[int(part)+n:]) // past the new end of file: zeros
			t.markDirty(b)
			data = data[n:]
		}
	}
	oldBmbt, err := t.bmbtLeaves(in)
	if err != nil {
		return err
	}
	need := (uint64(len(data)) + bsz - 1) >> g.blockLog
	agHint := uint32(ino >> (g.agBlkLog + g.inoPBLog))
	var newBlocks uint64
	added := false
	for need > 0 {
		agbno, n, ag, err := t.allocAnyAG(agHint, uint32(min(need, maxExtentBlocks)), ownData(ino, fileBlock, false))
		if err != nil {
			return err
		}
		fsb := uint64(ag)<<g.agBlkLog | uint64(agbno)
		b, err := t.newBuf((int64(ag)*int64(g.agBlocks)+int64(agbno))<<g.blockLog, int(n)<<g.blockLog, kindRaw, at("file data", ino))
		if err != nil {
			return err
		}
		copy(b.data, data)
		data = data[min(len(data), len(b.data)):]
		e := layout.Extent{StartOff: fileBlock, StartBlock: fsb, Count: n}
		if k := len(exts) - 1; k >= 0 && exts[k].StartOff+uint64(exts[k].Count) == e.StartOff &&
			exts[k].StartBlock+uint64(exts[k].Count) == e.StartBlock && !exts[k].Unwritten &&
			uint64(exts[k].Count)+uint64(n) <= maxExtentBlocks && exts[k].StartBlock>>g.agBlkLog == uint64(ag) {
			exts[k].Count += n
		} else {
			exts = append(exts, e)
		}
		fileBlock += uint64(n)
		need -= uint64(n)
		newBlocks += uint64(n)
		added = true
	}
	var bmbtDelta int64
	if added {
		if bmbtDelta, err = t.writeDataFork(in, exts, oldBmbt); err != nil {
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
	binary.BigEndian.PutUint64(b.data[0x38:], newSize)                                             // di_size
	binary.BigEndian.PutUint64(b.data[0x40:], uint64(in.core.NBlocks)+newBlocks+uint64(bmbtDelta)) // di_nblocks
	binary.BigEndian.PutUint32(b.data[0x4C:], uint32(len(exts)))                                   // di_nextents
	t.touchInode(b, in.core, now)
	return nil
}

// maxFileSize is the largest file size the engine writes (the kernel's
// limit on 64-bit hosts is 2^63-1; this keeps block arithmetic in range).
const maxFileSize = 1 << 62

// allocAnyAG allocates up to n blocks, at least one, for o in AG hint
// or the next AG with space.
func (t *tx) allocAnyAG(hint, n uint32, o rmapOwner) (agbno, got, ag uint32, err error) {
	g := &t.f.geo
	for i := uint64(0); i < g.agCount; i++ {
		ag = uint32((uint64(hint) + i) % g.agCount)
		a, err := t.allocGroup(ag)
		if err != nil {
			return 0, 0, 0, err
		}
		// Leave room for the free list and btree splits.
		if a.agf32(agfFreeBlks) < a.minFreelist()+8 {
			continue
		}
		agbno, got, err = a.alloc(1, n, o)
		if err == nil {
			return agbno, got, ag, nil
		}
		if !isNoSpace(err) {
			return 0, 0, 0, err
		}
	}
	return 0, 0, 0, fmt.Errorf("%w: no AG has a free block", ErrNoSpace)
}

// bmbtLeaves returns the leaf blocks of in's data fork bmap btree (a
// root in the inode over one level of leaves), nil for an extent list.
func (t *tx) bmbtLeaves(in *inode) ([]uint64, error) {
	if in.core.Format != layout.FormatBtree {
		return nil, nil
	}
	root, err := layout.DecodeBmdrBlock(in.data)
	if err != nil {
		return nil, err
	}
	if root.Level != 1 {
		return nil, unsupported("rewriting a bmap btree of %d levels", root.Level+1)
	}
	maxrecs := (len(in.data) - layout.BmdrHeaderSize) / (layout.BmbtKeySize + layout.BmbtPtrSize)
	if int(root.NumRecs) > maxrecs {
		return nil, at("data fork", in.ino).corrupt("bmap root with %d records", root.NumRecs)
	}
	ptrs := in.data[layout.BmdrHeaderSize+maxrecs*layout.BmbtKeySize:]
	out := make([]uint64, root.NumRecs)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(ptrs[i*8:])
	}
	return out, nil
}

// writeDataFork stores exts in in's data fork: inline when they fit,
// else as a bmap btree whose leaves reuse the blocks of leaves and new
// ones allocated as needed, the records spread evenly so every leaf is
// at least half full. It returns the change in bmap btree blocks.
func (t *tx) writeDataFork(in *inode, exts []layout.Extent, leaves []uint64) (int64, error) {
	g := &t.f.geo
	off := g.inoAddr(in.ino)
	w := at("inode", in.ino)
	w.off = off
	b, err := t.buf(off, int(g.inodeSize), kindInode, classOwner, w)
	if err != nil {
		return 0, err
	}
	core := in.core.CoreSize()
	fork := b.data[core : core+len(in.data)]
	inline := len(fork) / layout.BmbtRecSize
	if len(exts) <= inline {
		// Back to (or still) an extent list: the btree's leaves go.
		if err := t.freeBmbtLeaves(in.ino, leaves); err != nil {
			return 0, err
		}
		clear(fork)
		for i, e := range exts {
			layout.EncodeExtent(fork[i*layout.BmbtRecSize:], e)
		}
		b.data[5] = byte(layout.FormatExtents)
		t.markDirty(b)
		return -int64(len(leaves)), nil
	}
	hdr := layout.LongBlockSize
	magic := uint32(layout.BmapMagic)
	if g.crc {
		hdr, magic = layout.LongBlockCRCSize, layout.BmapCRCMagic
	}
	perLeaf := (int(g.blockSize) - hdr) / layout.BmbtRecSize
	nLeaves := (len(exts) + perLeaf - 1) / perLeaf
	rootMax := (len(fork) - layout.BmdrHeaderSize) / (layout.BmbtKeySize + layout.BmbtPtrSize)
	if nLeaves > rootMax {
		return 0, unsupported("a bmap btree of more than two levels (%d extents)", len(exts))
	}
	delta := int64(0)
	if nLeaves < len(leaves) {
		if err := t.freeBmbtLeaves(in.ino, leaves[nLeaves:]); err != nil {
			return 0, err
		}
		delta -= int64(len(leaves) - nLeaves)
		leaves = leaves[:nLeaves]
	}
	agHint := uint32(in.ino >> (g.agBlkLog + g.inoPBLog))
	bufs := make([]*txBuf, nLeaves)
	for i := 0; i < nLeaves; i++ {
		var lb *txBuf
		if i < len(leaves) {
			fsb := leaves[i]
			if !g.extentOK(fsb, 1) {
				return 0, w.corrupt("bmap btree leaf at block %d lies outside the filesystem", fsb)
			}
			lw := where{what: "bmbt block", ag: int64(fsb >> g.agBlkLog), block: int64(fsb), ino: in.ino, off: g.fsbLinear(fsb) << g.blockLog}
			if lb, err = t.buf(lw.off, int(g.blockSize), kindLongBtree, classOwner, lw); err != nil {
				return 0, err
			}
			if binary.BigEndian.Uint32(lb.data) != magic || binary.BigEndian.Uint16(lb.data[4:]) != 0 {
				return 0, lw.corrupt("not a bmap btree leaf")
			}
		} else {
			agbno, _, ag, err := t.allocAnyAG(agHint, 1, ownBmbt(in.ino))
			if err != nil {
				return 0, err
			}
			fsb := uint64(ag)<<g.agBlkLog | uint64(agbno)
			lin := g.fsbLinear(fsb)
			if lb, err = t.newBuf(lin<<g.blockLog, int(g.blockSize), kindLongBtree, at("bmbt block", in.ino)); err != nil {
				return 0, err
			}
			leaves = append(leaves, fsb)
			delta++
		}
		bufs[i] = lb
	}
	// Root in the inode: level 1, one key and pointer per leaf.
	clear(fork)
	binary.BigEndian.PutUint16(fork[0:], 1)
	binary.BigEndian.PutUint16(fork[2:], uint16(nLeaves))
	keys, ptrs := fork[layout.BmdrHeaderSize:], fork[layout.BmdrHeaderSize+rootMax*layout.BmbtKeySize:]
	start := 0
	for i, lb := range bufs {
		n := (len(exts) - start) / (nLeaves - i) // even spread
		d := lb.data
		clear(d)
		binary.BigEndian.PutUint32(d[0:], magic)
		binary.BigEndian.PutUint16(d[6:], uint16(n))
		left, right := layout.NullFSBlock, layout.NullFSBlock
		if i > 0 {
			left = leaves[i-1]
		}
		if i+1 < nLeaves {
			right = leaves[i+1]
		}
		binary.BigEndian.PutUint64(d[8:], left)
		binary.BigEndian.PutUint64(d[16:], right)
		if g.crc {
			binary.BigEndian.PutUint64(d[0x18:], uint64(lb.off)/layout.BBSize)
			copy(d[0x28:0x38], g.metaUUID[:])
			binary.BigEndian.PutUint64(d[0x38:], in.ino)
		}
		for j := 0; j < n; j++ {
			layout.EncodeExtent(d[hdr+j*layout.BmbtRecSize:], exts[start+j])
		}
		t.markDirty(lb)
		binary.BigEndian.PutUint64(keys[i*8:], exts[start].StartOff)
		binary.BigEndian.PutUint64(ptrs[i*8:], leaves[i])
		start += n
	}
	b.data[5] = byte(layout.FormatBtree)
	t.markDirty(b)
	return delta, nil
}

// freeBmbtLeaves frees bmap btree blocks inode ino's data fork no
// longer uses (never shared: reflink shares only file data).
func (t *tx) freeBmbtLeaves(ino uint64, leaves []uint64) error {
	g := &t.f.geo
	for _, fsb := range leaves {
		if !g.extentOK(fsb, 1) {
			return at("bmbt block", 0).corrupt("block %d lies outside the filesystem", fsb)
		}
		a, err := t.allocGroup(uint32(fsb >> g.agBlkLog))
		if err != nil {
			return err
		}
		if err := a.freeUnshared(uint32(fsb&(1<<g.agBlkLog-1)), 1, ownBmbt(ino)); err != nil {
			return err
		}
	}
	return nil
}
