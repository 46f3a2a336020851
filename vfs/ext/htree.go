package ext

import (
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// The directory hash and the casefolding, from package dirhash (wired in
// dirhash.go). A nil hashName makes every lookup scan linearly.
var (
	hashName func(name []byte, version uint8, seed [4]uint32) (uint32, error)
	foldName func(name []byte) ([]byte, error)
)

// indexed reports whether dir is a hash-tree directory, as the kernel
// decides it: the INDEX flag on a dir_index filesystem.
func (f *FS) indexed(dir *inode) bool {
	return f.geo.dirIndex && dir.flag(layout.FlagIndex) && !dir.flag(layout.FlagInlineData)
}

// useHtree reports whether lookups in dir go through its hash index.
func (f *FS) useHtree(dir *inode) bool { return hashName != nil && f.indexed(dir) }

// dxLevel is one step of the path from the root to a leaf.
type dxLevel struct {
	block []byte
	lblk  uint64
	off   int // offset of the count/limit pair (and of the entries)
	count int
	at    int // entry followed
}

// htree walks the hash index of one directory.
type htree struct {
	f       *FS
	dir     *inode
	m       mapper
	nblocks uint64
	hash    uint32
	levels  int
	path    []dxLevel
}

func (t *htree) err(lblk uint64, format string, args ...any) error {
	return corrupt("htree node", lblk, t.dir.num, -1, format, args...)
}

// htreeLookup finds key through the index: it descends to the leaf for
// key's hash, scans it, and follows the collision chain into the next
// leaves while their hash continues key's.
func (f *FS) htreeLookup(dir *inode, key []byte, fold bool) (uint32, bool, error) {
	m, err := f.mapperFor(dir)
	if err != nil {
		return 0, false, err
	}
	t := &htree{f: f, dir: dir, m: m, nblocks: f.dirBlocks(dir)}
	leaf, err := t.probe(key)
	if err != nil {
		return 0, false, err
	}
	for visited := uint64(0); visited < t.nblocks; visited++ {
		ino, found, err := t.scanLeaf(leaf, key, fold)
		if err != nil || found {
			return ino, found, err
		}
		next, more, err := t.next()
		if err != nil || !more {
			return 0, false, err
		}
		leaf = next
	}
	return 0, false, t.err(0, "collision chain longer than the directory")
}

// probe reads the root, hashes key and descends to its first leaf.
func (t *htree) probe(key []byte) (uint64, error) {
	root, kind, err := t.f.dirBlock(t.dir, t.m, 0, nil)
	if err != nil {
		return 0, err
	}
	if kind != dxRootBlock {
		return 0, t.err(0, "block 0 is not an index root")
	}
	info, _ := layout.DecodeDxRootInfo(root)
	if err := t.checkRootInfo(info); err != nil {
		return 0, err
	}
	v := info.HashVersion
	if v <= layout.HashTea && t.f.geo.hashUnsigned {
		v += layout.HashLegacyUnsigned
	}
	h, err := hashName(key, v, t.f.sb.HashSeed)
	if err != nil {
		return 0, t.err(0, "hashing a name: %v", err)
	}
	t.hash, t.levels = h&^1, int(info.IndirectLevels)
	if err := t.push(root, 0, layout.DxRootEntries); err != nil {
		return 0, err
	}
	return t.descend()
}

// checkRootInfo validates the dx_root_info fields a lookup relies on.
func (t *htree) checkRootInfo(info *layout.DxRootInfo) error {
	max := layout.DxMaxLevels
	if t.f.geo.largeDir {
		max = layout.DxMaxLevelsLarge
	}
	switch {
	case info.InfoLength != layout.DxRootInfoSize:
		return t.err(0, "root info length %d", info.InfoLength)
	case info.HashVersion == layout.HashSipHash:
		return unsupported("SipHash directory index in inode %d (encrypted casefold)", t.dir.num)
	case info.HashVersion > layout.HashTea:
		return t.err(0, "hash version %d", info.HashVersion)
	case int(info.IndirectLevels) >= max:
		return t.err(0, "%d index levels, at most %d allowed", info.IndirectLevels+1, max)
	case info.UnusedFlags&1 != 0:
		return unsupported("index flags %#x in inode %d", info.UnusedFlags, t.dir.num)
	}
	return nil
}

// push checks the count/limit of an index block, picks the entry for
// t.hash and appends the level to the path.
func (t *htree) push(b []byte, lblk uint64, off int) error {
	cl, err := layout.DecodeDxCountLimit(b, off)
	if err != nil {
		return t.err(lblk, "%v", err)
	}
	if want := t.limit(len(b), off); int(cl.Limit) != want || cl.Count == 0 || cl.Count > cl.Limit {
		return t.err(lblk, "count %d, limit %d (want limit %d)", cl.Count, cl.Limit, want)
	}
	n := int(cl.Count)
	at := sort.Search(n-1, func(i int) bool {
		e, _ := layout.DecodeDxEntry(b, off, i+1)
		return e.Hash > t.hash
	})
	t.path = append(t.path, dxLevel{block: b, lblk: lblk, off: off, count: n, at: at})
	return nil
}

// limit is how many entries an index block with entries at off holds.
func (t *htree) limit(bs, off int) int {
	room := bs - off
	if t.f.geo.metaCsum {
		room -= layout.DxTailSize
	}
	return room / layout.DxEntrySize
}

// descend follows the chosen entries from the last level of the path down
// to a leaf, whose logical block it returns.
func (t *htree) descend() (uint64, error) {
	for {
		lv := t.path[len(t.path)-1]
		e, _ := layout.DecodeDxEntry(lv.block, lv.off, lv.at)
		blk := uint64(e.Block)
		if blk == 0 || blk >= t.nblocks {
			return 0, t.err(lv.lblk, "entry %d points to block %d of a %d-block directory", lv.at, blk, t.nblocks)
		}
		if len(t.path) > t.levels {
			return blk, nil
		}
		b, kind, err := t.f.dirBlock(t.dir, t.m, blk, nil)
		if err != nil {
			return 0, err
		}
		if kind != dxNodeBlock {
			return 0, t.err(blk, "index points to a block that is not an index node")
		}
		if err := t.push(b, blk, layout.DxNodeEntries); err != nil {
			return 0, err
		}
	}
}

// next moves to the leaf after the current one when its starting hash
// continues t.hash (a hash collision spilled over); more is false
// otherwise.
func (t *htree) next() (uint64, bool, error) {
	for len(t.path) > 0 {
		lv := &t.path[len(t.path)-1]
		if lv.at+1 < lv.count {
			lv.at++
			e, _ := layout.DecodeDxEntry(lv.block, lv.off, lv.at)
			if e.Hash&^1 != t.hash {
				return 0, false, nil
			}
			return t.descendFirst()
		}
		t.path = t.path[:len(t.path)-1]
	}
	return 0, false, nil
}

// descendFirst descends from the current entry taking the first entry of
// each lower level.
func (t *htree) descendFirst() (uint64, bool, error) {
	for {
		lv := t.path[len(t.path)-1]
		e, _ := layout.DecodeDxEntry(lv.block, lv.off, lv.at)
		blk := uint64(e.Block)
		if blk == 0 || blk >= t.nblocks {
			return 0, false, t.err(lv.lblk, "entry %d points to block %d of a %d-block directory", lv.at, blk, t.nblocks)
		}
		if len(t.path) > t.levels {
			return blk, true, nil
		}
		b, kind, err := t.f.dirBlock(t.dir, t.m, blk, nil)
		if err != nil {
			return 0, false, err
		}
		if kind != dxNodeBlock {
			return 0, false, t.err(blk, "index points to a block that is not an index node")
		}
		if err := t.push(b, blk, layout.DxNodeEntries); err != nil {
			return 0, false, err
		}
		t.path[len(t.path)-1].at = 0
	}
}

// scanLeaf looks for key in leaf block lblk.
func (t *htree) scanLeaf(lblk uint64, key []byte, fold bool) (uint32, bool, error) {
	b, kind, err := t.f.dirBlock(t.dir, t.m, lblk, nil)
	if err != nil {
		return 0, false, err
	}
	// Without checksums a leaf emptied by deletions (one unused entry over
	// the whole block, as the kernel leaves it) has the shape of an index
	// node; it holds no names. With them, a node would have passed its dx
	// checksum: a real node where a leaf belongs.
	if kind == dxRootBlock || kind == dxNodeBlock && t.f.geo.metaCsum {
		return 0, false, t.err(lblk, "index points to an index block where a leaf belongs")
	}
	var ino uint32
	_, err = t.f.parseDirEntries(b, lblk, t.dir, func(e dirEntry) bool {
		if t.f.nameMatches(e.name, key, fold) {
			ino = e.ino
			return true
		}
		return false
	})
	return ino, ino != 0, err
}

// checkDxChecksum verifies the dx_tail of an index root or node.
func (f *FS) checkDxChecksum(dir *inode, b []byte, pblk uint64, kind dirBlockKind) error {
	at := int64(pblk) * f.geo.blockSize
	off := layout.DxNodeEntries
	if kind == dxRootBlock {
		info, _ := layout.DecodeDxRootInfo(b)
		off = layout.DxRootInfoOffset + int(info.InfoLength)
	}
	cl, err := layout.DecodeDxCountLimit(b, off)
	if err != nil {
		return corrupt("htree node", pblk, dir.num, at, "%v", err)
	}
	tail := off + int(cl.Limit)*layout.DxEntrySize
	if cl.Count > cl.Limit || tail+layout.DxTailSize > len(b) {
		return &CorruptError{What: "htree node", Num: pblk, Ino: dir.num, Offset: at,
			Detail: "no room for the checksum tail", Err: ErrChecksum}
	}
	var zero [4]byte
	c := crc32c(dir.seed, b[:off+int(cl.Count)*layout.DxEntrySize])
	c = crc32c(c, b[tail:tail+4])
	c = crc32c(c, zero[:])
	if got := le32(b, tail+4); got != c {
		return badChecksum("htree node", pblk, dir.num, at, got, c)
	}
	return nil
}
