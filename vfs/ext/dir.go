package ext

import (
	"bytes"
	"io/fs"

	"github.com/guestinject/guestinject/vfs/ext/internal/dirblock"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// dirEntry is one live directory entry.
type dirEntry struct {
	name  []byte
	ino   uint32
	ftype uint8
}

// Kinds of directory block.
type dirBlockKind int

const (
	leafBlock dirBlockKind = iota
	dxRootBlock
	dxNodeBlock
)

// forEachEntry calls fn for each live entry of dir ("." and ".."
// included) until fn returns true.
func (f *FS) forEachEntry(dir *inode, fn func(dirEntry) bool) error {
	if dir.flag(layout.FlagEncrypt) {
		return unsupported("directory inode %d is encrypted", dir.num)
	}
	if dir.flag(layout.FlagInlineData) {
		return f.inlineDirEntries(dir, fn)
	}
	m, err := f.mapperFor(dir)
	if err != nil {
		return err
	}
	nblocks := f.dirBlocks(dir)
	if nblocks > f.geo.blocksCount {
		return corrupt("inode", uint64(dir.num), 0, -1, "directory of %d blocks in a %d-block filesystem", nblocks, f.geo.blocksCount)
	}
	seen := make(map[uint64]bool)
	for lblk := uint64(0); lblk < nblocks; lblk++ {
		b, kind, err := f.dirBlock(dir, m, lblk, seen)
		if err != nil {
			return err
		}
		if kind != leafBlock {
			continue // an index block: "." and ".." in the root, no names
		}
		if stop, err := f.parseDirEntries(b, lblk, dir, fn); err != nil || stop {
			return err
		}
	}
	return nil
}

// dirBlocks is the number of blocks a block-backed directory spans.
func (f *FS) dirBlocks(dir *inode) uint64 {
	return (uint64(dir.size) + uint64(f.geo.blockSize) - 1) / uint64(f.geo.blockSize)
}

// dirBlock reads logical block lblk of dir, says what kind of block it is
// and verifies its checksum. When seen is given, a physical block met
// twice is corruption: a hostile map cannot make one scan read a block
// over and over.
func (f *FS) dirBlock(dir *inode, m mapper, lblk uint64, seen map[uint64]bool) ([]byte, dirBlockKind, error) {
	r, err := m.mapBlock(lblk)
	if err != nil {
		return nil, 0, err
	}
	if r.zero {
		return nil, 0, corrupt("directory block", lblk, dir.num, -1, "directory has a hole at logical block %d", lblk)
	}
	if seen != nil {
		if seen[r.pblk] {
			return nil, 0, corrupt("directory block", lblk, dir.num, -1, "block %d appears twice in the directory", r.pblk)
		}
		seen[r.pblk] = true
	}
	b, err := f.block(r.pblk, "directory block", dir.num)
	if err != nil {
		return nil, 0, err
	}
	kind := f.blockKind(dir, b, lblk)
	if !f.geo.metaCsum {
		return b, kind, nil
	}
	if kind == leafBlock {
		err = f.checkLeafChecksum(dir, b, r.pblk)
	} else {
		err = f.checkDxChecksum(dir, b, r.pblk, kind)
	}
	return b, kind, err
}

// blockKind tells an htree root or node from a leaf, as the kernel does:
// block 0 of an indexed directory, or a block that is one empty entry.
func (f *FS) blockKind(dir *inode, b []byte, lblk uint64) dirBlockKind {
	if !f.indexed(dir) {
		return leafBlock
	}
	if lblk == 0 {
		return dxRootBlock
	}
	d, _ := layout.DecodeDirent(b)
	if d.Inode == 0 && d.RecLength(len(b)) == len(b) {
		return dxNodeBlock
	}
	return leafBlock
}

// checkLeafChecksum verifies the dirent tail of a leaf block.
func (f *FS) checkLeafChecksum(dir *inode, b []byte, pblk uint64) error {
	at := int64(pblk) * f.geo.blockSize
	t, _ := layout.DecodeDirentTail(b)
	if !t.IsTail() {
		return &CorruptError{What: "directory block", Num: pblk, Ino: dir.num, Offset: at, Detail: "no checksum tail", Err: ErrChecksum}
	}
	want := crc32c(dir.seed, b[:len(b)-layout.DirentTailSize])
	if t.Checksum != want {
		return badChecksum("directory block", pblk, dir.num, at, t.Checksum, want)
	}
	return nil
}

// parseDirEntries walks the entries of one directory block (or inline
// region) b with dirblock.Walk, which bounds every rec_len and name_len
// by b; live entries are checked and handed to fn.
func (f *FS) parseDirEntries(b []byte, lblk uint64, dir *inode, fn func(dirEntry) bool) (bool, error) {
	stop := false
	var bad error
	lf := dirblock.Format{BlockSize: len(b), Filetype: f.geo.filetype}
	err := dirblock.Walk(b, lf, func(s dirblock.Slot) bool {
		if s.Ino == 0 {
			return false
		}
		d, _ := layout.DecodeDirent(b[s.Off:])
		e, err := f.checkEntry(&d, dirblock.Name(b, s))
		if err != nil {
			bad = &dirblock.Error{Off: s.Off, Detail: err.Error()}
			return true
		}
		stop = fn(e)
		return stop
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		what := "directory block"
		if dir.flag(layout.FlagInlineData) {
			what = "inline directory part" // 0: i_block, 1: system.data
		}
		return false, corrupt(what, lblk, dir.num, -1, "%v", err)
	}
	return stop, nil
}

// errBadEntry describes an entry with an impossible name or inode.
type errBadEntry string

func (e errBadEntry) Error() string { return string(e) }

// checkEntry validates one live entry's name and inode number.
func (f *FS) checkEntry(d *layout.Dirent, name []byte) (dirEntry, error) {
	e := dirEntry{name: name, ino: d.Inode}
	if f.geo.filetype {
		e.ftype = d.FileType
	}
	switch {
	case len(name) == 0:
		return e, errBadEntry("empty name")
	case bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0:
		return e, errBadEntry("name " + quote(name) + " holds '/' or NUL")
	case !f.validIno(d.Inode):
		return e, errBadEntry("name " + quote(name) + " points to an invalid inode number")
	}
	return e, nil
}

func quote(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return "\"" + string(bytes.ToValidUTF8(b, []byte("?"))) + "\""
}

// lookup finds name in directory dir: through the hash index when the
// directory has one, else by scanning.
func (f *FS) lookup(dir *inode, name string) (uint32, error) {
	if !dir.isDir() {
		return 0, errNotDir
	}
	if dir.flag(layout.FlagEncrypt) {
		return 0, unsupported("directory inode %d is encrypted", dir.num)
	}
	key, fold := f.lookupKey(dir, []byte(name))
	if f.useHtree(dir) {
		ino, found, err := f.htreeLookup(dir, key, fold)
		if err != nil || found {
			return ino, err
		}
		return 0, fs.ErrNotExist
	}
	return f.linearLookup(dir, key, fold)
}

// linearLookup scans every entry of dir for key.
func (f *FS) linearLookup(dir *inode, key []byte, fold bool) (uint32, error) {
	var ino uint32
	err := f.forEachEntry(dir, func(e dirEntry) bool {
		if f.nameMatches(e.name, key, fold) {
			ino = e.ino
			return true
		}
		return false
	})
	if err == nil && ino == 0 {
		err = fs.ErrNotExist
	}
	return ino, err
}

// lookupKey returns the form of name lookups compare: the casefolded name
// in a casefold directory (when it folds), else the name itself.
func (f *FS) lookupKey(dir *inode, name []byte) ([]byte, bool) {
	if !f.isCasefold(dir) || foldName == nil {
		return name, false
	}
	k, err := foldName(name)
	if err != nil {
		return name, false // not valid UTF-8: matched byte for byte, as the kernel does
	}
	return k, true
}

// nameMatches compares an entry's name with a lookup key.
func (f *FS) nameMatches(entry, key []byte, fold bool) bool {
	if !fold {
		return bytes.Equal(entry, key)
	}
	k, err := foldName(entry)
	if err != nil {
		return false
	}
	return bytes.Equal(k, key)
}

// isCasefold reports whether names in dir are compared casefolded.
func (f *FS) isCasefold(dir *inode) bool {
	return dir.flag(layout.FlagCasefold) && f.sb.FeatureIncompat.Has(layout.IncompatCasefold)
}
