package ext

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/dirblock"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// The directory operations the vfs face calls inside a transaction.
// Blocks are read and written through the transaction (tx.mapBlock,
// metaBlock, newBlock), so nothing reaches the disk before commit, and a
// failed operation leaves the image untouched.

// linkMax is the kernel's EXT4_LINK_MAX: past it an indexed directory's
// link count (on a dir_nlink filesystem) reads 1, "many".
const linkMax = 65000

// maxDirSize bounds a directory without large_dir (its i_size is 32
// bits; the kernel and e2fsck keep it under 2 GiB).
const maxDirSize = 1<<31 - 1

// txDirStore is a directory's blocks seen through a transaction.
type txDirStore struct {
	t   *tx
	dir *inode
}

func (s *txDirStore) blocks() uint64 { return s.t.f.dirBlocks(s.dir) }

// pblk maps logical block lblk of the directory.
func (s *txDirStore) pblk(lblk uint64) (uint64, error) {
	if lblk >= s.blocks() {
		return 0, corrupt("directory block", lblk, s.dir.num, -1, "block %d of a %d-block directory", lblk, s.blocks())
	}
	p, _, err := s.t.mapBlock(s.dir, lblk, false)
	if err != nil {
		return 0, err
	}
	if p == 0 {
		return 0, corrupt("directory block", lblk, s.dir.num, -1, "directory has a hole at logical block %d", lblk)
	}
	return p, nil
}

func (s *txDirStore) block(lblk uint64) ([]byte, error) {
	p, err := s.pblk(lblk)
	if err != nil {
		return nil, err
	}
	return s.t.metaBlock(p, kindDir)
}

func (s *txDirStore) peek(lblk uint64) ([]byte, error) {
	p, err := s.pblk(lblk)
	if err != nil {
		return nil, err
	}
	if b, ok := s.t.blocks[p]; ok {
		return b.buf, nil
	}
	return s.t.f.block(p, "directory block", s.dir.num)
}

func (s *txDirStore) grow() (uint64, []byte, error) {
	f, lblk := s.t.f, s.blocks()
	size := int64(lblk+1) * f.geo.blockSize
	if !f.geo.largeDir && size > maxDirSize {
		return 0, nil, fmt.Errorf("ext: directory inode %d would pass 2 GiB (large_dir is off): %w", s.dir.num, vfs.ErrNoSpace)
	}
	p, isNew, err := s.t.mapBlock(s.dir, lblk, true)
	if err != nil {
		return 0, nil, err
	}
	var b []byte
	if isNew {
		b = s.t.newBlock(p, kindDir)
	} else if b, err = s.t.metaBlock(p, kindDir); err != nil {
		return 0, nil, err
	}
	clear(b)
	s.t.setSize(s.dir, size)
	s.t.dirtyInode(s.dir)
	return lblk, b, nil
}

// dirWriter returns the writer for block-backed directory dir.
func (t *tx) dirWriter(dir *inode) (*dirw, error) {
	f := t.f
	if n := f.dirBlocks(dir); n > f.geo.blocksCount {
		return nil, corrupt("inode", uint64(dir.num), 0, -1, "directory of %d blocks in a %d-block filesystem", n, f.geo.blocksCount)
	}
	w := &dirw{
		st: &txDirStore{t: t, dir: dir}, ino: dir.num,
		lf:   dirblock.Format{BlockSize: int(f.geo.blockSize), Filetype: f.geo.filetype, Tail: f.geo.metaCsum},
		csum: f.geo.metaCsum, seed: dir.seed, indexed: f.indexed(dir), maxLevels: layout.DxMaxLevels,
	}
	if f.geo.largeDir {
		w.maxLevels = layout.DxMaxLevelsLarge
	}
	if w.indexed && hashName == nil {
		return nil, unsupported("updating the hash index of directory inode %d without a hash function", dir.num)
	}
	if f.geo.dirIndex && !w.indexed && hashName != nil {
		w.makeIndexed = t.indexer(dir)
	}
	w.hashName = func(name []byte, v uint8) (uint32, error) {
		key, _ := f.lookupKey(dir, name)
		if v <= layout.HashTea && f.geo.hashUnsigned {
			v += layout.HashLegacyUnsigned
		}
		return hashName(key, v, f.sb.HashSeed)
	}
	return w, nil
}

// indexer returns the callback that marks dir indexed when its first
// block overflows, with the filesystem's default hash version (half_md4
// when that is not one the engine writes).
func (t *tx) indexer(dir *inode) func() uint8 {
	return func() uint8 {
		dir.raw.Flags |= layout.FlagIndex
		t.dirtyInode(dir)
		if v := t.f.sb.DefHashVersion; v <= layout.HashTea {
			return v
		}
		return layout.HashHalfMD4
	}
}

// checkDirForWrite refuses what the engine cannot edit safely.
func (t *tx) checkDirForWrite(dir *inode) error {
	switch {
	case !dir.isDir():
		return fmt.Errorf("ext: inode %d: %w", dir.num, vfs.ErrNotDir)
	case dir.flag(layout.FlagEncrypt):
		return unsupported("writing in encrypted directory inode %d", dir.num)
	case dir.flag(layout.FlagIndex) && !t.f.geo.dirIndex && !dir.flag(layout.FlagInlineData):
		// Written as linear, its root's ".." slack (the index) would be
		// reused; e2fsck clears such a flag first.
		return corrupt("inode", uint64(dir.num), 0, -1, "directory has the index flag on a filesystem without dir_index (run e2fsck)")
	}
	return nil
}

// checkName validates a new entry's name for dir.
func (t *tx) checkName(dir *inode, name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("ext: entry name %q: %w", name, vfs.ErrInvalidPath)
	case len(name) > layout.MaxNameLen:
		return fmt.Errorf("ext: entry name of %d bytes (at most %d): %w", len(name), layout.MaxNameLen, vfs.ErrInvalidPath)
	case bytes.ContainsAny([]byte(name), "/\x00"):
		return fmt.Errorf("ext: entry name %q holds '/' or NUL: %w", name, vfs.ErrInvalidPath)
	case t.f.isCasefold(dir) && t.f.sb.EncodingFlags&layout.EncodingStrictMode != 0 && !utf8.ValidString(name):
		return fmt.Errorf("ext: entry name %q is not UTF-8 in a strict casefold directory: %w", name, vfs.ErrInvalidPath)
	}
	return nil
}

// matcher returns the test an entry's name must pass to be name, folded
// in a casefold directory as lookups fold it.
func (t *tx) matcher(dir *inode, name string) func([]byte) bool {
	key, fold := t.f.lookupKey(dir, []byte(name))
	return func(e []byte) bool { return t.f.nameMatches(e, key, fold) }
}

// stampDir records a change of dir's entries (mtime and ctime).
func (t *tx) stampDir(dir *inode) {
	t.setTimes(dir, false, true, true, false)
	t.dirtyInode(dir)
}

// addEntry adds name -> ino (of file type ftype, layout.FT*) to dir. It
// fails with an error wrapping fs.ErrExist when dir already has the name
// (compared casefolded in a casefold directory).
func (t *tx) addEntry(dir *inode, name string, ino uint32, ftype uint8) error {
	if err := t.checkDirForWrite(dir); err != nil {
		return err
	}
	if err := t.checkName(dir, name); err != nil {
		return err
	}
	match := t.matcher(dir, name)
	var err error
	if dir.flag(layout.FlagInlineData) {
		err = t.inlineAdd(dir, []byte(name), match, ino, ftype)
	} else {
		var w *dirw
		if w, err = t.dirWriter(dir); err == nil {
			if w.indexed {
				err = w.dxAdd([]byte(name), match, ino, ftype)
			} else {
				err = w.linearAdd([]byte(name), match, ino, ftype)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("ext: adding %s to directory inode %d: %w", quote([]byte(name)), dir.num, err)
	}
	t.stampDir(dir)
	return nil
}

// removeEntry removes name from dir and returns the inode it named; the
// inode itself is the caller's (links, freeing). It fails with an error
// wrapping fs.ErrNotExist when dir has no such name.
func (t *tx) removeEntry(dir *inode, name string) (uint32, error) {
	if err := t.checkDirForWrite(dir); err != nil {
		return 0, err
	}
	if name == "." || name == ".." {
		return 0, fmt.Errorf("ext: removing %q: %w", name, vfs.ErrInvalidPath)
	}
	match := t.matcher(dir, name)
	var ino uint32
	var err error
	if dir.flag(layout.FlagInlineData) {
		ino, err = t.inlineRemove(dir, match)
	} else {
		var w *dirw
		if w, err = t.dirWriter(dir); err == nil {
			if w.indexed {
				ino, err = w.dxRemove([]byte(name), match)
			} else {
				ino, err = w.linearRemove(match)
			}
		}
	}
	if err != nil {
		return 0, fmt.Errorf("ext: removing %s from directory inode %d: %w", quote([]byte(name)), dir.num, err)
	}
	t.stampDir(dir)
	return ino, nil
}

// initDir gives new directory dir (fresh from allocInode, mode set) its
// first block with "." and ".." (or, when the caller flagged it
// inline-data, the parent's number and an empty entry in i_block), two
// links, and one more link to its parent. The caller adds dir's entry to
// the parent.
func (t *tx) initDir(dir *inode, parent uint32) error {
	p, err := t.inode(parent)
	if err != nil {
		return err
	}
	if err := t.checkDirForWrite(p); err != nil {
		return err
	}
	if err := t.incDirLinks(p); err != nil {
		return err
	}
	dir.raw.LinksCount = 2
	dir.raw.Flags &^= layout.FlagIndex // a new directory starts linear
	if dir.flag(layout.FlagInlineData) {
		return t.initInlineDir(dir, parent)
	}
	w, err := t.dirWriter(dir)
	if err != nil {
		return err
	}
	_, b, err := w.st.grow()
	if err != nil {
		return err
	}
	dirblock.InitDot(b, w.lf, dir.num, parent)
	w.sealLeaf(b)
	t.dirtyInode(dir)
	return nil
}

// incDirLinks counts one more subdirectory in dir, as the kernel does:
// past 65,000 an indexed directory on a dir_nlink filesystem keeps 1
// ("many"); any other directory refuses (EMLINK).
func (t *tx) incDirLinks(dir *inode) error {
	n := uint32(dir.raw.LinksCount)
	many := t.f.sb.FeatureROCompat.Has(layout.ROCompatDirNlink) && t.f.indexed(dir)
	if n >= linkMax && !many {
		return fmt.Errorf("ext: directory inode %d has %d links: %w", dir.num, n, vfs.ErrTooManyLinks)
	}
	n++
	if many && (n > linkMax || n == 2) {
		n = 1
	}
	dir.raw.LinksCount = uint16(n)
	t.stampDir(dir)
	return nil
}

// decDirLinks counts one subdirectory less in dir (rmdir): a count of 1
// ("many") or 2 stays.
func (t *tx) decDirLinks(dir *inode) {
	if dir.raw.LinksCount > 2 {
		dir.raw.LinksCount--
	}
	t.stampDir(dir)
}

// dirIsEmpty reports whether dir holds nothing but "." and "..".
func (t *tx) dirIsEmpty(dir *inode) (bool, error) {
	if err := t.checkDirForWrite(dir); err != nil {
		return false, err
	}
	if dir.flag(layout.FlagInlineData) {
		has, err := t.inlineHasNames(dir)
		return !has, err
	}
	w, err := t.dirWriter(dir)
	if err != nil {
		return false, err
	}
	has, err := w.hasNames()
	return !has, err
}
