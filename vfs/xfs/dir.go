package xfs

import (
	"encoding/binary"
	"io/fs"
	"sort"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// dirent is one directory entry.
type dirent struct {
	name  string
	ino   uint64
	ftype uint8 // layout.Ftype*, 0 when the filesystem does not record it
}

// Bounds of directory walks.
const (
	// MaxDirEntries bounds what ReadDir collects.
	MaxDirEntries = 1 << 21
	// maxDANodeDepth bounds the height of a directory or attribute da
	// btree (XFS uses at most 5 levels).
	maxDANodeDepth = 5
	// maxLeafChain bounds how many sibling leaves one hash lookup walks.
	maxLeafChain = 1024
)

// dirForm is the shape of an extent-mapped directory.
type dirForm int

const (
	formBlock dirForm = iota // one data block holding its own leaf
	formLeaf                 // data blocks and one leaf block
	formNode                 // data blocks, a da btree of leaves, free-index blocks
)

// dirMap is an extent-mapped directory ready to be read.
type dirMap struct {
	dir  *inode
	exts []layout.Extent
	form dirForm
}

func (f *FS) openDir(dir *inode) (*dirMap, error) {
	exts, err := f.forkExtents(dir, false)
	if err != nil {
		return nil, err
	}
	if len(exts) == 0 {
		return nil, at("directory", dir.ino).corrupt("extent-mapped directory with no blocks")
	}
	last := exts[len(exts)-1]
	end := last.StartOff + uint64(last.Count)
	perDir := uint64(1) << f.geo.dirBlkLog
	leafBlk := uint64(layout.DirLeafOffset) >> f.geo.blockLog
	m := &dirMap{dir: dir, exts: exts, form: formNode}
	switch end {
	case perDir:
		m.form = formBlock
	case leafBlk + perDir:
		m.form = formLeaf
	}
	return m, nil
}

// dirBlock reads the directory block starting at file block fb and checks
// its header: v5 CRC, address, owner; want are the magics accepted (32-bit
// data magics when data is set, else 16-bit da magics).
func (f *FS) dirBlock(m *dirMap, fb uint64, data bool, want ...uint32) ([]byte, uint32, error) {
	g := &f.geo
	w := where{what: "directory", ag: -1, block: int64(fb), ino: m.dir.ino, off: -1}
	n := 1 << g.dirBlkLog
	var b []byte
	var lin int64
	if x := findExtent(m.exts, fb); x >= 0 && !m.exts[x].Unwritten && fb+uint64(n) <= m.exts[x].StartOff+uint64(m.exts[x].Count) {
		e := m.exts[x]
		lin = g.fsbLinear(e.StartBlock) + int64(fb-e.StartOff)
		w.off = lin << g.blockLog
		var err error
		if b, err = f.cached(w.off, int(g.dirBlkSize), w); err != nil {
			return nil, 0, err
		}
	} else {
		var err error
		if b, lin, err = f.readMapped(m.exts, fb, n, w); err != nil {
			return nil, 0, err
		}
	}
	var magic uint32
	if data {
		magic = binary.BigEndian.Uint32(b)
	} else {
		magic = uint32(binary.BigEndian.Uint16(b[8:]))
	}
	ok := false
	for _, v := range want {
		ok = ok || magic == v
	}
	if !ok {
		return nil, 0, w.corrupt("bad magic %#x", magic)
	}
	if g.crc {
		if data {
			h, err := layout.DecodeDir3DataHdr(b)
			if err != nil {
				return nil, 0, w.corrupt("%v", err)
			}
			if err := f.checkSelf(b, layout.Dir3DataHdrCRCOffset, h.Blkno, h.UUID, h.Owner, m.dir.ino, lin, w); err != nil {
				return nil, 0, err
			}
		} else {
			h, err := layout.DecodeDA3Blkinfo(b)
			if err != nil {
				return nil, 0, w.corrupt("%v", err)
			}
			if err := f.checkSelf(b, layout.DA3BlkinfoCRCOffset, h.Blkno, h.UUID, h.Owner, m.dir.ino, lin, w); err != nil {
				return nil, 0, err
			}
		}
	}
	return b, magic, nil
}

func (f *FS) dataMagics() []uint32 {
	if f.geo.crc {
		return []uint32{layout.Dir3DataMagic, layout.Dir3BlockMagic}
	}
	return []uint32{layout.Dir2DataMagic, layout.Dir2BlockMagic}
}

func (f *FS) dataHdrSize() int {
	if f.geo.crc {
		return layout.Dir3DataHdrSize
	}
	return layout.DirDataHdrSize
}

// blockLeaf returns the leaf entries of a block-form directory block and
// where they start (the end of the data area).
func (f *FS) blockLeaf(b []byte, w where) ([]byte, int, error) {
	tail, err := layout.DecodeDirBlockTail(b[len(b)-layout.DirBlockTailSize:])
	if err != nil {
		return nil, 0, w.corrupt("%v", err)
	}
	max := (len(b) - f.dataHdrSize() - layout.DirBlockTailSize) / layout.DirLeafEntrySize
	if tail.Count > uint32(max) || tail.Stale > tail.Count {
		return nil, 0, w.corrupt("block tail counts %d leaf entries (%d stale), at most %d fit", tail.Count, tail.Stale, max)
	}
	start := len(b) - layout.DirBlockTailSize - int(tail.Count)*layout.DirLeafEntrySize
	return b[start : len(b)-layout.DirBlockTailSize], start, nil
}

// entryAt decodes the data entry at pos of a data block whose entries end
// at end; it returns the entry, its size, and whether it is a free region
// (then only the size is set).
func (f *FS) entryAt(b []byte, pos, end int, w where) (dirent, int, bool, error) {
	if pos+4 > end {
		return dirent{}, 0, false, w.corrupt("entry at %d runs past the data area (%d)", pos, end)
	}
	if binary.BigEndian.Uint16(b[pos:]) == layout.DirDataFreeTag {
		n := int(binary.BigEndian.Uint16(b[pos+2:]))
		if n < layout.DirDataAlign || n%layout.DirDataAlign != 0 || pos+n > end {
			return dirent{}, 0, false, w.corrupt("free region at %d of %d bytes", pos, n)
		}
		return dirent{}, n, true, nil
	}
	if pos+9 > end {
		return dirent{}, 0, false, w.corrupt("entry at %d runs past the data area (%d)", pos, end)
	}
	nl := int(b[pos+8])
	n := layout.DirDataEntrySize(nl, f.geo.ftype)
	if nl == 0 || pos+n > end {
		return dirent{}, 0, false, w.corrupt("entry at %d with a %d-byte name runs past the data area (%d)", pos, nl, end)
	}
	if tag := int(binary.BigEndian.Uint16(b[pos+n-2:])); tag != pos {
		return dirent{}, 0, false, w.corrupt("entry at %d carries tag %d", pos, tag)
	}
	e := dirent{ino: binary.BigEndian.Uint64(b[pos:]), name: string(b[pos+9 : pos+9+nl])}
	if f.geo.ftype {
		e.ftype = b[pos+9+nl]
	}
	if err := checkName(e.name); err != nil {
		return dirent{}, 0, false, w.corrupt("entry at %d: %v", pos, err)
	}
	return e, n, false, nil
}

// nameError is what checkName reports.
type nameError string

func (e nameError) Error() string { return string(e) }

// checkName refuses names no XFS kernel would have written.
func checkName(n string) error {
	for i := 0; i < len(n); i++ {
		if n[i] == '/' || n[i] == 0 {
			return nameError("name " + quote(n) + " holds a slash or a NUL byte")
		}
	}
	return nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "\"" + s + "\""
}

// dataEntries walks every entry of a data (or block) directory block.
func (f *FS) dataEntries(b []byte, magic uint32, w where, visit func(dirent) error) error {
	end := len(b)
	if magic == layout.Dir2BlockMagic || magic == layout.Dir3BlockMagic {
		_, start, err := f.blockLeaf(b, w)
		if err != nil {
			return err
		}
		end = start
	}
	for pos := f.dataHdrSize(); pos < end; {
		e, n, free, err := f.entryAt(b, pos, end, w)
		if err != nil {
			return err
		}
		pos += n
		if free || e.name == "." || e.name == ".." {
			continue
		}
		if err := visit(e); err != nil {
			return err
		}
	}
	return nil
}

// dirEntries lists directory dir, "." and ".." left out.
func (f *FS) dirEntries(dir *inode) ([]dirent, error) {
	var out []dirent
	add := func(e dirent) error {
		if len(out) >= MaxDirEntries {
			return at("directory", dir.ino).corrupt("more than %d entries", MaxDirEntries)
		}
		out = append(out, e)
		return nil
	}
	if dir.core.Format == layout.FormatLocal {
		return out, f.shortformEntries(dir, add)
	}
	m, err := f.openDir(dir)
	if err != nil {
		return nil, err
	}
	perDir := uint64(1) << f.geo.dirBlkLog
	leafBlk := uint64(layout.DirLeafOffset) >> f.geo.blockLog
	for _, e := range m.exts {
		if e.StartOff >= leafBlk {
			break
		}
		// A directory block starting in an earlier extent was read there.
		for fb := (e.StartOff + perDir - 1) &^ (perDir - 1); fb < e.StartOff+uint64(e.Count) && fb < leafBlk; fb += perDir {
			b, magic, err := f.dirBlock(m, fb, true, f.dataMagics()...)
			if err != nil {
				return nil, err
			}
			w := where{what: "directory", ag: -1, block: int64(fb), ino: dir.ino, off: -1}
			if err := f.dataEntries(b, magic, w, add); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// shortformEntries walks a directory held inside its inode.
func (f *FS) shortformEntries(dir *inode, visit func(dirent) error) error {
	_, err := f.shortform(dir, visit)
	return err
}

// shortform walks a short-form directory and returns its parent.
func (f *FS) shortform(dir *inode, visit func(dirent) error) (uint64, error) {
	w := at("short-form directory", dir.ino)
	size := dir.size()
	if size > int64(len(dir.data)) || size < layout.DirSFHdrSize4 {
		return 0, w.corrupt("size %d does not fit the %d-byte data fork", size, len(dir.data))
	}
	b := dir.data[:size]
	h, err := layout.DecodeDirSFHdr(b)
	if err != nil {
		return 0, w.corrupt("%v", err)
	}
	isz := 4
	if h.I8Count != 0 {
		isz = 8
	}
	readIno := func(p []byte) uint64 {
		if isz == 8 {
			return binary.BigEndian.Uint64(p)
		}
		return uint64(binary.BigEndian.Uint32(p))
	}
	pos := 2 + isz
	if pos > len(b) {
		return 0, w.corrupt("header runs past the %d-byte directory", len(b))
	}
	parent := readIno(b[2:])
	for i := 0; i < int(h.Count); i++ {
		if pos+3 > len(b) {
			return 0, w.corrupt("entry %d runs past the %d-byte directory", i, len(b))
		}
		nl := int(b[pos])
		n := 3 + nl + isz
		if f.geo.ftype {
			n++
		}
		if nl == 0 || pos+n > len(b) {
			return 0, w.corrupt("entry %d with a %d-byte name runs past the %d-byte directory", i, nl, len(b))
		}
		e := dirent{name: string(b[pos+3 : pos+3+nl])}
		q := pos + 3 + nl
		if f.geo.ftype {
			e.ftype = b[q]
			q++
		}
		e.ino = readIno(b[q:])
		if err := checkName(e.name); err != nil {
			return 0, w.corrupt("entry %d: %v", i, err)
		}
		if err := visit(e); err != nil {
			return 0, err
		}
		pos += n
	}
	return parent, nil
}

// errStop ends a walk early.
type stopWalk struct{}

func (stopWalk) Error() string { return "stop" }

// lookup finds name in directory dir through the name hash.
func (f *FS) lookup(dir *inode, name string) (uint64, error) {
	if dir.core.Format == layout.FormatLocal {
		var found uint64
		_, err := f.shortform(dir, func(e dirent) error {
			if f.nameEqual([]byte(e.name), name) {
				found = e.ino
				return stopWalk{}
			}
			return nil
		})
		if _, ok := err.(stopWalk); ok {
			return found, nil
		}
		if err != nil {
			return 0, err
		}
		return 0, fs.ErrNotExist
	}
	m, err := f.openDir(dir)
	if err != nil {
		return 0, err
	}
	hash := f.dirHash([]byte(name))
	switch m.form {
	case formBlock:
		b, _, err := f.dirBlock(m, 0, true, f.dataMagics()[1])
		if err != nil {
			return 0, err
		}
		w := where{what: "directory", ag: -1, block: 0, ino: dir.ino, off: -1}
		leaf, _, err := f.blockLeaf(b, w)
		if err != nil {
			return 0, err
		}
		ino, _, err := f.searchLeaf(m, leaf, hash, name)
		return ino, err
	case formLeaf:
		return f.lookupLeaf(m, uint64(layout.DirLeafOffset)>>f.geo.blockLog, hash, name, true)
	}
	return f.lookupNode(m, hash, name)
}

// searchLeaf looks for name among the hash-sorted leaf entries; more is
// true when the last entry's hash equals hash (the match may continue in
// the next leaf).
func (f *FS) searchLeaf(m *dirMap, leaf []byte, hash uint32, name string) (uint64, bool, error) {
	n := len(leaf) / layout.DirLeafEntrySize
	ent := func(i int) layout.DirLeafEntry {
		return layout.DirLeafEntry{Hashval: binary.BigEndian.Uint32(leaf[i*8:]), Address: binary.BigEndian.Uint32(leaf[i*8+4:])}
	}
	i := sort.Search(n, func(i int) bool { return ent(i).Hashval >= hash })
	for ; i < n && ent(i).Hashval == hash; i++ {
		e := ent(i)
		if e.Address == layout.DirNullDataptr {
			continue
		}
		de, err := f.entryByAddress(m, e.Address)
		if err != nil {
			return 0, false, err
		}
		if f.nameEqual([]byte(de.name), name) {
			return de.ino, false, nil
		}
	}
	return 0, i == n, fs.ErrNotExist
}

// entryByAddress decodes the data entry a leaf entry points at.
func (f *FS) entryByAddress(m *dirMap, addr uint32) (dirent, error) {
	off := uint64(addr) << layout.DirDataAlignLog
	g := &f.geo
	dblk := off / uint64(g.dirBlkSize)
	in := int(off % uint64(g.dirBlkSize))
	fb := dblk << g.dirBlkLog
	w := where{what: "directory", ag: -1, block: int64(fb), ino: m.dir.ino, off: -1}
	if off >= layout.DirLeafOffset {
		return dirent{}, w.corrupt("leaf entry address %#x points past the data area", addr)
	}
	b, magic, err := f.dirBlock(m, fb, true, f.dataMagics()...)
	if err != nil {
		return dirent{}, err
	}
	end := len(b)
	if magic == layout.Dir2BlockMagic || magic == layout.Dir3BlockMagic {
		if _, end, err = f.blockLeaf(b, w); err != nil {
			return dirent{}, err
		}
	}
	if in < f.dataHdrSize() {
		return dirent{}, w.corrupt("leaf entry address %#x points into the block header", addr)
	}
	e, _, free, err := f.entryAt(b, in, end, w)
	if err != nil {
		return dirent{}, err
	}
	if free {
		return dirent{}, w.corrupt("leaf entry address %#x points at free space", addr)
	}
	return e, nil
}

func (f *FS) leafHdrSize() int {
	if f.geo.crc {
		return layout.Dir3LeafHdrSize
	}
	return layout.DirLeafHdrSize
}

// leafEntries reads the leaf (LEAF1 or LEAFN) at da block fb and returns
// its entries and forward sibling.
func (f *FS) leafEntries(m *dirMap, fb uint64, single bool) ([]byte, uint32, error) {
	magic := []uint32{layout.Dir2LeafNMagic}
	switch {
	case single && f.geo.crc:
		magic = []uint32{layout.Dir3Leaf1Magic}
	case single:
		magic = []uint32{layout.Dir2Leaf1Magic}
	case f.geo.crc:
		magic = []uint32{layout.Dir3LeafNMagic}
	}
	b, _, err := f.dirBlock(m, fb, false, magic...)
	if err != nil {
		return nil, 0, err
	}
	w := where{what: "directory leaf", ag: -1, block: int64(fb), ino: m.dir.ino, off: -1}
	info, _ := layout.DecodeDABlkinfo(b)
	hdr := f.leafHdrSize()
	c, err := layout.DecodeDirLeafCounts(b[f.daInfoSize():])
	if err != nil {
		return nil, 0, w.corrupt("%v", err)
	}
	if max := (len(b) - hdr) / layout.DirLeafEntrySize; int(c.Count) > max || c.Stale > c.Count {
		return nil, 0, w.corrupt("%d leaf entries (%d stale), at most %d fit", c.Count, c.Stale, max)
	}
	return b[hdr : hdr+int(c.Count)*layout.DirLeafEntrySize], info.Forw, nil
}

// lookupLeaf searches a leaf and, for node directories, its right
// siblings while the hash run continues.
func (f *FS) lookupLeaf(m *dirMap, fb uint64, hash uint32, name string, single bool) (uint64, error) {
	for hops := 0; hops < maxLeafChain; hops++ {
		leaf, forw, err := f.leafEntries(m, fb, single)
		if err != nil {
			return 0, err
		}
		ino, more, err := f.searchLeaf(m, leaf, hash, name)
		if err == nil || !more || forw == 0 || single {
			return ino, err
		}
		if uint64(forw) <= fb {
			return 0, at("directory leaf", m.dir.ino).corrupt("leaf %d links back to leaf %d", fb, forw)
		}
		fb = uint64(forw)
	}
	return 0, at("directory leaf", m.dir.ino).corrupt("hash run longer than %d leaves", maxLeafChain)
}

// lookupNode descends the da btree of a node-form directory.
func (f *FS) lookupNode(m *dirMap, hash uint32, name string) (uint64, error) {
	fb := uint64(layout.DirLeafOffset) >> f.geo.blockLog
	level := -1
	for depth := 0; depth <= maxDANodeDepth; depth++ {
		child, isLeaf, lvl, err := f.daDescend(m.dir.ino, func(fb uint64) ([]byte, error) {
			b, _, err := f.dirBlock(m, fb, false, f.daNodeMagic(), f.leafNMagic())
			return b, err
		}, fb, hash, level)
		if err != nil {
			return 0, err
		}
		if isLeaf {
			return f.lookupLeaf(m, fb, hash, name, false)
		}
		if child == noChild {
			return 0, fs.ErrNotExist
		}
		fb, level = child, lvl-1
	}
	return 0, at("directory node", m.dir.ino).corrupt("da btree deeper than %d levels", maxDANodeDepth)
}

func (f *FS) daNodeMagic() uint32 {
	if f.geo.crc {
		return layout.DA3NodeMagic
	}
	return layout.DANodeMagic
}

func (f *FS) leafNMagic() uint32 {
	if f.geo.crc {
		return layout.Dir3LeafNMagic
	}
	return layout.Dir2LeafNMagic
}

// daInfoSize is the size of the block info every da block starts with;
// the node and leaf counts follow it.
func (f *FS) daInfoSize() int {
	if f.geo.crc {
		return layout.DA3BlkinfoSize
	}
	return layout.DABlkinfoSize
}

func (f *FS) nodeHdrSize() int {
	if f.geo.crc {
		return layout.DA3NodeHdrSize
	}
	return layout.DANodeHdrSize
}

// noChild is daDescend's answer when no subtree can hold the hash.
const noChild = ^uint64(0)

// daDescend reads the da block fb: a node gives the child whose subtree
// holds hash (the first entry with a hash at or above it), a leaf says so.
// want is the level the node must have (-1 for the root).
func (f *FS) daDescend(ino uint64, read func(uint64) ([]byte, error), fb uint64, hash uint32, want int) (uint64, bool, int, error) {
	b, err := read(fb)
	if err != nil {
		return 0, false, 0, err
	}
	w := where{what: "da node", ag: -1, block: int64(fb), ino: ino, off: -1}
	if uint32(binary.BigEndian.Uint16(b[8:])) != f.daNodeMagic() {
		if want > 0 {
			return 0, false, 0, w.corrupt("a leaf where a level-%d node was expected", want)
		}
		return 0, true, 0, nil
	}
	hdr := f.nodeHdrSize()
	nh, err := layout.DecodeDANodeHdr(b[f.daInfoSize():])
	if err != nil {
		return 0, false, 0, w.corrupt("%v", err)
	}
	max := (len(b) - hdr) / layout.DANodeEntrySize
	if nh.Count == 0 || int(nh.Count) > max || nh.Level == 0 || nh.Level > maxDANodeDepth || (want >= 0 && int(nh.Level) != want) {
		return 0, false, 0, w.corrupt("node of level %d with %d entries (at most %d)", nh.Level, nh.Count, max)
	}
	ents := b[hdr:]
	i := sort.Search(int(nh.Count), func(i int) bool { return binary.BigEndian.Uint32(ents[i*8:]) >= hash })
	if i == int(nh.Count) {
		return noChild, false, int(nh.Level), nil
	}
	return uint64(binary.BigEndian.Uint32(ents[i*8+4:])), false, int(nh.Level), nil
}
