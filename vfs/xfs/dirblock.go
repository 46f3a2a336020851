package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// Directory writes: the one entry point the engine calls to add, remove
// or repoint a name, whatever the directory's form.
//
// A short-form directory is edited inside its inode (dirsf.go) and
// converted to a block when it outgrows it. An extent-mapped directory
// (block, leaf or node form, its data fork an extent list or a bmap
// btree) is changed in two parts:
//
//   - data blocks are edited in place: a new entry goes into the first
//     data block whose longest free region holds it (the bests of the
//     leaf tail or free-index blocks say which), else into a new data
//     block; a removed entry becomes a free region merged with its free
//     neighbours. Each touched block's bestfree table is recomputed from
//     its regions. A block-form directory (one block holding its own
//     leaf) is rebuilt whole, and becomes a data block plus a leaf when
//     the entry and its leaf entry no longer fit;
//   - the hash index (leaf entries and the per-block bests) is read whole
//     from the leaf or leaf and free-index blocks, changed, and written
//     back in the smallest form that holds it, reusing the directory's
//     blocks: one leaf1 block (leaf form) while entries and bests fit,
//     else hash-ordered leafn blocks under a da btree whose root stays at
//     the first leaf block, plus free-index blocks (node form). A node
//     directory's entries stay in the leaves whose hash ranges hold them
//     while every leaf keeps between one entry and a full block; else
//     they are spread evenly, each leaf three quarters full. Only index
//     blocks whose bytes change are written. Shrinking
//     (node to leaf, fewer leaves) frees the blocks no longer used, as
//     does a data block emptied by a removal (xfs_repair junks empty data
//     blocks); a block directory is never converted back to short form.
//
// The cost of a change: the directory's index is read once per
// transaction (8 bytes per entry, into the transaction's buffers) and
// decoded per change; the blocks written are the data block, the leaf
// the name's hash falls in, the da nodes above it when its highest hash
// changes, and one free-index block, unless the leaves must be
// re-spread.

// errSFFull: a short-form directory cannot take the entry in its inode.
var errSFFull = errors.New("xfs: short-form directory is full")

// oldLeaf is a leafn block as read: where, and its first and last hash.
type oldLeaf struct {
	fb          uint64
	first, last uint32
}

// leafEnt is one leaf entry: name hash and data address (8-byte units).
type leafEnt struct{ hash, addr uint32 }

// dirW is an extent-mapped directory opened for change in a transaction.
type dirW struct {
	t        *tx
	g        *geometry
	ino      uint64
	in       *inode
	exts     []layout.Extent
	origExts []layout.Extent // the data fork's extents as read
	bmbt     []uint64        // bmap btree leaves of the data fork, nil for an extent list
	perDB    uint64          // filesystem blocks per directory block
	form     dirForm
	bests    []int     // per data block: longest free region, -1 for a hole
	ents     []leafEnt // live leaf entries, "." and ".." included
	leafBlks []uint64  // node form: leaf-space blocks other than the first (file blocks)
	// oldLeaves: node form, the leafn blocks as read, in hash order.
	oldLeaves []oldLeaf
	freeBlks  []uint64 // node form: free-index blocks (file blocks)
	grown     int64    // filesystem blocks mapped (freed: negative) by this change
}

func (d *dirW) leafFB() uint64 { return uint64(layout.DirLeafOffset) >> d.g.blockLog }
func (d *dirW) freeFB() uint64 { return uint64(layout.DirFreeOffset) >> d.g.blockLog }

// maxDataBlocks is how many directory blocks the data area holds.
func (d *dirW) maxDataBlocks() int { return int(uint64(layout.DirLeafOffset) / uint64(d.g.dirBlkSize)) }

// where names directory block fb of the directory for an error.
func (d *dirW) where(fb uint64) where {
	return where{what: "directory", ag: -1, block: int64(fb), ino: d.ino, off: -1}
}

// blockOff returns the byte offset of directory block fb, which must lie
// in one extent.
func (d *dirW) blockOff(fb uint64) (int64, error) {
	x := findExtent(d.exts, fb)
	if x < 0 {
		return 0, d.where(fb).corrupt("directory block is not mapped")
	}
	e := d.exts[x]
	if e.Unwritten {
		return 0, d.where(fb).corrupt("directory block is mapped unwritten")
	}
	if fb+d.perDB > e.StartOff+uint64(e.Count) {
		return 0, unsupported("directory %d: block %d is split across extents", d.ino, fb)
	}
	lin := d.g.fsbLinear(e.StartBlock + (fb - e.StartOff))
	if lin < 0 {
		return 0, d.where(fb).corrupt("directory block lies outside the filesystem")
	}
	return lin << d.g.blockLog, nil
}

// mapped reports whether directory block fb is mapped.
func (d *dirW) mapped(fb uint64) bool { return findExtent(d.exts, fb) >= 0 }

// block returns the transaction's buffer of directory block fb, checking
// its magic (a 32-bit data magic when kind is kindDirData, else the 16-bit
// da magic) and, on v5, its self-description.
func (d *dirW) block(fb uint64, kind bufKind, magics ...uint32) (*txBuf, error) {
	off, err := d.blockOff(fb)
	if err != nil {
		return nil, err
	}
	w := d.where(fb)
	w.off = off
	b, err := d.t.buf(off, int(d.g.dirBlkSize), kind, className, w)
	if err != nil {
		return nil, err
	}
	var magic uint32
	if kind == kindDirData {
		magic = binary.BigEndian.Uint32(b.data)
	} else {
		magic = uint32(binary.BigEndian.Uint16(b.data[8:]))
	}
	if !slices.Contains(magics, magic) {
		return nil, w.corrupt("bad magic %#x", magic)
	}
	if d.g.crc {
		var blkno, owner uint64
		var uuid []byte
		if kind == kindDirData {
			blkno, uuid, owner = binary.BigEndian.Uint64(b.data[0x08:]), b.data[0x18:0x28], binary.BigEndian.Uint64(b.data[0x28:])
		} else {
			blkno, uuid, owner = binary.BigEndian.Uint64(b.data[0x10:]), b.data[0x20:0x30], binary.BigEndian.Uint64(b.data[0x30:])
		}
		if blkno != uint64(off)/layout.BBSize || owner != d.ino || string(uuid) != string(d.g.metaUUID[:]) {
			return nil, w.corrupt("block header names block %d, inode %d (or another filesystem)", blkno, owner)
		}
	}
	return b, nil
}

// newBlock maps a fresh directory block at file block fb: dirBlkSize
// contiguous bytes near the directory's inode, zeroed, its header set
// for kind (data magic or da magic).
func (d *dirW) newBlock(fb uint64, kind bufKind, magic uint32) (*txBuf, error) {
	g := d.g
	hint := uint32(d.ino >> (g.agBlkLog + g.inoPBLog))
	n := uint32(d.perDB)
	var agbno, ag uint32
	var err error
	found := false
	for i := uint64(0); i < g.agCount && !found; i++ {
		ag = uint32((uint64(hint) + i) % g.agCount)
		a, aerr := d.t.allocGroup(ag)
		if aerr != nil {
			return nil, aerr
		}
		if a.agf32(agfFreeBlks) < a.minFreelist()+8+n {
			continue
		}
		agbno, _, err = a.alloc(n, n, ownData(d.ino, fb, false))
		if err == nil {
			found = true
		} else if !isNoSpace(err) {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: no AG has %d free contiguous blocks for directory %d", ErrNoSpace, n, d.ino)
	}
	fsb := uint64(ag)<<g.agBlkLog | uint64(agbno)
	d.insertExtent(layout.Extent{StartOff: fb, StartBlock: fsb, Count: n})
	d.grown += int64(n)
	off := g.fsbLinear(fsb) << g.blockLog
	w := d.where(fb)
	w.off = off
	b, err := d.t.newBuf(off, int(g.dirBlkSize), kind, w)
	if err != nil {
		return nil, err
	}
	d.initHeader(b, kind, magic)
	return b, nil
}

// initHeader writes the magic (and the v5 self-description) of a
// directory block.
func (d *dirW) initHeader(b *txBuf, kind bufKind, magic uint32) {
	d.putHeader(b.data, b.off, kind, magic)
}

// putHeader writes the header of a directory block at byte offset off
// into p.
func (d *dirW) putHeader(p []byte, off int64, kind bufKind, magic uint32) {
	if kind == kindDirData {
		binary.BigEndian.PutUint32(p, magic)
		if d.g.crc {
			binary.BigEndian.PutUint64(p[0x08:], uint64(off)/layout.BBSize)
			copy(p[0x18:0x28], d.g.metaUUID[:])
			binary.BigEndian.PutUint64(p[0x28:], d.ino)
		}
		return
	}
	binary.BigEndian.PutUint16(p[8:], uint16(magic))
	if d.g.crc {
		binary.BigEndian.PutUint64(p[0x10:], uint64(off)/layout.BBSize)
		copy(p[0x20:0x30], d.g.metaUUID[:])
		binary.BigEndian.PutUint64(p[0x30:], d.ino)
	}
}

// insertExtent adds e to the extent list, merged with neighbours that
// continue it in the file and on disk.
func (d *dirW) insertExtent(e layout.Extent) {
	g := d.g
	i, _ := slices.BinarySearchFunc(d.exts, e.StartOff, func(x layout.Extent, off uint64) int {
		switch {
		case x.StartOff < off:
			return -1
		case x.StartOff > off:
			return 1
		}
		return 0
	})
	joins := func(a, b layout.Extent) bool {
		return a.StartOff+uint64(a.Count) == b.StartOff && a.StartBlock+uint64(a.Count) == b.StartBlock &&
			!a.Unwritten && !b.Unwritten && uint64(a.Count)+uint64(b.Count) <= maxExtentBlocks &&
			a.StartBlock>>g.agBlkLog == b.StartBlock>>g.agBlkLog
	}
	if i > 0 && joins(d.exts[i-1], e) {
		d.exts[i-1].Count += e.Count
		if i < len(d.exts) && joins(d.exts[i-1], d.exts[i]) {
			d.exts[i-1].Count += d.exts[i].Count
			d.exts = slices.Delete(d.exts, i, i+1)
		}
		return
	}
	if i < len(d.exts) && joins(e, d.exts[i]) {
		d.exts[i].StartOff, d.exts[i].StartBlock = e.StartOff, e.StartBlock
		d.exts[i].Count += e.Count
		return
	}
	d.exts = slices.Insert(d.exts, i, e)
}

// unmap removes directory block fb from the data fork and frees its
// blocks (a directory's blocks are never shared).
func (d *dirW) unmap(fb uint64) error {
	x := findExtent(d.exts, fb)
	if x < 0 {
		return d.where(fb).corrupt("freeing an unmapped directory block")
	}
	e := d.exts[x]
	if fb+d.perDB > e.StartOff+uint64(e.Count) {
		return unsupported("directory %d: block %d is split across extents", d.ino, fb)
	}
	fsb := e.StartBlock + (fb - e.StartOff)
	var parts []layout.Extent
	if fb > e.StartOff {
		parts = append(parts, layout.Extent{StartOff: e.StartOff, StartBlock: e.StartBlock, Count: uint32(fb - e.StartOff)})
	}
	if end := e.StartOff + uint64(e.Count); fb+d.perDB < end {
		parts = append(parts, layout.Extent{StartOff: fb + d.perDB, StartBlock: fsb + d.perDB, Count: uint32(end - fb - d.perDB)})
	}
	d.exts = slices.Replace(d.exts, x, x+1, parts...)
	a, err := d.t.allocGroup(uint32(fsb >> d.g.agBlkLog))
	if err != nil {
		return err
	}
	if err := a.freeUnshared(uint32(fsb&(1<<d.g.agBlkLog-1)), uint32(d.perDB), ownData(d.ino, fb, e.Unwritten)); err != nil {
		return err
	}
	d.grown -= int64(d.perDB)
	return nil
}

// openDirW reads an extent-mapped directory's index for change.
func (t *tx) openDirW(dir uint64) (*dirW, error) {
	in, err := t.f.inode(dir)
	if err != nil {
		return nil, err
	}
	if !in.isDir() {
		return nil, fmt.Errorf("xfs: inode %d: %w", dir, vfs.ErrNotDir)
	}
	if in.core.Format != layout.FormatExtents && in.core.Format != layout.FormatBtree {
		return nil, at("directory", dir).corrupt("data fork in %s format", in.core.Format)
	}
	if in.core.Version >= 3 && in.core.Flags2&layout.Flag2Nrext64 != 0 {
		return nil, unsupported("changing directory %d with large extent counters", dir)
	}
	exts, err := t.f.readForkExtents(in, false)
	if err != nil {
		return nil, err
	}
	bmbt, err := t.bmbtLeaves(in)
	if err != nil {
		return nil, err
	}
	m, err := t.f.openDir(in)
	if err != nil {
		return nil, err
	}
	d := &dirW{t: t, g: &t.f.geo, ino: dir, in: in, exts: slices.Clone(exts), origExts: exts, bmbt: bmbt, perDB: 1 << t.f.geo.dirBlkLog, form: m.form}
	// The data blocks: every mapped directory block below the leaf area.
	nData := 0
	for _, e := range d.exts {
		if e.Unwritten {
			return nil, at("directory", dir).corrupt("extent at file block %d is unwritten", e.StartOff)
		}
		if e.StartOff < d.leafFB() {
			end := min(e.StartOff+uint64(e.Count), d.leafFB())
			nData = max(nData, int((end+d.perDB-1)/d.perDB))
		}
	}
	if nData > d.maxDataBlocks() {
		return nil, at("directory", dir).corrupt("%d data blocks", nData)
	}
	d.bests = make([]int, nData)
	for i := range d.bests {
		d.bests[i] = -1
	}
	switch d.form {
	case formBlock:
		err = d.loadBlock()
	case formLeaf:
		err = d.loadLeaf()
	default:
		err = d.loadNode()
	}
	if err != nil {
		return nil, err
	}
	// Leaves in hash order; overlapping ranges (not written by the
	// kernel) leave the layout to an even spread.
	slices.SortFunc(d.oldLeaves, func(a, b oldLeaf) int {
		if a.first != b.first {
			return cmpLeaf(leafEnt{a.first, 0}, leafEnt{b.first, 0})
		}
		return cmpLeaf(leafEnt{a.last, 0}, leafEnt{b.last, 0})
	})
	for i := 1; i < len(d.oldLeaves); i++ {
		if d.oldLeaves[i].first <= d.oldLeaves[i-1].last {
			d.oldLeaves = nil
			break
		}
	}
	// Leaves hold their entries in hash order; kept sorted from here on.
	if !slices.IsSortedFunc(d.ents, cmpLeaf) {
		sortLeaf(d.ents)
	}
	for db, best := range d.bests {
		if (best >= 0) != d.mapped(uint64(db)*d.perDB) {
			return nil, d.where(uint64(db)*d.perDB).corrupt("data block's best free %d disagrees with its mapping", best)
		}
	}
	return d, nil
}

func (d *dirW) blockMagic() uint32 {
	if d.g.crc {
		return layout.Dir3BlockMagic
	}
	return layout.Dir2BlockMagic
}

func (d *dirW) dataMagic() uint32 {
	if d.g.crc {
		return layout.Dir3DataMagic
	}
	return layout.Dir2DataMagic
}

func (d *dirW) bestFreeOff() int {
	if d.g.crc {
		return 0x30
	}
	return 0x04
}

// loadBlock reads a block-form directory's leaf.
func (d *dirW) loadBlock() error {
	b, err := d.block(0, kindDirData, d.blockMagic())
	if err != nil {
		return err
	}
	leaf, _, err := d.t.f.blockLeaf(b.data, d.where(0))
	if err != nil {
		return err
	}
	d.addLeafEnts(leaf)
	if len(d.bests) != 1 {
		return d.where(0).corrupt("block-form directory with %d data blocks", len(d.bests))
	}
	d.bests[0] = int(binary.BigEndian.Uint16(b.data[d.bestFreeOff()+2:]))
	return nil
}

func (d *dirW) addLeafEnts(leaf []byte) {
	d.ents = slices.Grow(d.ents, len(leaf)/layout.DirLeafEntrySize)
	for i := 0; i+layout.DirLeafEntrySize <= len(leaf); i += layout.DirLeafEntrySize {
		e := leafEnt{binary.BigEndian.Uint32(leaf[i:]), binary.BigEndian.Uint32(leaf[i+4:])}
		if e.addr != layout.DirNullDataptr {
			d.ents = append(d.ents, e)
		}
	}
}

func (d *dirW) leaf1Magic() uint32 {
	if d.g.crc {
		return layout.Dir3Leaf1Magic
	}
	return layout.Dir2Leaf1Magic
}

// loadLeaf reads a leaf-form directory's leaf1 block: entries and bests.
func (d *dirW) loadLeaf() error {
	fb := d.leafFB()
	b, err := d.block(fb, kindDA, d.leaf1Magic())
	if err != nil {
		return err
	}
	p := b.data
	count := int(binary.BigEndian.Uint16(p[d.t.f.daInfoSize():]))
	nb := int(binary.BigEndian.Uint32(p[len(p)-layout.DirLeafTailSize:]))
	hdr := d.t.f.leafHdrSize()
	bestsAt := len(p) - layout.DirLeafTailSize - nb*2
	if nb != len(d.bests) || bestsAt < hdr+count*layout.DirLeafEntrySize {
		return d.where(fb).corrupt("leaf with %d entries and %d bests (%d data blocks)", count, nb, len(d.bests))
	}
	d.addLeafEnts(p[hdr : hdr+count*layout.DirLeafEntrySize])
	for i := range nb {
		if v := binary.BigEndian.Uint16(p[bestsAt+2*i:]); v != layout.DirNullDataOff {
			d.bests[i] = int(v)
		}
	}
	return nil
}

func (d *dirW) freeMagic() uint32 {
	if d.g.crc {
		return layout.Dir3FreeMagic
	}
	return layout.Dir2FreeMagic
}

func (d *dirW) freeHdrSize() int {
	if d.g.crc {
		return layout.Dir3FreeHdrSize
	}
	return layout.DirFreeHdrSize
}

// freeCap is how many bests one free-index block holds.
func (d *dirW) freeCap() int { return (int(d.g.dirBlkSize) - d.freeHdrSize()) / 2 }

// loadNode reads a node-form directory's leaves and free-index blocks.
func (d *dirW) loadNode() error {
	f := d.t.f
	// Every leaf holds at least one entry and a data block at most one
	// per 16 bytes: count before collecting, so a corrupt extent list
	// cannot make the walk longer than the data area allows.
	limit := uint64(len(d.bests))*uint64(d.g.dirBlkSize)/16 + 16
	count := uint64(0)
	for _, e := range d.exts {
		if end := e.StartOff + uint64(e.Count); end > d.leafFB() {
			count += (end - max(e.StartOff, d.leafFB())) / d.perDB
		}
	}
	if count > limit {
		return d.where(d.leafFB()).corrupt("%d index blocks for %d data blocks", count, len(d.bests))
	}
	var leafSpace, freeSpace []uint64
	for _, e := range d.exts {
		for fb := (e.StartOff + d.perDB - 1) &^ (d.perDB - 1); fb < e.StartOff+uint64(e.Count); fb += d.perDB {
			switch {
			case fb >= d.freeFB():
				freeSpace = append(freeSpace, fb)
			case fb >= d.leafFB():
				leafSpace = append(leafSpace, fb)
			}
		}
	}
	if len(leafSpace) == 0 || leafSpace[0] != d.leafFB() {
		return d.where(d.leafFB()).corrupt("node-form directory without its first leaf block")
	}
	hdr := f.leafHdrSize()
	for _, fb := range leafSpace {
		b, err := d.block(fb, kindDA, f.daNodeMagic(), f.leafNMagic())
		if err != nil {
			return err
		}
		if fb != d.leafFB() {
			d.leafBlks = append(d.leafBlks, fb)
		}
		if uint32(binary.BigEndian.Uint16(b.data[8:])) != f.leafNMagic() {
			continue
		}
		count := int(binary.BigEndian.Uint16(b.data[f.daInfoSize():]))
		if hdr+count*layout.DirLeafEntrySize > len(b.data) {
			return d.where(fb).corrupt("leaf with %d entries", count)
		}
		n := len(d.ents)
		d.addLeafEnts(b.data[hdr : hdr+count*layout.DirLeafEntrySize])
		if live := d.ents[n:]; len(live) > 0 {
			d.oldLeaves = append(d.oldLeaves, oldLeaf{fb, live[0].hash, live[len(live)-1].hash})
		}
	}
	fhdr, cap := d.freeHdrSize(), d.freeCap()
	for _, fb := range freeSpace {
		b, err := d.block(fb, kindDirData, d.freeMagic())
		if err != nil {
			return err
		}
		d.freeBlks = append(d.freeBlks, fb)
		h := b.data[fhdr-16:]
		if !d.g.crc {
			h = b.data[4:]
		}
		first, nvalid := int(binary.BigEndian.Uint32(h)), int(binary.BigEndian.Uint32(h[4:]))
		if first%cap != 0 || nvalid > cap || first+nvalid > len(d.bests) || uint64(first/cap) != (fb-d.freeFB())/d.perDB {
			return d.where(fb).corrupt("free-index block for data blocks %d..%d (%d data blocks)", first, first+nvalid, len(d.bests))
		}
		for i := range nvalid {
			if v := binary.BigEndian.Uint16(b.data[fhdr+2*i:]); v != layout.DirNullDataOff {
				d.bests[first+i] = int(v)
			}
		}
	}
	return nil
}

// region is one entry or free region of a data block.
type region struct {
	pos, size int
	free      bool
}

// regions walks the data area [hdr, end) of a data block: where each
// entry and free region starts and how long it is (names are not
// decoded: the walk runs on every change).
func (d *dirW) regions(p []byte, end int, w where) ([]region, error) {
	out := make([]region, 0, 64)
	for pos := d.t.f.dataHdrSize(); pos < end; {
		if pos+layout.DirDataAlign > end {
			return nil, w.corrupt("entry at %d runs past the data area (%d)", pos, end)
		}
		if binary.BigEndian.Uint16(p[pos:]) == layout.DirDataFreeTag {
			n := int(binary.BigEndian.Uint16(p[pos+2:]))
			if n < layout.DirDataAlign || n%layout.DirDataAlign != 0 || pos+n > end || int(binary.BigEndian.Uint16(p[pos+n-2:])) != pos {
				return nil, w.corrupt("free region at %d of %d bytes", pos, n)
			}
			out = append(out, region{pos, n, true})
			pos += n
			continue
		}
		nl := int(p[pos+8])
		n := layout.DirDataEntrySize(nl, d.g.ftype)
		if nl == 0 || pos+n > end || int(binary.BigEndian.Uint16(p[pos+n-2:])) != pos {
			return nil, w.corrupt("entry at %d with a %d-byte name runs past the data area (%d) or carries a wrong tag", pos, nl, end)
		}
		out = append(out, region{pos, n, false})
		pos += n
	}
	return out, nil
}

// putEntry writes a data entry at pos (its size: DirDataEntrySize).
func (d *dirW) putEntry(p []byte, pos int, name string, ino uint64, ftype uint8) int {
	n := layout.DirDataEntrySize(len(name), d.g.ftype)
	clear(p[pos : pos+n])
	binary.BigEndian.PutUint64(p[pos:], ino)
	p[pos+8] = byte(len(name))
	copy(p[pos+9:], name)
	if d.g.ftype {
		p[pos+9+len(name)] = ftype
	}
	binary.BigEndian.PutUint16(p[pos+n-2:], uint16(pos))
	return n
}

// putFree writes a free region of n bytes at pos.
func putFree(p []byte, pos, n int) {
	clear(p[pos : pos+n])
	binary.BigEndian.PutUint16(p[pos:], layout.DirDataFreeTag)
	binary.BigEndian.PutUint16(p[pos+2:], uint16(n))
	binary.BigEndian.PutUint16(p[pos+n-2:], uint16(pos))
}

// setBestFree recomputes a data block's bestfree table from its regions
// (the three longest, longest first, the earlier first among equals) and
// returns the longest free length.
func (d *dirW) setBestFree(p []byte, end int, w where) (int, error) {
	rs, err := d.regions(p, end, w)
	if err != nil {
		return 0, err
	}
	var free []region
	for _, r := range rs {
		if r.free {
			free = append(free, r)
		}
	}
	slices.SortStableFunc(free, func(a, b region) int { return b.size - a.size })
	bf := p[d.bestFreeOff() : d.bestFreeOff()+4*layout.DirDataBestFree]
	clear(bf)
	for i := 0; i < len(free) && i < layout.DirDataBestFree; i++ {
		binary.BigEndian.PutUint16(bf[4*i:], uint16(free[i].pos))
		binary.BigEndian.PutUint16(bf[4*i+2:], uint16(free[i].size))
	}
	if len(free) == 0 {
		return 0, nil
	}
	return free[0].size, nil
}

// layoutEntries writes ".", ".." and ents one after another from the
// data header of p, then a free region up to end; it returns the leaf
// entries addressing them (db: the data block), false if they overflow.
func (d *dirW) layoutEntries(p []byte, db int, end int, self, parent uint64, ents []dirent) ([]leafEnt, bool) {
	f := d.t.f
	pos := f.dataHdrSize()
	need := pos + layout.DirDataEntrySize(1, d.g.ftype) + layout.DirDataEntrySize(2, d.g.ftype)
	for _, e := range ents {
		need += layout.DirDataEntrySize(len(e.name), d.g.ftype)
	}
	if need > end {
		return nil, false
	}
	base := uint32(uint64(db) * uint64(d.g.dirBlkSize) >> layout.DirDataAlignLog)
	var out []leafEnt
	put := func(name string, ino uint64, ftype uint8) {
		out = append(out, leafEnt{f.dirHash([]byte(name)), base + uint32(pos>>layout.DirDataAlignLog)})
		pos += d.putEntry(p, pos, name, ino, ftype)
	}
	put(".", self, layout.FtypeDir)
	put("..", parent, layout.FtypeDir)
	for _, e := range ents {
		put(e.name, e.ino, e.ftype)
	}
	if pos < end {
		putFree(p, pos, end-pos)
	}
	return out, true
}

// blockEntries reads every entry of the block-form directory, "." and
// ".." apart.
func (d *dirW) blockEntries() (self, parent uint64, ents []dirent, err error) {
	b, err := d.block(0, kindDirData, d.blockMagic())
	if err != nil {
		return 0, 0, nil, err
	}
	w := d.where(0)
	_, end, err := d.t.f.blockLeaf(b.data, w)
	if err != nil {
		return 0, 0, nil, err
	}
	self, parent = d.ino, 0
	for pos := d.t.f.dataHdrSize(); pos < end; {
		e, n, free, err := d.t.f.entryAt(b.data, pos, end, w)
		if err != nil {
			return 0, 0, nil, err
		}
		pos += n
		switch {
		case free:
		case e.name == ".":
			self = e.ino
		case e.name == "..":
			parent = e.ino
		default:
			ents = append(ents, e)
		}
	}
	if parent == 0 || self != d.ino {
		return 0, 0, nil, w.corrupt("block-form directory without its \".\" and \"..\" entries")
	}
	return self, parent, ents, nil
}

// writeBlockForm rebuilds the block-form directory from its entries;
// false when they and their leaf no longer fit one block.
func (d *dirW) writeBlockForm(self, parent uint64, ents []dirent) (bool, error) {
	B := int(d.g.dirBlkSize)
	leafAt := B - layout.DirBlockTailSize - (len(ents)+2)*layout.DirLeafEntrySize
	if leafAt < d.t.f.dataHdrSize() {
		return false, nil
	}
	b, err := d.block(0, kindDirData, d.blockMagic())
	if err != nil {
		return false, err
	}
	p := make([]byte, B)
	copy(p, b.data[:d.t.f.dataHdrSize()])
	les, ok := d.layoutEntries(p, 0, leafAt, self, parent, ents)
	if !ok {
		return false, nil
	}
	sortLeaf(les)
	for i, e := range les {
		binary.BigEndian.PutUint32(p[leafAt+8*i:], e.hash)
		binary.BigEndian.PutUint32(p[leafAt+8*i+4:], e.addr)
	}
	binary.BigEndian.PutUint32(p[B-8:], uint32(len(les)))
	binary.BigEndian.PutUint32(p[B-4:], 0)
	best, err := d.setBestFree(p, leafAt, d.where(0))
	if err != nil {
		return false, err
	}
	copy(b.data, p)
	d.t.markDirty(b)
	d.ents, d.bests[0] = les, best
	return true, nil
}

// blockToLeaf turns the block-form directory's block into data block 0
// (its entries compacted) and the directory into leaf form; the leaf1
// block is written by writeIndex.
func (d *dirW) blockToLeaf(self, parent uint64, ents []dirent) error {
	b, err := d.block(0, kindDirData, d.blockMagic())
	if err != nil {
		return err
	}
	p := make([]byte, len(b.data))
	copy(p, b.data[:d.t.f.dataHdrSize()])
	binary.BigEndian.PutUint32(p, d.dataMagic())
	les, ok := d.layoutEntries(p, 0, len(p), self, parent, ents)
	if !ok {
		return d.where(0).corrupt("entries of the block-form directory overflow a data block")
	}
	best, err := d.setBestFree(p, len(p), d.where(0))
	if err != nil {
		return err
	}
	copy(b.data, p)
	d.t.markDirty(b)
	sortLeaf(les)
	d.ents, d.bests[0], d.form = les, best, formLeaf
	return nil
}

// cmpLeaf orders leaf entries by hash, then address.
func cmpLeaf(a, b leafEnt) int {
	if a.hash != b.hash {
		if a.hash < b.hash {
			return -1
		}
		return 1
	}
	return int(int64(a.addr) - int64(b.addr))
}

func sortLeaf(les []leafEnt) { slices.SortFunc(les, cmpLeaf) }

// dataBlock returns data block db's buffer (a data block of a leaf or
// node directory).
func (d *dirW) dataBlock(db int) (*txBuf, error) {
	return d.block(uint64(db)*d.perDB, kindDirData, d.dataMagic())
}

// addData puts the entry into the first data block with room, or a new
// one, and records its leaf entry and the block's best.
func (d *dirW) addData(name string, ino uint64, ftype uint8) error {
	need := layout.DirDataEntrySize(len(name), d.g.ftype)
	db := -1
	for i, best := range d.bests {
		if best >= need {
			db = i
			break
		}
	}
	var b *txBuf
	var err error
	if db < 0 {
		db = len(d.bests)
		for i, best := range d.bests {
			if best < 0 {
				db = i // a hole in the data area
				break
			}
		}
		if db >= d.maxDataBlocks() {
			return fmt.Errorf("%w: directory %d has %d data blocks, the most its data area holds", ErrNoSpace, d.ino, db)
		}
		if b, err = d.newBlock(uint64(db)*d.perDB, kindDirData, d.dataMagic()); err != nil {
			return err
		}
		putFree(b.data, d.t.f.dataHdrSize(), len(b.data)-d.t.f.dataHdrSize())
		if db == len(d.bests) {
			d.bests = append(d.bests, 0)
		}
	} else if b, err = d.dataBlock(db); err != nil {
		return err
	}
	w := d.where(uint64(db) * d.perDB)
	rs, err := d.regions(b.data, len(b.data), w)
	if err != nil {
		return err
	}
	pos := -1
	for _, r := range rs {
		if r.free && r.size >= need {
			pos = r.pos
			if rest := r.size - need; rest > 0 {
				putFree(b.data, pos+need, rest)
			}
			d.putEntry(b.data, pos, name, ino, ftype)
			break
		}
	}
	if pos < 0 {
		return w.corrupt("best free %d names no free region of %d bytes", d.bests[db], need)
	}
	if d.bests[db], err = d.setBestFree(b.data, len(b.data), w); err != nil {
		return err
	}
	d.t.markDirty(b)
	addr := uint32((uint64(db)*uint64(d.g.dirBlkSize) + uint64(pos)) >> layout.DirDataAlignLog)
	e := leafEnt{d.t.f.dirHash([]byte(name)), addr}
	i, _ := slices.BinarySearchFunc(d.ents, e, cmpLeaf)
	d.ents = slices.Insert(d.ents, i, e)
	return nil
}

// find returns the index in d.ents of name's leaf entry and the entry's
// data block and position, or -1.
func (d *dirW) find(name string) (int, dirent, error) {
	h := d.t.f.dirHash([]byte(name))
	first, _ := slices.BinarySearchFunc(d.ents, h, func(e leafEnt, h uint32) int { return cmpLeaf(e, leafEnt{h, 0}) })
	for i := first; i < len(d.ents) && d.ents[i].hash == h; i++ {
		e := d.ents[i]
		de, err := d.entryAt(e.addr)
		if err != nil {
			return 0, dirent{}, err
		}
		if d.t.f.nameEqual([]byte(de.name), name) {
			return i, de, nil
		}
	}
	return -1, dirent{}, nil
}

// entryAt decodes the data entry at a leaf address through the
// transaction's buffers.
func (d *dirW) entryAt(addr uint32) (dirent, error) {
	db, pos, err := d.splitAddr(addr)
	if err != nil {
		return dirent{}, err
	}
	var b *txBuf
	end := int(d.g.dirBlkSize)
	if d.form == formBlock {
		if b, err = d.block(0, kindDirData, d.blockMagic()); err != nil {
			return dirent{}, err
		}
		if _, end, err = d.t.f.blockLeaf(b.data, d.where(0)); err != nil {
			return dirent{}, err
		}
	} else if b, err = d.dataBlock(db); err != nil {
		return dirent{}, err
	}
	w := d.where(uint64(db) * d.perDB)
	e, _, free, err := d.t.f.entryAt(b.data, pos, end, w)
	if err != nil {
		return dirent{}, err
	}
	if free {
		return dirent{}, w.corrupt("leaf address %#x points at free space", addr)
	}
	return e, nil
}

// splitAddr turns a leaf address into data block and byte position.
func (d *dirW) splitAddr(addr uint32) (int, int, error) {
	off := uint64(addr) << layout.DirDataAlignLog
	db, pos := int(off/uint64(d.g.dirBlkSize)), int(off%uint64(d.g.dirBlkSize))
	if db >= len(d.bests) || d.bests[db] < 0 || pos < d.t.f.dataHdrSize() {
		return 0, 0, d.where(uint64(db)*d.perDB).corrupt("leaf address %#x points outside the data blocks", addr)
	}
	return db, pos, nil
}

// finish writes the index, the data fork and the directory's size and
// block count.
func (d *dirW) finish() error {
	if d.form != formBlock {
		if err := d.writeIndex(); err != nil {
			return err
		}
	}
	var delta int64
	if !slices.Equal(d.exts, d.origExts) {
		var err error
		if delta, err = d.t.writeDataFork(d.in, d.exts, d.bmbt); err != nil {
			return err
		}
	}
	b, c, err := d.t.dirInodeBuf(d.ino)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint64(b.data[0x38:], uint64(len(d.bests))*uint64(d.g.dirBlkSize)) // di_size
	binary.BigEndian.PutUint64(b.data[0x40:], uint64(int64(c.NBlocks)+d.grown+delta))      // di_nblocks
	binary.BigEndian.PutUint32(b.data[0x4C:], uint32(len(d.exts)))                         // di_nextents
	d.t.markDirty(b)
	return nil
}

// checkEntryName refuses a name no directory may hold.
func checkEntryName(dir uint64, name string) error {
	if name == "" || len(name) > layout.DirNameMax || name == "." || name == ".." || checkName(name) != nil {
		return fmt.Errorf("xfs: name %s in directory %d: %w", quote(name), dir, vfs.ErrInvalidPath)
	}
	return nil
}

// dirAddEntry adds name → ino (of the given mode) to directory dir in
// whatever form it has, converting it to the next form when it outgrows
// the one it has. A name already present is refused with fs.ErrExist.
// Adding a directory counts its ".." in dir's link count.
func (t *tx) dirAddEntry(dir uint64, name string, ino uint64, mode uint32, now time.Time) error {
	if err := checkEntryName(dir, name); err != nil {
		return err
	}
	if ino == 0 || t.f.geo.inoAddr(ino) < 0 {
		return fmt.Errorf("xfs: adding %s to directory %d: inode %d lies outside the filesystem: %w", quote(name), dir, ino, fs.ErrInvalid)
	}
	_, c, err := t.dirInodeBuf(dir)
	if err != nil {
		return err
	}
	if c.Format == layout.FormatLocal {
		err := t.sfAddEntry(dir, name, ino, mode, now)
		if !errors.Is(err, errSFFull) {
			return err
		}
		if err := t.sfToBlock(dir); err != nil {
			return err
		}
	}
	d, err := t.openDirW(dir)
	if err != nil {
		return err
	}
	if i, _, err := d.find(name); err != nil {
		return err
	} else if i >= 0 {
		return fmt.Errorf("xfs: %s in directory %d: %w", quote(name), dir, fs.ErrExist)
	}
	if d.form == formBlock {
		self, parent, ents, err := d.blockEntries()
		if err != nil {
			return err
		}
		grown := append(slices.Clone(ents), dirent{name: name, ino: ino, ftype: d.ftype(mode)})
		ok, err := d.writeBlockForm(self, parent, grown)
		if err != nil {
			return err
		}
		if !ok {
			if err := d.blockToLeaf(self, parent, ents); err != nil {
				return err
			}
			if err := d.addData(name, ino, d.ftype(mode)); err != nil {
				return err
			}
		}
	} else if err := d.addData(name, ino, d.ftype(mode)); err != nil {
		return err
	}
	if err := d.finish(); err != nil {
		return err
	}
	return t.dirTouch(dir, linkDelta(0, mode), now)
}

// ftype is the entry file type recorded for mode (0 without ftype).
func (d *dirW) ftype(mode uint32) uint8 {
	if !d.g.ftype {
		return 0
	}
	return ftypeOf(mode)
}

// linkDelta is the change in a directory's link count when an entry of
// mode old (0: none) is replaced by one of mode new (0: none): a
// subdirectory's ".." counts.
func linkDelta(old, new uint32) int {
	n := 0
	if old&vfs.UnixTypeMask == vfs.UnixDir {
		n--
	}
	if new&vfs.UnixTypeMask == vfs.UnixDir {
		n++
	}
	return n
}

// dirTouch adjusts directory dir's link count by delta and sets its
// mtime, ctime and change count.
func (t *tx) dirTouch(dir uint64, delta int, now time.Time) error {
	b, c, err := t.dirInodeBuf(dir)
	if err != nil {
		return err
	}
	if delta != 0 {
		n := int64(c.Nlink) + int64(delta)
		if n < 2 {
			return at("directory", dir).corrupt("link count %d would drop below 2", c.Nlink)
		}
		binary.BigEndian.PutUint32(b.data[0x10:], uint32(n))
	}
	t.touchInode(b, c, now)
	return nil
}

// sfToBlock converts short-form directory dir into a block-form
// directory of one new block holding the same entries.
func (t *tx) sfToBlock(dir uint64) error {
	g := &t.f.geo
	b, c, err := t.dirInodeBuf(dir)
	if err != nil {
		return err
	}
	core := c.CoreSize()
	area := int(g.inodeSize) - core
	if c.ForkOff != 0 {
		area = int(c.ForkOff) * 8
	}
	fork := b.data[core : core+area]
	i8, sfe, err := t.sfEntries(dir, fork, int(c.Size))
	if err != nil {
		return err
	}
	parent := uint64(binary.BigEndian.Uint32(fork[2:]))
	if i8 {
		parent = binary.BigEndian.Uint64(fork[2:])
	}
	ents := make([]dirent, len(sfe))
	for i, e := range sfe {
		ents[i] = dirent{name: e.name, ino: e.ino, ftype: e.ftype}
	}
	d := &dirW{t: t, g: g, ino: dir, perDB: 1 << g.dirBlkLog, form: formBlock, bests: []int{0}}
	nb, err := d.newBlock(0, kindDirData, d.blockMagic())
	if err != nil {
		return err
	}
	if ok, err := d.writeBlockForm(dir, parent, ents); err != nil {
		return err
	} else if !ok {
		return unsupported("directory %d: its short-form entries do not fit one directory block", dir)
	}
	_ = nb
	clear(fork)
	layout.EncodeExtent(fork, d.exts[0])
	b.data[5] = byte(layout.FormatExtents)
	binary.BigEndian.PutUint64(b.data[0x38:], uint64(g.dirBlkSize))              // di_size
	binary.BigEndian.PutUint64(b.data[0x40:], uint64(c.NBlocks)+uint64(d.perDB)) // di_nblocks
	binary.BigEndian.PutUint32(b.data[0x4C:], 1)                                 // di_nextents
	t.markDirty(b)
	return nil
}
