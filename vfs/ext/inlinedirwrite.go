package ext

import (
	"encoding/binary"
	"fmt"
	"io/fs"

	"github.com/guestinject/guestinject/vfs/ext/internal/dirblock"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Inline-data directories keep the parent's number in the first 4 bytes
// of i_block, entries in the other 56, and more entries in the value of
// the in-inode system.data attribute. A new entry goes into either
// region when it has room, else the system.data value grows by the
// entry (when the inode has space), else the directory moves out to a
// block: "." and ".." first, then every entry, and the inode is then an
// ordinary linear directory — what the kernel does.

// inlineDir is an inline directory's two regions, copied out of the inode.
type inlineDir struct {
	ib  []byte // the 60 bytes of i_block
	val []byte // the system.data value
}

// entries returns region i (0: i_block past the parent, 1: the value).
func (d *inlineDir) region(i int) []byte {
	if i == 0 {
		return d.ib[inlineParentSize:]
	}
	return d.val
}

func (t *tx) readInlineDir(dir *inode) (*inlineDir, error) {
	val, err := t.f.inlineXattr(dir)
	if err != nil {
		return nil, err
	}
	d := &inlineDir{ib: dir.raw.BlockBytes(), val: append([]byte(nil), val...)}
	if p := le32(d.ib, 0); !t.f.validIno(p) {
		return nil, corrupt("inode", uint64(dir.num), 0, -1, "inline directory's parent %d is invalid", p)
	}
	return d, nil
}

// writeInlineDir stores the regions back into the inode.
func (t *tx) writeInlineDir(dir *inode, d *inlineDir) error {
	return t.setInline(dir, append(append([]byte(nil), d.ib...), d.val...))
}

func (t *tx) inlineLeafFmt() dirblock.Format {
	return dirblock.Format{BlockSize: int(t.f.geo.blockSize), Filetype: t.f.geo.filetype}
}

func (t *tx) inlineCorrupt(dir *inode, region int, err error) error {
	return corrupt("inline directory region", uint64(region), dir.num, -1, "%v", err)
}

// inlineFind reports which region holds the entry match accepts (-1: none).
func (t *tx) inlineFind(dir *inode, d *inlineDir, match func([]byte) bool) (int, error) {
	lf := t.inlineLeafFmt()
	for i := 0; i < 2; i++ {
		_, found, err := dirblock.Find(d.region(i), lf, match)
		if err != nil {
			return -1, t.inlineCorrupt(dir, i, err)
		}
		if found {
			return i, nil
		}
	}
	return -1, nil
}

// inlineAdd adds an entry to inline directory dir.
func (t *tx) inlineAdd(dir *inode, name []byte, match func([]byte) bool, ino uint32, ftype uint8) error {
	d, err := t.readInlineDir(dir)
	if err != nil {
		return err
	}
	if i, err := t.inlineFind(dir, d, match); err != nil || i >= 0 {
		if i >= 0 {
			return fs.ErrExist
		}
		return err
	}
	lf := t.inlineLeafFmt()
	for i := 0; i < 2; i++ {
		if ok, _ := dirblock.Insert(d.region(i), lf, name, ino, ftype); ok {
			return t.writeInlineDir(dir, d)
		}
	}
	grown := growInlineValue(d.val, lf, layout.DirentSize(len(name)))
	if ok, _ := dirblock.Insert(grown, lf, name, ino, ftype); ok {
		err := t.writeInlineDir(dir, &inlineDir{ib: d.ib, val: grown})
		if !isNoRoom(err) {
			return err
		}
	}
	if err := t.inlineDirToBlock(dir, d); err != nil {
		return err
	}
	w, err := t.dirWriter(dir)
	if err != nil {
		return err
	}
	return w.linearAdd(name, match, ino, ftype)
}

// growInlineValue returns the system.data value lengthened by n bytes of
// free space: the last entry's rec_len covers them, or, in an empty
// value, one unused entry does.
func growInlineValue(val []byte, lf dirblock.Format, n int) []byte {
	out := append(append([]byte(nil), val...), make([]byte, n)...)
	if len(val) == 0 {
		layout.PutDirent(out, 0, n, nil, 0, lf.Filetype)
		return out
	}
	last := -1
	dirblock.Walk(val, lf, func(s dirblock.Slot) bool { last = s.Off; return false })
	if last < 0 {
		return val // unreadable: the caller's insert fails and the directory moves out
	}
	d, _ := layout.DecodeDirent(out[last:])
	binary.LittleEndian.PutUint16(out[last+4:], layout.EncodeRecLen(d.RecLength(lf.BlockSize)+n))
	return out
}

// inlineDirToBlock moves inline directory dir out to its first block.
func (t *tx) inlineDirToBlock(dir *inode, d *inlineDir) error {
	lf := t.inlineLeafFmt()
	var es []dirblock.Entry
	for i := 0; i < 2; i++ {
		more, err := dirblock.Entries(d.region(i), lf)
		if err != nil {
			return t.inlineCorrupt(dir, i, err)
		}
		es = append(es, more...)
	}
	if err := t.dropInline(dir); err != nil {
		return err
	}
	w, err := t.dirWriter(dir)
	if err != nil {
		return err
	}
	_, b, err := w.st.grow()
	if err != nil {
		return err
	}
	dirblock.InitDot(b, w.lf, dir.num, le32(d.ib, 0))
	w.sealLeaf(b)
	for _, e := range es {
		if err := w.linearAdd(e.Name, func(n []byte) bool { return string(n) == string(e.Name) }, e.Ino, e.Ftype); err != nil {
			return fmt.Errorf("moving entry %q out of inline directory inode %d: %w", e.Name, dir.num, err)
		}
	}
	return nil
}

// inlineRemove removes the entry match accepts from inline directory dir.
func (t *tx) inlineRemove(dir *inode, match func([]byte) bool) (uint32, error) {
	d, err := t.readInlineDir(dir)
	if err != nil {
		return 0, err
	}
	lf := t.inlineLeafFmt()
	for i := 0; i < 2; i++ {
		ino, found, err := dirblock.Remove(d.region(i), lf, match)
		if err != nil {
			return 0, t.inlineCorrupt(dir, i, err)
		}
		if found {
			return ino, t.writeInlineDir(dir, d)
		}
	}
	return 0, fs.ErrNotExist
}

// inlineHasNames reports whether inline directory dir holds any entry.
func (t *tx) inlineHasNames(dir *inode) (bool, error) {
	d, err := t.readInlineDir(dir)
	if err != nil {
		return false, err
	}
	lf := t.inlineLeafFmt()
	for i := 0; i < 2; i++ {
		has, err := dirblock.HasNames(d.region(i), lf)
		if err != nil || has {
			return has, err
		}
	}
	return false, nil
}

// initInlineDir makes dir an empty inline directory: the parent's number,
// then one unused entry over the rest of i_block, and an empty
// system.data value (i_size 60), as the kernel creates one.
func (t *tx) initInlineDir(dir *inode, parent uint32) error {
	ib := make([]byte, layout.InodeBlockSize)
	binary.LittleEndian.PutUint32(ib, parent)
	layout.PutDirent(ib[inlineParentSize:], 0, len(ib)-inlineParentSize, nil, 0, t.f.geo.filetype)
	dir.raw.Flags &^= layout.FlagExtents
	return t.setInline(dir, ib)
}
