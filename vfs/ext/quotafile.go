package ext

import (
	"encoding/binary"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// quotaFile is one quota file (layout/quota.go) being changed by a
// transaction: its blocks are the transaction's buffers, so a change is
// written at commit with everything else, or not at all. Everything read
// from the file is bounded before use: block references against the
// file's block count and the path they lie on, entry counts against a
// block's capacity; a file that breaks a rule is refused as corrupt,
// naming the quota inode and block, before anything is written.
type quotaFile struct {
	t    *tx
	typ  int
	in   *inode // the transaction's copy of the quota inode
	info layout.QuotaInfo
}

// openQuota reads the header and info of quota type typ's file, inode ino.
func (t *tx) openQuota(typ int, ino uint32) (*quotaFile, error) {
	name := layout.QuotaTypeNames[typ]
	if ino == 0 || ino > t.f.sb.InodesCount || ino == layout.RootIno {
		return nil, corrupt("superblock", 0, 0, layout.SuperblockOffset, "%s quota inode %d is not a valid quota file inode", name, ino)
	}
	if typ != layout.QuotaProject && ino >= t.f.geo.firstIno {
		// e2fsck charges such a file to its owner: its growth would have
		// to be charged too.
		return nil, unsupported("%s quota file in inode %d, not a reserved inode", name, ino)
	}
	in, err := t.inode(ino)
	if err != nil {
		return nil, err
	}
	switch {
	case !in.isReg() || in.flag(layout.FlagInlineData):
		return nil, corrupt("inode", uint64(ino), 0, -1, "%s quota file is not a regular file with blocks (mode %#o)", name, in.raw.Mode)
	case in.size < 2*layout.QuotaBlockSize || in.size > layout.QuotaMaxFileSize:
		return nil, corrupt("inode", uint64(ino), 0, -1, "%s quota file size %d is outside [%d, %d]", name, in.size, 2*layout.QuotaBlockSize, int64(layout.QuotaMaxFileSize))
	}
	qf := &quotaFile{t: t, typ: typ, in: in, info: layout.QuotaInfo{Blocks: 1}}
	b, err := qf.block(0)
	if err != nil {
		return nil, err
	}
	h, _ := layout.DecodeQuotaHeader(b)
	switch {
	case h.Magic != layout.QuotaMagic[typ]:
		return nil, qf.corrupt(0, "magic %#x is not the %s quota magic %#x", h.Magic, name, layout.QuotaMagic[typ])
	case h.Version == 0:
		return nil, unsupported("%s quota file (inode %d) in the vfsv0 format (32-bit limits): only vfsv1 is written", name, ino)
	case h.Version != layout.QuotaVersionV1:
		return nil, qf.corrupt(0, "unknown quota format version %d", h.Version)
	}
	qf.info, _ = layout.DecodeQuotaInfo(b[layout.QuotaInfoOffset:])
	inf := qf.info
	fileBlocks := (in.size + layout.QuotaBlockSize - 1) / layout.QuotaBlockSize
	switch {
	case inf.Blocks <= layout.QuotaTreeOff || int64(inf.Blocks) > fileBlocks:
		return nil, qf.corrupt(0, "the info counts %d blocks, the file (%d bytes) holds %d", inf.Blocks, in.size, fileBlocks)
	case inf.FreeBlk >= inf.Blocks || inf.FreeBlk == layout.QuotaTreeOff:
		return nil, qf.corrupt(0, "first free block %d is not a free block of the %d", inf.FreeBlk, inf.Blocks)
	case inf.FreeEntry >= inf.Blocks || inf.FreeEntry == layout.QuotaTreeOff:
		return nil, qf.corrupt(0, "first block with a free entry %d is not a data block of the %d", inf.FreeEntry, inf.Blocks)
	}
	return qf, nil
}

// corrupt builds the error for quota block blk.
func (qf *quotaFile) corrupt(blk uint32, format string, args ...any) error {
	return corrupt(layout.QuotaTypeNames[qf.typ]+" quota block", uint64(blk), qf.in.num, -1,
		format, args...)
}

// block returns quota block k (QuotaBlockSize bytes) of the file: a
// slice of the transaction's buffer for the filesystem block holding it.
func (qf *quotaFile) block(k uint32) ([]byte, error) {
	if k >= qf.info.Blocks {
		return nil, qf.corrupt(k, "reference past the file's %d blocks", qf.info.Blocks)
	}
	t := qf.t
	bs := t.f.geo.blockSize
	off := int64(k) * layout.QuotaBlockSize
	p, _, err := t.mapBlock(qf.in, uint64(off/bs), false)
	if err != nil {
		return nil, err
	}
	if p == 0 {
		return nil, qf.corrupt(k, "the block is a hole in the quota file")
	}
	b, err := t.dataBlock(p, true)
	if err != nil {
		return nil, err
	}
	return b[off%bs : off%bs+layout.QuotaBlockSize], nil
}

// setInfo writes the info back into block 0.
func (qf *quotaFile) setInfo() error {
	b, err := qf.block(0)
	if err != nil {
		return err
	}
	return qf.info.Encode(b[layout.QuotaInfoOffset:])
}

// quotaIndex is id's index into a tree block at depth.
func quotaIndex(id uint32, depth int) int {
	return int(id>>(8*(layout.QuotaTreeDepth-1-depth))) & 0xff
}

// ref reads reference i of tree block b, checked to name a block of the
// file past the root that is not already on path (a loop).
func (qf *quotaFile) ref(b []byte, blk uint32, i int, path []uint32) (uint32, error) {
	r := binary.LittleEndian.Uint32(b[4*i:])
	switch {
	case r == 0:
		return 0, nil
	case r <= layout.QuotaTreeOff || r >= qf.info.Blocks:
		return 0, qf.corrupt(blk, "reference %d names block %d, outside the tree's blocks [%d, %d)", i, r, layout.QuotaTreeOff+1, qf.info.Blocks)
	}
	for _, p := range path {
		if p == r {
			return 0, qf.corrupt(blk, "reference %d names block %d, already on the path from the root (a loop)", i, r)
		}
	}
	return r, nil
}

// entrySlot returns the slot holding id in data block b, or -1.
func entrySlot(b []byte, id uint32) int {
	for i := range layout.QuotaEntriesV1 {
		e := b[layout.QuotaDataHdrSize+i*layout.QuotaEntryV1Size:][:layout.QuotaEntryV1Size]
		if !allZero(e) && binary.LittleEndian.Uint32(e) == id {
			return i
		}
	}
	return -1
}

// add changes id's usage by d, creating its entry when it has none.
func (qf *quotaFile) add(id uint32, d quotaDelta) error {
	path := []uint32{layout.QuotaTreeOff}
	blk := uint32(layout.QuotaTreeOff)
	for depth := 0; ; depth++ {
		b, err := qf.block(blk)
		if err != nil {
			return err
		}
		i := quotaIndex(id, depth)
		r, err := qf.ref(b, blk, i, path)
		if err != nil {
			return err
		}
		if r == 0 {
			return qf.insert(id, d, path, depth)
		}
		if depth == layout.QuotaTreeDepth-1 {
			db, err := qf.block(r)
			if err != nil {
				return err
			}
			s := entrySlot(db, id)
			if s < 0 {
				return qf.corrupt(r, "the tree leads id %d here, but no entry holds it", id)
			}
			return qf.change(db, r, s, id, d)
		}
		path = append(path, r)
		blk = r
	}
}

// change applies d to entry s of data block db (block blk).
func (qf *quotaFile) change(db []byte, blk uint32, s int, id uint32, d quotaDelta) error {
	raw := db[layout.QuotaDataHdrSize+s*layout.QuotaEntryV1Size:][:layout.QuotaEntryV1Size]
	e, _ := layout.DecodeQuotaEntryV1(raw)
	space, inodes := int64(e.CurSpace)+d.space, int64(e.CurInodes)+d.inodes
	if space < 0 || inodes < 0 || (d.space > 0 && space < d.space) || (d.inodes > 0 && inodes < d.inodes) {
		return qf.corrupt(blk, "%s id %d uses %d bytes and %d inodes, which cannot change by %+d bytes and %+d inodes (the quota file disagrees with the filesystem)",
			layout.QuotaTypeNames[qf.typ], id, e.CurSpace, e.CurInodes, d.space, d.inodes)
	}
	if e == (layout.QuotaEntryV1{ID: id, ITime: 1}) {
		e.ITime = 0 // the marker of an otherwise empty entry, not a time
	}
	e.CurSpace, e.CurInodes = uint64(space), uint64(inodes)
	if e == (layout.QuotaEntryV1{}) {
		e.ITime = 1 // an all-zero entry would read as unused
	}
	return e.Encode(raw)
}

// insert creates id's entry with usage d: below path[:depth+1] (whose
// last block has no reference for id), tree blocks down to the last
// level, and a slot in a data block with a free entry.
func (qf *quotaFile) insert(id uint32, d quotaDelta, path []uint32, depth int) error {
	if d.space < 0 || d.inodes < 0 {
		return qf.corrupt(path[len(path)-1], "%s id %d has no entry, but its usage falls by %d bytes and %d inodes (the quota file disagrees with the filesystem)",
			layout.QuotaTypeNames[qf.typ], id, -d.space, -d.inodes)
	}
	parent := path[len(path)-1]
	for ; depth < layout.QuotaTreeDepth-1; depth++ {
		nb, err := qf.freeBlock(path)
		if err != nil {
			return err
		}
		if err := qf.setRef(parent, quotaIndex(id, depth), nb); err != nil {
			return err
		}
		path = append(path, nb)
		parent = nb
	}
	blk, err := qf.freeEntryBlock(path)
	if err != nil {
		return err
	}
	db, err := qf.block(blk)
	if err != nil {
		return err
	}
	s := entrySlot(db, id)
	if s >= 0 {
		return qf.corrupt(blk, "%s id %d already has an entry here, but the tree does not lead to it", layout.QuotaTypeNames[qf.typ], id)
	}
	for s = 0; s < layout.QuotaEntriesV1; s++ {
		if allZero(db[layout.QuotaDataHdrSize+s*layout.QuotaEntryV1Size:][:layout.QuotaEntryV1Size]) {
			break
		}
	}
	h, _ := layout.DecodeQuotaDataHeader(db)
	if s == layout.QuotaEntriesV1 || int(h.Entries) >= layout.QuotaEntriesV1 {
		return qf.corrupt(blk, "listed as having a free entry, but its %d entries are in use", layout.QuotaEntriesV1)
	}
	if int(h.Entries)+1 == layout.QuotaEntriesV1 { // full now: off the list
		if err := qf.unlinkFree(db, blk, h); err != nil {
			return err
		}
		h, _ = layout.DecodeQuotaDataHeader(db)
	}
	h.Entries++
	if err := h.Encode(db); err != nil {
		return err
	}
	raw := db[layout.QuotaDataHdrSize+s*layout.QuotaEntryV1Size:][:layout.QuotaEntryV1Size]
	e := layout.QuotaEntryV1{ID: id}
	if err := e.Encode(raw); err != nil {
		return err
	}
	if err := qf.change(db, blk, s, id, d); err != nil {
		return err
	}
	return qf.setRef(parent, quotaIndex(id, layout.QuotaTreeDepth-1), blk)
}

// setRef sets reference i of tree block blk to r.
func (qf *quotaFile) setRef(blk uint32, i int, r uint32) error {
	b, err := qf.block(blk)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[4*i:], r)
	return nil
}

// freeBlock takes a block for a new tree or data block: the head of the
// free block list, else a new block at the end of the file (which grows).
// It comes back zeroed. path: the tree blocks in use on the way (a free
// list naming one of them is refused).
func (qf *quotaFile) freeBlock(path []uint32) (uint32, error) {
	if fb := qf.info.FreeBlk; fb != 0 {
		for _, p := range path {
			if p == fb {
				return 0, qf.corrupt(0, "the free block list names block %d, which is in the tree", fb)
			}
		}
		b, err := qf.block(fb)
		if err != nil {
			return 0, err
		}
		h, _ := layout.DecodeQuotaDataHeader(b)
		if h.Entries != 0 || h.NextFree >= qf.info.Blocks || h.NextFree == layout.QuotaTreeOff || h.NextFree == fb {
			return 0, qf.corrupt(fb, "a free block with %d entries and next free block %d (of %d)", h.Entries, h.NextFree, qf.info.Blocks)
		}
		qf.info.FreeBlk = h.NextFree
		clear(b)
		return fb, qf.setInfo()
	}
	nb := qf.info.Blocks
	if int64(nb+1)*layout.QuotaBlockSize > layout.QuotaMaxFileSize {
		return 0, qf.corrupt(0, "the quota file would pass %d bytes", int64(layout.QuotaMaxFileSize))
	}
	if err := qf.grow(nb); err != nil {
		return 0, err
	}
	qf.info.Blocks++
	b, err := qf.block(nb)
	if err != nil {
		return 0, err
	}
	clear(b)
	return nb, qf.setInfo()
}

// grow maps the filesystem block that will hold quota block k, and sets
// the file's size to cover it (as the kernel does: to the end of the
// quota block written).
func (qf *quotaFile) grow(k uint32) error {
	t := qf.t
	bs := t.f.geo.blockSize
	off := int64(k) * layout.QuotaBlockSize
	p, isNew, err := t.mapBlock(qf.in, uint64(off/bs), true)
	if err != nil {
		return err
	}
	if isNew {
		if _, err := t.dataBlock(p, false); err != nil { // a fresh, zeroed buffer
			return err
		}
	}
	if end := off + layout.QuotaBlockSize; end > qf.in.size {
		t.setSize(qf.in, end)
	}
	t.dirtyInode(qf.in)
	return nil
}

// freeEntryBlock returns a data block with a free entry: the head of the
// list of such blocks, else a new block, put at the head of the list.
func (qf *quotaFile) freeEntryBlock(path []uint32) (uint32, error) {
	if fe := qf.info.FreeEntry; fe != 0 {
		for _, p := range path {
			if p == fe {
				return 0, qf.corrupt(0, "the list of blocks with free entries names block %d, which is in the tree", fe)
			}
		}
		b, err := qf.block(fe)
		if err != nil {
			return 0, err
		}
		if h, _ := layout.DecodeQuotaDataHeader(b); h.PrevFree != 0 {
			return 0, qf.corrupt(fe, "heads the list of blocks with free entries, but names block %d before it", h.PrevFree)
		}
		return fe, nil
	}
	nb, err := qf.freeBlock(path)
	if err != nil {
		return 0, err
	}
	qf.info.FreeEntry = nb
	return nb, qf.setInfo()
}

// unlinkFree takes data block blk (buffer db, header h) off the list of
// blocks with free entries.
func (qf *quotaFile) unlinkFree(db []byte, blk uint32, h layout.QuotaDataHeader) error {
	for _, nb := range []uint32{h.NextFree, h.PrevFree} {
		if nb >= qf.info.Blocks || nb == layout.QuotaTreeOff || nb == blk {
			return qf.corrupt(blk, "its free-entry list links name block %d (of %d)", nb, qf.info.Blocks)
		}
	}
	if h.NextFree != 0 {
		b, err := qf.block(h.NextFree)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(b[4:], h.PrevFree)
	}
	if h.PrevFree != 0 {
		b, err := qf.block(h.PrevFree)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(b[0:], h.NextFree)
	} else {
		qf.info.FreeEntry = h.NextFree
		if err := qf.setInfo(); err != nil {
			return err
		}
	}
	h.NextFree, h.PrevFree = 0, 0
	return h.Encode(db)
}
