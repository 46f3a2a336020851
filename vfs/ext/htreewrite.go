package ext

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"sort"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/dirblock"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Writing hash-tree (dir_index) directories, as the kernel does: a name
// goes into the leaf its hash leads to; a full leaf is split by hash
// (the upper half of the sorted entries moves to a new block, whose
// starting hash enters the index); a full index node is split in two, a
// full root pushes its entries down into a new node (one more level), and
// past the levels the filesystem allows (2, 3 with large_dir) the insert
// fails with ErrNoSpace. The index never goes out of step with the leaves.

// dxFrame is one index block on the path from the root to a leaf.
type dxFrame struct {
	lblk  uint64
	b     []byte // the transaction's buffer
	off   int    // offset of the count/limit pair
	count int
	limit int
	at    int // entry followed
}

// entry returns entry i of the frame (entry 0's hash reads 0).
func (fr *dxFrame) entry(i int) layout.DxEntry {
	e, _ := layout.DecodeDxEntry(fr.b, fr.off, i)
	return *e
}

// setCount writes the frame's count back to its block.
func (fr *dxFrame) setCount(n int) {
	fr.count = n
	layout.PutDxCountLimit(fr.b, fr.off, layout.DxCountLimit{Limit: uint16(fr.limit), Count: uint16(n)})
}

// insert adds (hash, blk) right after the entry the path followed.
func (fr *dxFrame) insert(hash uint32, blk uint64) {
	at := fr.off + (fr.at+1)*layout.DxEntrySize
	end := fr.off + fr.count*layout.DxEntrySize
	copy(fr.b[at+layout.DxEntrySize:end+layout.DxEntrySize], fr.b[at:end])
	layout.PutDxEntry(fr.b, fr.off, fr.at+1, layout.DxEntry{Hash: hash, Block: uint32(blk)})
	fr.setCount(fr.count + 1)
}

// dxPath is the result of a probe: the frames from the root down, and the
// leaf they lead to.
type dxPath struct {
	info   layout.DxRootInfo
	hash   uint32
	frames []dxFrame
	leaf   uint64
}

func (w *dirw) dxCorrupt(lblk uint64, format string, args ...any) error {
	return corrupt("htree node", lblk, w.ino, -1, format, args...)
}

// dxLimit is how many entries fit an index block whose entries start at off.
func (w *dirw) dxLimit(off int) int {
	room := w.lf.BlockSize - off
	if w.csum {
		room -= layout.DxTailSize
	}
	return room / layout.DxEntrySize
}

// isDxNode reports whether b looks like an index node: one empty entry
// covering the whole block.
func isDxNode(b []byte, bs int) bool {
	d, _ := layout.DecodeDirent(b)
	return d.Inode == 0 && d.RecLength(bs) == bs
}

// sealDx recomputes the checksum of index block b (entries at off).
func (w *dirw) sealDx(b []byte, off int) {
	if !w.csum {
		return
	}
	cl, _ := layout.DecodeDxCountLimit(b, off)
	tail := off + int(cl.Limit)*layout.DxEntrySize
	layout.PutDxTail(b, tail, layout.DxTail{Checksum: w.dxChecksum(b, off, int(cl.Count), tail)})
}

func (w *dirw) dxChecksum(b []byte, off, count, tail int) uint32 {
	var zero [4]byte
	c := crc32c(w.seed, b[:off+count*layout.DxEntrySize])
	c = crc32c(c, b[tail:tail+4])
	return crc32c(c, zero[:])
}

// dxFrameAt reads the count/limit of index block b and checks them (and
// the dx tail) before the path relies on them.
func (w *dirw) dxFrameAt(b []byte, lblk uint64, off int, h uint32) (dxFrame, error) {
	cl, _ := layout.DecodeDxCountLimit(b, off)
	fr := dxFrame{lblk: lblk, b: b, off: off, count: int(cl.Count), limit: int(cl.Limit)}
	if want := w.dxLimit(off); fr.limit != want || fr.count == 0 || fr.count > fr.limit {
		return fr, w.dxCorrupt(lblk, "count %d, limit %d (want limit %d)", fr.count, fr.limit, want)
	}
	if w.csum {
		tail := off + fr.limit*layout.DxEntrySize
		if binary.LittleEndian.Uint32(b[tail+4:]) != w.dxChecksum(b, off, fr.count, tail) {
			return fr, &CorruptError{What: "htree node", Num: lblk, Ino: w.ino, Offset: -1, Detail: "dx tail checksum does not match", Err: ErrChecksum}
		}
	}
	fr.at = sort.Search(fr.count-1, func(i int) bool { return fr.entry(i+1).Hash > h })
	return fr, nil
}

// dxRoot reads and checks block 0 of an indexed directory (read only).
func (w *dirw) dxRoot() ([]byte, layout.DxRootInfo, error) {
	b, err := w.st.peek(0)
	if err != nil {
		return nil, layout.DxRootInfo{}, err
	}
	info, _ := layout.DecodeDxRootInfo(b)
	switch {
	case info.InfoLength != layout.DxRootInfoSize:
		return nil, *info, w.dxCorrupt(0, "root info length %d", info.InfoLength)
	case info.HashVersion == layout.HashSipHash:
		return nil, *info, unsupported("SipHash directory index in inode %d (encrypted casefold)", w.ino)
	case info.HashVersion > layout.HashTea:
		return nil, *info, w.dxCorrupt(0, "hash version %d", info.HashVersion)
	case int(info.IndirectLevels) >= w.maxLevels:
		return nil, *info, w.dxCorrupt(0, "%d index levels, at most %d allowed", info.IndirectLevels+1, w.maxLevels)
	case info.UnusedFlags&1 != 0:
		return nil, *info, unsupported("index flags %#x in inode %d", info.UnusedFlags, w.ino)
	}
	return b, *info, nil
}

// dxProbe hashes name and walks from the root to its leaf.
func (w *dirw) dxProbe(name []byte) (*dxPath, error) {
	root, info, err := w.dxRoot()
	if err != nil {
		return nil, err
	}
	h, err := w.hashName(name, info.HashVersion)
	if err != nil {
		return nil, w.dxCorrupt(0, "hashing a name: %v", err)
	}
	p := &dxPath{info: info, hash: h}
	fr, err := w.dxFrameAt(root, 0, layout.DxRootEntries, h)
	if err != nil {
		return nil, err
	}
	p.frames = append(p.frames, fr)
	return p, w.dxDescend(p, false)
}

// dxDescend follows the chosen entry of the last frame down to a leaf;
// with first, it takes the first entry of each lower level instead of
// searching by hash.
func (w *dirw) dxDescend(p *dxPath, first bool) error {
	for {
		fr := &p.frames[len(p.frames)-1]
		blk := uint64(fr.entry(fr.at).Block)
		if blk == 0 || blk >= w.st.blocks() {
			return w.dxCorrupt(fr.lblk, "entry %d points to block %d of a %d-block directory", fr.at, blk, w.st.blocks())
		}
		if len(p.frames) > int(p.info.IndirectLevels) {
			p.leaf = blk
			return nil
		}
		b, err := w.st.peek(blk)
		if err != nil {
			return err
		}
		if !isDxNode(b, w.lf.BlockSize) {
			return w.dxCorrupt(blk, "index points to a block that is not an index node")
		}
		h := p.hash
		if first {
			h = 0
		}
		nf, err := w.dxFrameAt(b, blk, layout.DxNodeEntries, h)
		if err != nil {
			return err
		}
		p.frames = append(p.frames, nf)
	}
}

// dxNext moves p to the next leaf when its starting hash continues p.hash
// (a run of equal hashes spilled over a split); it reports false
// otherwise.
func (w *dirw) dxNext(p *dxPath) (bool, error) {
	for len(p.frames) > 0 {
		fr := &p.frames[len(p.frames)-1]
		if fr.at+1 < fr.count {
			fr.at++
			if fr.entry(fr.at).Hash&^1 != p.hash {
				return false, nil
			}
			return true, w.dxDescend(p, true)
		}
		p.frames = p.frames[:len(p.frames)-1]
	}
	return false, nil
}

// dxFind looks for the entry match accepts in the leaves name's hash
// leads to (read only); it returns the leaf holding it, or not found.
func (w *dirw) dxFind(name []byte, match func([]byte) bool) (uint64, bool, error) {
	p, err := w.dxProbe(name)
	if err != nil {
		return 0, false, err
	}
	for visited := uint64(0); visited < w.st.blocks(); visited++ {
		b, err := w.leafView(p.leaf)
		if err != nil {
			return 0, false, err
		}
		_, found, err := dirblock.Find(b, w.lf, match)
		if err != nil {
			return 0, false, w.leafCorrupt(p.leaf, err)
		}
		if found {
			return p.leaf, true, nil
		}
		more, err := w.dxNext(p)
		if err != nil || !more {
			return 0, false, err
		}
	}
	return 0, false, w.dxCorrupt(0, "collision chain longer than the directory")
}

// dxRemove removes the entry match accepts from an indexed directory.
// Leaves are never freed or merged (the kernel does not either).
func (w *dirw) dxRemove(name []byte, match func([]byte) bool) (uint32, error) {
	lblk, found, err := w.dxFind(name, match)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fs.ErrNotExist
	}
	return w.removeIn(lblk, match)
}

// dxAdd adds an entry to an indexed directory. Each round probes afresh;
// a round that finds no room makes some (splits an index node, adds a
// level, or splits the leaf), so a few rounds always suffice.
func (w *dirw) dxAdd(name []byte, match func([]byte) bool, ino uint32, ftype uint8) error {
	if _, found, err := w.dxFind(name, match); err != nil || found {
		if found {
			return fs.ErrExist
		}
		return err
	}
	for round := 0; round < 4*layout.DxMaxLevelsLarge+4; round++ {
		p, err := w.dxProbe(name)
		if err != nil {
			return err
		}
		b, err := w.leaf(p.leaf)
		if err != nil {
			return err
		}
		ok, err := dirblock.Insert(b, w.lf, name, ino, ftype)
		if err != nil {
			return w.leafCorrupt(p.leaf, err)
		}
		if ok {
			w.sealLeaf(b)
			return nil
		}
		if err := w.dxMakeRoom(p, b); err != nil {
			return err
		}
	}
	return fmt.Errorf("ext: directory inode %d: no room for the entry after splitting: %w", w.ino, dirblock.ErrNoRoom)
}

// writable swaps the read-only view of a frame's block for the
// transaction's buffer, before the frame is changed.
func (w *dirw) writable(fr *dxFrame) error {
	b, err := w.st.block(fr.lblk)
	if err != nil {
		return err
	}
	fr.b = b
	return nil
}

// dxMakeRoom splits the full leaf p leads to, after making room for one
// more entry in the index node above it if needed.
func (w *dirw) dxMakeRoom(p *dxPath, leaf []byte) error {
	bottom := len(p.frames) - 1
	if p.frames[bottom].count < p.frames[bottom].limit {
		return w.dxSplitLeaf(p, leaf)
	}
	i := bottom
	for i >= 0 && p.frames[i].count == p.frames[i].limit {
		i--
	}
	if i >= 0 {
		return w.dxSplitNode(&p.frames[i], &p.frames[i+1])
	}
	if len(p.frames) >= w.maxLevels {
		more := ""
		if w.maxLevels < layout.DxMaxLevelsLarge {
			more = " (large_dir would allow 3)"
		}
		return fmt.Errorf("ext: directory inode %d: hash index full at %d levels%s: %w", w.ino, len(p.frames), more, vfs.ErrNoSpace)
	}
	return w.dxAddLevel(p)
}

// dxSplitLeaf moves the upper half (by hash) of a full leaf into a new
// block and indexes it from the bottom frame.
func (w *dirw) dxSplitLeaf(p *dxPath, leaf []byte) error {
	es, err := dirblock.Entries(leaf, w.lf)
	if err != nil {
		return w.leafCorrupt(p.leaf, err)
	}
	if len(es) < 2 {
		return w.leafCorrupt(p.leaf, fmt.Errorf("a full leaf with %d entries", len(es)))
	}
	for i := range es {
		if es[i].Hash, err = w.hashName(es[i].Name, p.info.HashVersion); err != nil {
			return w.dxCorrupt(p.leaf, "hashing a name: %v", err)
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].Hash < es[j].Hash })
	split := splitPoint(es, len(w.lf.Usable(leaf)))
	hash2 := es[split].Hash
	if es[split-1].Hash == hash2 {
		hash2 |= 1 // the run of equal hashes continues in the new block
	}
	lblk, nb, err := w.newLeaf()
	if err != nil {
		return err
	}
	if err := dirblock.Fill(nb, w.lf, es[split:]); err != nil {
		return err
	}
	if err := dirblock.Fill(leaf, w.lf, es[:split]); err != nil {
		return err
	}
	w.sealLeaf(nb)
	w.sealLeaf(leaf)
	fr := &p.frames[len(p.frames)-1]
	if err := w.writable(fr); err != nil {
		return err
	}
	fr.insert(hash2, lblk)
	w.sealDx(fr.b, fr.off)
	return nil
}

// splitPoint returns the index of the first entry that moves: from the
// end, entries move while they fill at most half the block (counting half
// of the entry that crosses the middle), as the kernel splits; at least
// one entry stays and one moves.
func splitPoint(es []dirblock.Entry, usable int) int {
	size, move := 0, 0
	for i := len(es) - 1; i > 0; i-- {
		s := layout.DirentSize(len(es[i].Name))
		if size+s/2 > usable/2 {
			break
		}
		size += s
		move++
	}
	return len(es) - max(move, 1)
}

// dxNewNode appends an empty index node and returns its block and buffer.
func (w *dirw) dxNewNode() (uint64, []byte, error) {
	lblk, b, err := w.st.grow()
	if err != nil {
		return 0, nil, err
	}
	if len(b) != w.lf.BlockSize {
		return 0, nil, fmt.Errorf("ext: directory inode %d: new block of %d bytes, want %d", w.ino, len(b), w.lf.BlockSize)
	}
	clear(b)
	layout.PutDirent(b, 0, w.lf.BlockSize, nil, 0, w.lf.Filetype)
	return lblk, b, nil
}

// dxSplitNode moves the upper half of full index node c into a new node,
// indexed from its parent pf (which has room).
func (w *dirw) dxSplitNode(pf, c *dxFrame) error {
	if err := w.writable(pf); err != nil {
		return err
	}
	if err := w.writable(c); err != nil {
		return err
	}
	n1 := c.count / 2
	hash2 := c.entry(n1).Hash
	lblk, nb, err := w.dxNewNode()
	if err != nil {
		return err
	}
	off := layout.DxNodeEntries
	copy(nb[off:], c.b[c.off+n1*layout.DxEntrySize:c.off+c.count*layout.DxEntrySize])
	layout.PutDxCountLimit(nb, off, layout.DxCountLimit{Limit: uint16(w.dxLimit(off)), Count: uint16(c.count - n1)})
	c.setCount(n1)
	pf.insert(hash2, lblk)
	w.sealDx(nb, off)
	w.sealDx(c.b, c.off)
	w.sealDx(pf.b, pf.off)
	return nil
}

// dxAddLevel moves every entry of the full root into a new node that
// becomes the root's only child: one more index level.
func (w *dirw) dxAddLevel(p *dxPath) error {
	root := &p.frames[0]
	if err := w.writable(root); err != nil {
		return err
	}
	lblk, nb, err := w.dxNewNode()
	if err != nil {
		return err
	}
	off := layout.DxNodeEntries
	copy(nb[off:], root.b[root.off:root.off+root.count*layout.DxEntrySize])
	layout.PutDxCountLimit(nb, off, layout.DxCountLimit{Limit: uint16(w.dxLimit(off)), Count: uint16(root.count)})
	root.setCount(1)
	layout.PutDxEntry(root.b, root.off, 0, layout.DxEntry{Block: uint32(lblk)})
	info := p.info
	info.IndirectLevels++
	layout.PutDxRootInfo(root.b, info)
	w.sealDx(nb, off)
	w.sealDx(root.b, root.off)
	return nil
}

// initDxRoot makes b block 0 of an indexed directory: "." and ".." (which
// covers the rest of the block, as a dx root's does), the root info, and
// one index entry pointing to leaf block leaf.
func (w *dirw) initDxRoot(b []byte, self, parent uint32, version uint8, leaf uint64) {
	clear(b)
	dot := layout.DirentSize(1)
	layout.PutDirent(b, self, dot, []byte("."), layout.FTDir, w.lf.Filetype)
	layout.PutDirent(b[dot:], parent, w.lf.BlockSize-dot, []byte(".."), layout.FTDir, w.lf.Filetype)
	layout.PutDxRootInfo(b, layout.DxRootInfo{HashVersion: version, InfoLength: layout.DxRootInfoSize})
	off := layout.DxRootEntries
	layout.PutDxCountLimit(b, off, layout.DxCountLimit{Limit: uint16(w.dxLimit(off)), Count: 1})
	layout.PutDxEntry(b, off, 0, layout.DxEntry{Block: uint32(leaf)})
	w.sealDx(b, off)
}

// toIndexed turns the full single block of a linear directory into an
// index root: the entries after "." and ".." move to a new leaf, block
// 1, and the root indexes it. A block that does not start with "." and
// ".." is left alone (converted false; the directory stays linear).
func (w *dirw) toIndexed() (bool, error) {
	b, err := w.leaf(0)
	if err != nil {
		return false, err
	}
	es, err := dirblock.Entries(b, w.lf)
	if err != nil {
		return false, w.leafCorrupt(0, err)
	}
	if len(es) < 2 || string(es[0].Name) != "." || string(es[1].Name) != ".." {
		return false, nil
	}
	lblk, nb, err := w.newLeaf()
	if err != nil {
		return false, err
	}
	if lblk != 1 {
		return false, fmt.Errorf("ext: directory inode %d: new leaf at block %d, want 1", w.ino, lblk)
	}
	if err := dirblock.Fill(nb, w.lf, es[2:]); err != nil {
		return false, err
	}
	w.sealLeaf(nb)
	version := w.makeIndexed()
	w.indexed = true
	w.initDxRoot(b, es[0].Ino, es[1].Ino, version, 1)
	return true, nil
}
