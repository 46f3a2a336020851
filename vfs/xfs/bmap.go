package xfs

import (
	"encoding/binary"
	"sort"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// Bounds of a block map.
const (
	// maxBmbtLevels bounds the height of a bmap btree (XFS needs at most
	// 9 levels for 2^54 blocks of 512 bytes with the smallest fanout).
	maxBmbtLevels = 9
	// maxExtents bounds the extents one fork may map, whatever its
	// header claims.
	maxExtents = 1 << 21
	// maxFileBlock is one past the last block a 54-bit offset can name.
	maxFileBlock = 1 << 54
)

// forkExtents returns the extent list of in's data fork (attr false) or
// attr fork, sorted by file offset and checked: no overlap, every extent
// inside one allocation group of the filesystem.
func (f *FS) forkExtents(in *inode, attr bool) ([]layout.Extent, error) {
	if attr {
		return f.readForkExtents(in, true)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.exts != nil {
		return in.exts, nil
	}
	exts, err := f.readForkExtents(in, false)
	if err == nil && exts != nil && len(exts) <= maxCachedExtents {
		in.exts = exts
	}
	return exts, err
}

// maxCachedExtents bounds the extent list an inode keeps (32 bytes each:
// at most 32 MiB over the inodeCacheEntries cached inodes).
const maxCachedExtents = 1 << 12

// readForkExtents decodes a fork's extent list from the inode and its
// bmap btree.
func (f *FS) readForkExtents(in *inode, attr bool) ([]layout.Extent, error) {
	fork, format, count, what := in.data, in.core.Format, in.core.DataExtents(), "data fork"
	if attr {
		fork, format, count, what = in.attr, in.core.AFormat, in.core.AttrExtents(), "attr fork"
	}
	w := at(what, in.ino)
	if fork == nil {
		return nil, nil
	}
	if count > maxExtents {
		return nil, w.corrupt("%d extents exceed the %d this engine maps", count, maxExtents)
	}
	var out []layout.Extent
	switch format {
	case layout.FormatExtents:
		if count*layout.BmbtRecSize > uint64(len(fork)) {
			return nil, w.corrupt("%d extent records do not fit in %d bytes", count, len(fork))
		}
		out = make([]layout.Extent, 0, count)
		for i := uint64(0); i < count; i++ {
			out = append(out, layout.DecodeExtent(fork[i*layout.BmbtRecSize:]))
		}
	case layout.FormatBtree:
		var err error
		if out, err = f.bmbtExtents(in, fork, count, w); err != nil {
			return nil, err
		}
	default:
		return nil, w.corrupt("format %s has no extent map", format)
	}
	if err := f.checkExtents(out, w); err != nil {
		return nil, err
	}
	return out, nil
}

// checkExtents validates a sorted extent list.
func (f *FS) checkExtents(exts []layout.Extent, w where) error {
	next := uint64(0)
	for i, e := range exts {
		if e.Count == 0 || e.StartOff < next || e.StartOff+uint64(e.Count) > maxFileBlock {
			return w.corrupt("extent %d (file block %d, %d blocks) overlaps or is out of order", i, e.StartOff, e.Count)
		}
		if !f.geo.extentOK(e.StartBlock, uint64(e.Count)) {
			return w.corrupt("extent %d (file block %d) maps %d blocks at %d, outside the filesystem", i, e.StartOff, e.Count, e.StartBlock)
		}
		next = e.StartOff + uint64(e.Count)
	}
	return nil
}

// bmbtExtents walks the bmap btree rooted in fork, collecting at most
// count leaf records. Every block is visited once at most; levels must
// step down by one.
func (f *FS) bmbtExtents(in *inode, fork []byte, count uint64, w where) ([]layout.Extent, error) {
	root, err := layout.DecodeBmdrBlock(fork)
	if err != nil {
		return nil, w.corrupt("%v", err)
	}
	maxrecs := (len(fork) - layout.BmdrHeaderSize) / (layout.BmbtKeySize + layout.BmbtPtrSize)
	if root.Level == 0 || root.Level > maxBmbtLevels || root.NumRecs == 0 || int(root.NumRecs) > maxrecs {
		return nil, w.corrupt("bmap btree root of level %d with %d records (at most %d)", root.Level, root.NumRecs, maxrecs)
	}
	wk := &bmbtWalk{f: f, in: in, count: count, visited: map[uint64]bool{}, out: make([]layout.Extent, 0, min(count, 1<<16))}
	ptrs := fork[layout.BmdrHeaderSize+maxrecs*layout.BmbtKeySize:]
	for i := 0; i < int(root.NumRecs); i++ {
		if err := wk.walk(binary.BigEndian.Uint64(ptrs[i*8:]), int(root.Level)-1); err != nil {
			return nil, err
		}
	}
	if uint64(len(wk.out)) != count {
		return nil, w.corrupt("bmap btree holds %d extents, the inode counts %d", len(wk.out), count)
	}
	return wk.out, nil
}

type bmbtWalk struct {
	f       *FS
	in      *inode
	count   uint64
	visited map[uint64]bool
	out     []layout.Extent
}

func (wk *bmbtWalk) walk(fsb uint64, level int) error {
	f := wk.f
	g := &f.geo
	w := where{what: "bmbt block", ag: int64(fsb >> g.agBlkLog), block: int64(fsb), ino: wk.in.ino, off: -1}
	lin := g.fsbLinear(fsb)
	if lin < 0 {
		return w.corrupt("pointer outside the filesystem")
	}
	if wk.visited[fsb] {
		return w.corrupt("block reached twice (a cycle or a shared subtree)")
	}
	wk.visited[fsb] = true
	w.off = lin << g.blockLog
	b, err := f.cached(w.off, int(g.blockSize), w)
	if err != nil {
		return err
	}
	h, err := layout.DecodeLongBlock(b)
	if err != nil {
		return w.corrupt("%v", err)
	}
	hdr := layout.LongBlockSize
	if g.crc {
		hdr = layout.LongBlockCRCSize
		if h.Magic != layout.BmapCRCMagic {
			return w.corrupt("bad magic %#x", h.Magic)
		}
		if err := f.checkSelf(b, layout.LongBlockCRCOffset, h.Blkno, h.UUID, h.Owner, wk.in.ino, lin, w); err != nil {
			return err
		}
	} else if h.Magic != layout.BmapMagic {
		return w.corrupt("bad magic %#x", h.Magic)
	}
	if int(h.Level) != level {
		return w.corrupt("level %d where %d was expected", h.Level, level)
	}
	maxrecs := (len(b) - hdr) / layout.BmbtRecSize
	if h.NumRecs == 0 || int(h.NumRecs) > maxrecs {
		return w.corrupt("%d records (at most %d)", h.NumRecs, maxrecs)
	}
	if level == 0 {
		if uint64(len(wk.out))+uint64(h.NumRecs) > wk.count {
			return w.corrupt("more extents than the inode's %d", wk.count)
		}
		for i := 0; i < int(h.NumRecs); i++ {
			wk.out = append(wk.out, layout.DecodeExtent(b[hdr+i*layout.BmbtRecSize:]))
		}
		return nil
	}
	ptrs := b[hdr+maxrecs*layout.BmbtKeySize:]
	for i := 0; i < int(h.NumRecs); i++ {
		if err := wk.walk(binary.BigEndian.Uint64(ptrs[i*8:]), level-1); err != nil {
			return err
		}
	}
	return nil
}

// checkSelf verifies a v5 self-describing block: CRC, disk address,
// filesystem UUID and owner inode (owner 0 skips the owner check).
func (f *FS) checkSelf(b []byte, crcOff int, blkno uint64, uuid [16]byte, owner, wantOwner uint64, lin int64, w where) error {
	if got, want := layout.StoredChecksum(b, crcOff), layout.Checksum(b, crcOff); got != want {
		return w.badChecksum(got, want)
	}
	if want := uint64(lin) << f.geo.blockLog / layout.BBSize; blkno != want {
		return w.corrupt("block claims disk address %d, read at %d", blkno, want)
	}
	if uuid != f.geo.metaUUID {
		return w.corrupt("block belongs to another filesystem (UUID mismatch)")
	}
	if wantOwner != 0 && owner != wantOwner {
		return w.corrupt("block owned by inode %d", owner)
	}
	return nil
}

// findExtent returns the index of the extent mapping file block fb, or -1
// (a hole).
func findExtent(exts []layout.Extent, fb uint64) int {
	i := sort.Search(len(exts), func(i int) bool { return exts[i].StartOff+uint64(exts[i].Count) > fb })
	if i < len(exts) && exts[i].StartOff <= fb {
		return i
	}
	return -1
}

// readMapped reads n filesystem blocks from file block fb of a fork with
// extents exts into one buffer; a hole is an error (directories and
// attribute forks have none where their structures point). Unwritten
// blocks read as zeros.
func (f *FS) readMapped(exts []layout.Extent, fb uint64, n int, w where) ([]byte, int64, error) {
	bs := f.geo.blockSize
	out := make([]byte, int64(n)*bs)
	first := int64(-1)
	for i := 0; i < n; {
		x := findExtent(exts, fb+uint64(i))
		if x < 0 {
			return nil, -1, w.corrupt("file block %d is a hole", fb+uint64(i))
		}
		e := exts[x]
		skip := fb + uint64(i) - e.StartOff
		run := min(int(uint64(e.Count)-skip), n-i)
		lin := f.geo.fsbLinear(e.StartBlock) + int64(skip)
		if first < 0 {
			first = lin
		}
		if !e.Unwritten {
			w.off = lin << f.geo.blockLog
			if err := f.readAt(out[int64(i)*bs:int64(i+run)*bs], w.off, w); err != nil {
				return nil, -1, err
			}
		}
		i += run
	}
	return out, first, nil
}
