package ext

import (
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// xext is one extent of a file map being changed.
type xext struct {
	lblk, pblk, n uint64
	uninit        bool
}

func (e xext) end() uint64 { return e.lblk + e.n }

// fileMap is the whole extent list of one inode, loaded for a change and
// written back at commit as a fresh tree (the old tree blocks are freed,
// new ones allocated: nothing on disk is overwritten before the inode
// points at the new tree).
type fileMap struct {
	in    *inode
	exts  []xext
	tree  []uint64 // blocks of the on-disk nodes below the root
	dirty bool
}

// Limits on what a file map loads from a (possibly hostile) tree.
const (
	maxMapNodes   = 1 << 20
	maxMapExtents = 1 << 22
)

// maxExtentLen is the longest extent of each kind.
func maxExtentLen(uninit bool) uint64 {
	if uninit {
		return layout.ExtentInitMaxLen - 1
	}
	return layout.ExtentInitMaxLen
}

// fileMapOf loads in's extent tree (validated node by node as the read
// side does) into a file map.
func (t *tx) fileMapOf(in *inode) (*fileMap, error) {
	if fm, ok := t.files[in.num]; ok {
		fm.in = in
		return fm, nil
	}
	m, err := t.f.newExtentMapper(in)
	if err != nil {
		return nil, err
	}
	fm := &fileMap{in: in}
	if err := t.loadNode(fm, m, m.root, 0, -1); err != nil {
		return nil, err
	}
	t.files[in.num] = fm
	return fm, nil
}

// loadNode appends the extents under node b (block blk, 0 for the root).
func (t *tx) loadNode(fm *fileMap, m *extentMapper, b []byte, blk uint64, depth int) error {
	h, err := m.checkNode(b, blk, depth)
	if err != nil {
		return err
	}
	if h.Depth == 0 {
		for i := 0; i < int(h.Entries); i++ {
			e, _ := layout.DecodeExtent(b, i)
			n, uninit := e.Length()
			if k := len(fm.exts); k > 0 && fm.exts[k-1].end() > uint64(e.Block) {
				return m.nodeErr(blk, "extent %d overlaps the one before it", i)
			}
			if len(fm.exts) >= maxMapExtents {
				return m.nodeErr(blk, "more than %d extents", maxMapExtents)
			}
			fm.exts = append(fm.exts, xext{uint64(e.Block), e.Start(), uint64(n), uninit})
		}
		return nil
	}
	for i := 0; i < int(h.Entries); i++ {
		e, _ := layout.DecodeExtentIndex(b, i)
		if len(fm.tree) >= maxMapNodes {
			return m.nodeErr(blk, "more than %d tree nodes", maxMapNodes)
		}
		child, err := t.f.block(e.Leaf(), "extent node", fm.in.num)
		if err != nil {
			return err
		}
		fm.tree = append(fm.tree, e.Leaf())
		if err := t.loadNode(fm, m, child, e.Leaf(), int(h.Depth)-1); err != nil {
			return err
		}
	}
	return nil
}

// find returns the index of the extent holding l, or -1 and the index
// where one starting at l would be inserted.
func (fm *fileMap) find(l uint64) (int, int) {
	i := sort.Search(len(fm.exts), func(i int) bool { return fm.exts[i].lblk > l })
	if i > 0 && fm.exts[i-1].end() > l {
		return i - 1, i - 1
	}
	return -1, i
}

// extentMapBlock is mapBlock for an extent-mapped inode.
func (t *tx) extentMapBlock(in *inode, l uint64, alloc bool) (uint64, bool, error) {
	if l >= maxLblk {
		return 0, false, corrupt("inode", uint64(in.num), 0, -1, "logical block %d is beyond what extents address", l)
	}
	fm, err := t.fileMapOf(in)
	if err != nil {
		return 0, false, err
	}
	i, at := fm.find(l)
	if i >= 0 {
		e := fm.exts[i]
		if err := t.checkTarget(mapKind(in), in.num, int64(l), e.pblk+l-e.lblk); err != nil {
			return 0, false, err
		}
		if !e.uninit {
			return e.pblk + l - e.lblk, false, nil
		}
	}
	if !alloc {
		return 0, false, nil
	}
	if i >= 0 {
		return fm.initialise(i, l), true, nil
	}
	if p, ok, err := t.clusterMate(fm, at, l); err != nil || ok {
		if ok {
			fm.insert(at, xext{lblk: l, pblk: p, n: 1}) // in a cluster the file owns already
		}
		return p, ok, err
	}
	r := t.f.ratio()
	if err := t.checkBlocksRoom(in, r); err != nil {
		return 0, false, err
	}
	c, err := t.allocBlock(t.extentGoal(fm, at, l))
	if err != nil {
		return 0, false, err
	}
	p := c + l&(r-1) // l's offset in its logical cluster
	fm.insert(at, xext{lblk: l, pblk: p, n: 1})
	t.addBlocks(in, int64(r))
	return p, true, nil
}

// extentGoal is where block l of the file should go: right after its
// predecessor's physical block, else near the inode.
func (t *tx) extentGoal(fm *fileMap, at int, l uint64) uint64 {
	if at > 0 {
		e := fm.exts[at-1]
		return e.pblk + (l - e.lblk)
	}
	return t.inodeGoal(fm.in)
}

// inodeGoal is the first block of the inode's group.
func (t *tx) inodeGoal(in *inode) uint64 {
	return t.f.groupFirst((in.num - 1) / t.f.geo.ipg)
}

// insert adds e at index at, merging it with its neighbours when they
// continue each other logically and physically.
func (fm *fileMap) insert(at int, e xext) {
	fm.dirty = true
	if at > 0 && mergeable(fm.exts[at-1], e) {
		fm.exts[at-1].n += e.n
		if at < len(fm.exts) && mergeable(fm.exts[at-1], fm.exts[at]) {
			fm.exts[at-1].n += fm.exts[at].n
			fm.exts = append(fm.exts[:at], fm.exts[at+1:]...)
		}
		return
	}
	if at < len(fm.exts) && mergeable(e, fm.exts[at]) {
		fm.exts[at].lblk, fm.exts[at].pblk = e.lblk, e.pblk
		fm.exts[at].n += e.n
		return
	}
	fm.exts = append(fm.exts, xext{})
	copy(fm.exts[at+1:], fm.exts[at:])
	fm.exts[at] = e
}

func mergeable(a, b xext) bool {
	return a.uninit == b.uninit && a.end() == b.lblk && a.pblk+a.n == b.pblk && a.n+b.n <= maxExtentLen(a.uninit)
}

// initialise turns block l of uninitialised extent i into an initialised
// one and returns its physical block. As the kernel does, the extent is
// split into at most an unwritten head, the written block and an
// unwritten tail, and the written block joins a neighbouring written
// extent that continues it logically and physically (up to the longest
// initialised extent), so writing a preallocated range block by block
// leaves one written extent, not one per block.
func (fm *fileMap) initialise(i int, l uint64) uint64 {
	e := fm.exts[i]
	d := l - e.lblk
	w := xext{l, e.pblk + d, 1, false}
	fm.dirty = true
	if d == 0 && i > 0 && mergeable(fm.exts[i-1], w) {
		// The common case, a preallocated range written in order: the
		// written extent before grows, this one shrinks, in place.
		fm.exts[i-1].n++
		if e.n == 1 {
			fm.exts = append(fm.exts[:i], fm.exts[i+1:]...)
			fm.mergeNext(i - 1)
		} else {
			fm.exts[i] = xext{e.lblk + 1, e.pblk + 1, e.n - 1, true}
		}
		return w.pblk
	}
	var parts []xext
	if d > 0 {
		parts = append(parts, xext{e.lblk, e.pblk, d, true})
	}
	parts = append(parts, w)
	if rest := e.n - d - 1; rest > 0 {
		parts = append(parts, xext{l + 1, w.pblk + 1, rest, true})
	}
	fm.exts = append(fm.exts[:i], append(parts, fm.exts[i+1:]...)...)
	j := i
	if d > 0 {
		j++
	}
	fm.mergeNext(j)
	if j > 0 {
		fm.mergeNext(j - 1)
	}
	return w.pblk
}

// coalesce merges every run of mergeable neighbours in exts (in place): a
// map rewritten at commit is stored with as few extents as the kernel
// would leave, even when it was loaded fragmented (for instance one
// extent per block, as earlier versions of this engine wrote
// preallocated ranges).
func coalesce(exts []xext) []xext {
	out := exts[:0]
	for _, e := range exts {
		if k := len(out); k > 0 && mergeable(out[k-1], e) {
			out[k-1].n += e.n
			continue
		}
		out = append(out, e)
	}
	return out
}

// mergeNext joins extent j with extent j+1 when they are mergeable.
func (fm *fileMap) mergeNext(j int) {
	if j+1 < len(fm.exts) && mergeable(fm.exts[j], fm.exts[j+1]) {
		fm.exts[j].n += fm.exts[j+1].n
		fm.exts = append(fm.exts[:j+1], fm.exts[j+2:]...)
	}
}

// truncateExtents drops every block from logical block keep on.
func (t *tx) truncateExtents(in *inode, keep uint64) error {
	fm, err := t.fileMapOf(in)
	if err != nil {
		return err
	}
	out := fm.exts[:0]
	var dropped []blockRun
	for _, e := range fm.exts {
		switch {
		case e.end() <= keep:
			out = append(out, e)
			continue
		case e.lblk < keep:
			cut := keep - e.lblk
			dropped = append(dropped, blockRun{e.pblk + cut, e.n - cut})
			e.n = cut
			out = append(out, e)
		default:
			dropped = append(dropped, blockRun{e.pblk, e.n})
		}
		fm.dirty = true
	}
	fm.exts = out
	return t.releaseRuns(in, out, dropped)
}

// freeFileBlocks frees blocks of in (widened to whole clusters with
// bigalloc) and lowers its i_blocks by what is freed.
func (t *tx) freeFileBlocks(in *inode, start, n uint64) error {
	if err := t.freeBlocks(in.num, start, n); err != nil {
		return err
	}
	_, n = t.f.clusterSpan(start, n)
	t.addBlocks(in, -int64(n))
	return nil
}

// flushFiles writes every changed file map back as an extent tree
// (commit, step 1: it allocates and frees tree blocks).
func (t *tx) flushFiles() error {
	for _, fm := range t.files {
		if !fm.dirty {
			continue
		}
		if err := t.writeTree(fm); err != nil {
			return err
		}
		fm.dirty = false
	}
	return nil
}

// rootMax is how many entries the root in i_block holds.
const rootMax = (layout.InodeBlockSize - layout.ExtentHeaderSize) / layout.ExtentEntrySize

// writeTree frees fm's old tree nodes and builds the smallest tree that
// holds its extents: in i_block when they fit, else full leaves under as
// many index levels as needed.
func (t *tx) writeTree(fm *fileMap) error {
	in := fm.in
	for _, b := range fm.tree {
		if err := t.freeFileBlocks(in, b, 1); err != nil {
			return err
		}
	}
	fm.tree = nil
	fm.exts = coalesce(fm.exts)
	entries := make([]treeEntry, len(fm.exts))
	for i, e := range fm.exts {
		entries[i] = treeEntry{lblk: e.lblk, ext: e}
	}
	depth := 0
	for len(entries) > rootMax {
		if depth == layout.ExtentMaxDepth {
			return corrupt("inode", uint64(in.num), 0, -1, "%d extents need a tree deeper than %d", len(fm.exts), layout.ExtentMaxDepth)
		}
		next, err := t.writeLevel(fm, entries, depth)
		if err != nil {
			return err
		}
		entries, depth = next, depth+1
	}
	root := make([]byte, layout.InodeBlockSize)
	putNode(root, entries, depth, rootMax)
	setIblock(in, root)
	t.dirtyInode(in)
	return nil
}

// treeEntry is one entry of a tree level being built: an extent (depth 0)
// or a child node.
type treeEntry struct {
	lblk  uint64
	ext   xext
	child uint64
}

// writeLevel packs entries into full nodes of the given depth, writes
// them to new blocks and returns the index entries pointing at them.
func (t *tx) writeLevel(fm *fileMap, entries []treeEntry, depth int) ([]treeEntry, error) {
	max := layout.ExtentNodeMax(int(t.f.geo.blockSize))
	var up []treeEntry
	for len(entries) > 0 {
		k := min(len(entries), max)
		goal := t.inodeGoal(fm.in)
		if len(fm.exts) > 0 {
			goal = fm.exts[0].pblk
		}
		blk, err := t.allocBlock(goal)
		if err != nil {
			return nil, err
		}
		t.addBlocks(fm.in, int64(t.f.ratio())) // a node takes a whole cluster
		fm.tree = append(fm.tree, blk)
		b := t.newBlock(blk, kindExtent)
		putNode(b, entries[:k], depth, max)
		seed := fm.in.seed
		if err := t.onSeal(blk, func(b []byte) { t.sealExtentNode(b, seed, max) }); err != nil {
			return nil, err
		}
		up = append(up, treeEntry{lblk: entries[0].lblk, child: blk})
		entries = entries[k:]
	}
	return up, nil
}

// putNode writes a node header and entries into b.
func putNode(b []byte, entries []treeEntry, depth, max int) {
	layout.PutExtentHeader(b, layout.ExtentHeader{Magic: layout.ExtentMagic,
		Entries: uint16(len(entries)), Max: uint16(max), Depth: uint16(depth)})
	for i, e := range entries {
		if depth == 0 {
			layout.PutExtent(b, i, layout.NewExtent(uint32(e.ext.lblk), e.ext.pblk, uint16(e.ext.n), e.ext.uninit))
		} else {
			layout.PutExtentIndex(b, i, layout.NewExtentIndex(uint32(e.lblk), e.child))
		}
	}
}

// sealExtentNode writes the checksum tail of an extent block.
func (t *tx) sealExtentNode(b []byte, seed uint32, max int) {
	if !t.f.geo.metaCsum {
		return
	}
	off := layout.ExtentTailOffset(max)
	putLE32(b[off:], crc32c(seed, b[:off]))
}

// setEmptyExtentRoot gives a new inode an empty extent root.
func setEmptyExtentRoot(in *inode) {
	root := make([]byte, layout.InodeBlockSize)
	putNode(root, nil, 0, rootMax)
	setIblock(in, root)
}
