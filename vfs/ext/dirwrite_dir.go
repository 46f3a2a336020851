package ext

import (
	"fmt"
	"io/fs"

	"github.com/guestinject/guestinject/vfs/ext/internal/dirblock"
)

// The directory write engine works on blocks it is handed, never on the
// image: dirStore (dirwrite_tx.go adapts a transaction to it) gives it
// modifiable copies of a directory's logical blocks and appends blocks;
// the entries inside one leaf are dirblock's. Everything here keeps a
// block valid at each step it returns from: rec_len chains that cover the
// block exactly, the dirent tail and its checksum, dx count/limit pairs
// and dx tails.

// dirStore is what the directory writer needs from a transaction: the
// logical blocks of one block-backed directory.
type dirStore interface {
	// block returns logical block lblk as a modifiable buffer that is
	// written back when the transaction commits. Asking twice for the
	// same block within a transaction returns the same buffer.
	block(lblk uint64) ([]byte, error)
	// peek returns logical block lblk to read only: the transaction's
	// buffer if it holds the block, else the read cache's. Scans use it so
	// that blocks they do not change are not written back.
	peek(lblk uint64) ([]byte, error)
	// grow appends a zeroed block to the directory (i_size follows) and
	// returns its logical number and buffer.
	grow() (uint64, []byte, error)
	// blocks is the directory's length in blocks.
	blocks() uint64
}

// dirw edits one block-backed directory through a dirStore.
type dirw struct {
	st        dirStore
	ino       uint32
	lf        dirblock.Format
	csum      bool   // metadata_csum: seal leaves and index nodes
	seed      uint32 // the directory inode's checksum seed
	indexed   bool   // an htree directory
	maxLevels int    // index levels allowed, root included (2, or 3 with large_dir)
	// hashName hashes a name for an index of the given dx_root hash
	// version (folding and the signed/unsigned choice included).
	hashName func(name []byte, version uint8) (uint32, error)
	// makeIndexed, when set, turns a full one-block linear directory into
	// an indexed one (as the kernel's make_indexed_dir): it is given the
	// hash version for the new root and marks the inode indexed.
	makeIndexed func() (version uint8)
}

func (w *dirw) leafCorrupt(lblk uint64, err error) error {
	return corrupt("directory block", lblk, w.ino, -1, "%v", err)
}

// leaf returns leaf block lblk to modify, its tail checksum verified.
func (w *dirw) leaf(lblk uint64) ([]byte, error) {
	b, err := w.st.block(lblk)
	if err != nil {
		return nil, err
	}
	return b, w.checkLeaf(lblk, b)
}

// leafView returns leaf block lblk to read only, its checksum verified.
func (w *dirw) leafView(lblk uint64) ([]byte, error) {
	b, err := w.st.peek(lblk)
	if err != nil {
		return nil, err
	}
	return b, w.checkLeaf(lblk, b)
}

// checkLeaf verifies the tail checksum of leaf b (metadata_csum).
func (w *dirw) checkLeaf(lblk uint64, b []byte) error {
	if !w.csum {
		return nil
	}
	ok, hasTail := dirblock.ChecksumOK(b, w.seed)
	switch {
	case !hasTail:
		return &CorruptError{What: "directory block", Num: lblk, Ino: w.ino, Offset: -1, Detail: "no checksum tail", Err: ErrChecksum}
	case !ok:
		return &CorruptError{What: "directory block", Num: lblk, Ino: w.ino, Offset: -1, Detail: "tail checksum does not match", Err: ErrChecksum}
	}
	return nil
}

// sealLeaf recomputes the checksum of a leaf the writer changed.
func (w *dirw) sealLeaf(b []byte) {
	if w.csum {
		dirblock.Seal(b, w.seed)
	}
}

// newLeaf appends an empty leaf to the directory.
func (w *dirw) newLeaf() (uint64, []byte, error) {
	lblk, b, err := w.st.grow()
	if err != nil {
		return 0, nil, err
	}
	if len(b) != w.lf.BlockSize {
		return 0, nil, fmt.Errorf("ext: directory inode %d: new block of %d bytes, want %d", w.ino, len(b), w.lf.BlockSize)
	}
	dirblock.Init(b, w.lf)
	return lblk, b, nil
}

// linearAdd adds an entry to a directory without an index: in the first
// block with room (after making sure no entry has the name), else in a
// new block.
func (w *dirw) linearAdd(name []byte, match func([]byte) bool, ino uint32, ftype uint8) error {
	need := len(name) + 8
	room := int64(-1)
	for lblk := uint64(0); lblk < w.st.blocks(); lblk++ {
		b, err := w.leafView(lblk)
		if err != nil {
			return err
		}
		_, found, err := dirblock.Find(b, w.lf, match)
		if err != nil {
			return w.leafCorrupt(lblk, err)
		}
		if found {
			return fs.ErrExist
		}
		if room < 0 {
			if _, ok, _ := dirblock.Room(b, w.lf, direntSize(need)); ok {
				room = int64(lblk)
			}
		}
	}
	if room < 0 && w.makeIndexed != nil && w.st.blocks() == 1 {
		converted, err := w.toIndexed()
		if err != nil {
			return err
		}
		if converted {
			return w.dxAdd(name, match, ino, ftype)
		}
	}
	var b []byte
	var err error
	if room >= 0 {
		b, err = w.leaf(uint64(room))
	} else {
		_, b, err = w.newLeaf()
	}
	if err != nil {
		return err
	}
	if ok, err := dirblock.Insert(b, w.lf, name, ino, ftype); err != nil || !ok {
		return fmt.Errorf("ext: directory inode %d: entry does not fit a leaf with room: %w", w.ino, dirblock.ErrNoRoom)
	}
	w.sealLeaf(b)
	return nil
}

// direntSize is layout.DirentSize for a header-included length.
func direntSize(n int) int { return (n + 3) &^ 3 }

// linearRemove removes the entry match accepts from a directory without
// an index and returns its inode number.
func (w *dirw) linearRemove(match func([]byte) bool) (uint32, error) {
	for lblk := uint64(0); lblk < w.st.blocks(); lblk++ {
		b, err := w.leafView(lblk)
		if err != nil {
			return 0, err
		}
		_, found, err := dirblock.Find(b, w.lf, match)
		if err != nil {
			return 0, w.leafCorrupt(lblk, err)
		}
		if found {
			return w.removeIn(lblk, match)
		}
	}
	return 0, fs.ErrNotExist
}

// hasNames reports whether the directory holds an entry other than "."
// and "..". Index blocks of an htree are recognised and skipped.
func (w *dirw) hasNames() (bool, error) {
	for lblk := uint64(0); lblk < w.st.blocks(); lblk++ {
		if w.indexed && lblk == 0 {
			continue // the root: "." and "..", then the index
		}
		b, err := w.st.peek(lblk)
		if err != nil {
			return false, err
		}
		if w.indexed && isDxNode(b, w.lf.BlockSize) {
			continue
		}
		if b, err = w.leafView(lblk); err != nil {
			return false, err
		}
		found, err := dirblock.HasNames(b, w.lf)
		if err != nil {
			return false, w.leafCorrupt(lblk, err)
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// removeIn removes the entry match accepts from leaf lblk.
func (w *dirw) removeIn(lblk uint64, match func([]byte) bool) (uint32, error) {
	b, err := w.leaf(lblk)
	if err != nil {
		return 0, err
	}
	ino, found, err := dirblock.Remove(b, w.lf, match)
	if err != nil {
		return 0, w.leafCorrupt(lblk, err)
	}
	if !found {
		return 0, fs.ErrNotExist
	}
	w.sealLeaf(b)
	return ino, nil
}
