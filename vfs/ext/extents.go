package ext

import (
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// extentMapper walks an inode's extent tree. It remembers the last leaf it
// read, so a sequential read descends the tree once per leaf.
type extentMapper struct {
	f    *FS
	in   *inode
	root []byte
	leaf []byte // last leaf visited
	lo   uint64 // logical range [lo, hi) the leaf covers
	hi   uint64
	blk  uint64 // its block (0 for the root)
}

func (f *FS) newExtentMapper(in *inode) (*extentMapper, error) {
	m := &extentMapper{f: f, in: in, root: in.iblock()}
	h, err := m.checkNode(m.root, 0, -1)
	if err != nil {
		return nil, err
	}
	if h.Depth > layout.ExtentMaxDepth {
		return nil, m.nodeErr(0, "depth %d exceeds %d", h.Depth, layout.ExtentMaxDepth)
	}
	return m, nil
}

func (m *extentMapper) nodeErr(blk uint64, format string, args ...any) error {
	return corrupt("extent node", blk, m.in.num, -1, format, args...)
}

// checkNode validates node b (the in-inode root when blk is 0) against
// the depth its parent expects (-1 for the root): header, entry bounds,
// checksum, and entries sorted and inside the filesystem.
func (m *extentMapper) checkNode(b []byte, blk uint64, depth int) (*layout.ExtentHeader, error) {
	h, err := layout.DecodeExtentHeader(b)
	if err != nil {
		return nil, m.nodeErr(blk, "%v", err)
	}
	maxEntries := (len(b) - layout.ExtentHeaderSize) / layout.ExtentEntrySize
	switch {
	case h.Magic != layout.ExtentMagic:
		return nil, m.nodeErr(blk, "bad magic %#04x", h.Magic)
	case depth >= 0 && int(h.Depth) != depth:
		return nil, m.nodeErr(blk, "depth %d, parent expects %d", h.Depth, depth)
	case h.Max == 0 || int(h.Max) > maxEntries || h.Entries > h.Max:
		return nil, m.nodeErr(blk, "%d entries, max %d, room for %d", h.Entries, h.Max, maxEntries)
	}
	if blk != 0 && m.f.geo.metaCsum {
		if err := m.checkTail(b, blk, int(h.Max)); err != nil {
			return nil, err
		}
	}
	return &h, m.checkEntries(b, blk, &h)
}

// checkTail verifies the checksum after the node's max entries.
func (m *extentMapper) checkTail(b []byte, blk uint64, max int) error {
	off := layout.ExtentTailOffset(max)
	if off+layout.ExtentTailSize > len(b) {
		return m.nodeErr(blk, "no room for the checksum tail")
	}
	want := crc32c(m.in.seed, b[:off])
	if got := le32(b, off); got != want {
		return badChecksum("extent node", blk, m.in.num, int64(blk)*m.f.geo.blockSize, got, want)
	}
	return nil
}

// checkEntries requires strictly increasing, non-overlapping logical
// ranges and physical blocks inside the filesystem.
func (m *extentMapper) checkEntries(b []byte, blk uint64, h *layout.ExtentHeader) error {
	var next uint64 // first logical block the next entry may start at
	for i := 0; i < int(h.Entries); i++ {
		if h.Depth > 0 {
			e, _ := layout.DecodeExtentIndex(b, i)
			if uint64(e.Block) < next {
				return m.nodeErr(blk, "index %d starts at %d, before %d", i, e.Block, next)
			}
			if !m.f.validBlock(e.Leaf()) {
				return m.nodeErr(blk, "index %d points to block %d outside the filesystem", i, e.Leaf())
			}
			next = uint64(e.Block) + 1
			continue
		}
		e, _ := layout.DecodeExtent(b, i)
		n, _ := e.Length()
		switch {
		case uint64(e.Block) < next:
			return m.nodeErr(blk, "extent %d starts at %d, before %d", i, e.Block, next)
		case n == 0 || uint64(e.Block)+uint64(n) > maxLblk:
			return m.nodeErr(blk, "extent %d covers %d blocks from %d", i, n, e.Block)
		case !m.f.validRange(e.Start(), uint64(n)):
			return m.nodeErr(blk, "extent %d maps to blocks %d+%d outside the filesystem", i, e.Start(), n)
		}
		next = uint64(e.Block) + uint64(n)
	}
	return nil
}

// mapBlock returns the run starting at logical block l.
func (m *extentMapper) mapBlock(l uint64) (run, error) {
	if m.leaf == nil || l < m.lo || l >= m.hi {
		if err := m.descend(l); err != nil {
			return run{}, err
		}
	}
	return m.inLeaf(l)
}

// descend walks from the root to the leaf covering l, validating each node.
func (m *extentMapper) descend(l uint64) error {
	node, blk, lo, hi := m.root, uint64(0), uint64(0), uint64(maxLblk)
	h, err := m.checkNode(node, 0, -1)
	if err != nil {
		return err
	}
	for h.Depth > 0 {
		n := int(h.Entries)
		i := sort.Search(n, func(i int) bool {
			e, _ := layout.DecodeExtentIndex(node, i)
			return uint64(e.Block) > l
		}) - 1
		if i < 0 { // l lies before the first child: a hole, mapped by inLeaf on an empty leaf
			if n > 0 {
				e, _ := layout.DecodeExtentIndex(node, 0)
				hi = uint64(e.Block)
			}
			m.leaf, m.lo, m.hi, m.blk = emptyLeaf, lo, hi, blk
			return nil
		}
		e, _ := layout.DecodeExtentIndex(node, i)
		lo = max(lo, uint64(e.Block))
		if i+1 < n {
			e2, _ := layout.DecodeExtentIndex(node, i+1)
			hi = min(hi, uint64(e2.Block))
		}
		child, err := m.f.block(e.Leaf(), "extent node", m.in.num)
		if err != nil {
			return err
		}
		if h, err = m.checkNode(child, e.Leaf(), int(h.Depth)-1); err != nil {
			return err
		}
		node, blk = child, e.Leaf()
	}
	m.leaf, m.lo, m.hi, m.blk = node, lo, hi, blk
	return nil
}

// emptyLeaf stands for a leaf with no extents (a hole before a subtree);
// it is only read.
var emptyLeaf = layout.EmptyExtentLeaf()

// inLeaf maps l within the current leaf: inside an extent, or in the hole
// up to the next extent (or the end of the leaf's range).
func (m *extentMapper) inLeaf(l uint64) (run, error) {
	h, _ := layout.DecodeExtentHeader(m.leaf)
	n := int(h.Entries)
	i := sort.Search(n, func(i int) bool {
		e, _ := layout.DecodeExtent(m.leaf, i)
		return uint64(e.Block) > l
	})
	if i > 0 {
		e, _ := layout.DecodeExtent(m.leaf, i-1)
		cnt, uninit := e.Length()
		if end := uint64(e.Block) + uint64(cnt); l < end {
			d := l - uint64(e.Block)
			return run{lblk: l, n: min(end, m.hi) - l, pblk: e.Start() + d, zero: uninit}, nil
		}
	}
	end := m.hi
	if i < n {
		e, _ := layout.DecodeExtent(m.leaf, i)
		end = min(end, uint64(e.Block))
	}
	if end <= l {
		return run{}, m.nodeErr(m.blk, "logical block %d outside the range the index gives this leaf", l)
	}
	return run{lblk: l, n: end - l, zero: true}, nil
}
