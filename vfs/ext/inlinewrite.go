package ext

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// rawXattr is one in-inode extended attribute as stored, kept byte for
// byte when the region is rewritten.
type rawXattr struct {
	index uint8
	name  []byte
	value []byte
	inum  uint32
	hash  uint32
}

// ibodyRegion returns the in-inode xattr region of in (after the magic),
// or nil when the inode has no room for one.
func (f *FS) ibodyRegion(in *inode) []byte {
	start := layout.InodeBaseSize + int(in.raw.ExtraIsize) + layout.XattrIbodyHeaderSize
	if f.geo.inodeSize <= layout.InodeBaseSize || start >= len(in.rec) {
		return nil
	}
	return in.rec[start:]
}

// ibodyRaw parses in's in-inode attributes (none when the magic is absent).
func (t *tx) ibodyRaw(in *inode) ([]rawXattr, error) {
	region := t.f.ibodyRegion(in)
	magicAt := layout.InodeBaseSize + int(in.raw.ExtraIsize)
	if region == nil || le32(in.rec, magicAt) != layout.XattrMagic {
		return nil, nil
	}
	if _, err := t.f.ibodyXattrs(in); err != nil { // validates every bound
		return nil, err
	}
	var out []rawXattr
	for off := 0; !layout.IsXattrListEnd(region[off:]); off += layout.XattrEntryLen(int(region[off])) {
		e, _ := layout.DecodeXattrEntry(region[off:])
		name := region[off+layout.XattrEntrySize : off+layout.XattrEntrySize+int(e.NameLen)]
		x := rawXattr{index: e.NameIndex, name: append([]byte(nil), name...), inum: e.ValueInum, hash: e.Hash}
		if e.ValueInum == 0 {
			x.value = append([]byte(nil), region[e.ValueOffs:int(e.ValueOffs)+int(e.ValueSize)]...)
		}
		out = append(out, x)
	}
	return out, nil
}

// putIbody lays xs out in in's xattr region: entries from the start,
// values packed from the end. It fails, changing nothing, when they do not
// fit.
func (t *tx) putIbody(in *inode, xs []rawXattr) error {
	region := t.f.ibodyRegion(in)
	need := 4
	for _, x := range xs {
		need += layout.XattrEntryLen(len(x.name)) + layout.XattrValueLen(len(x.value))
	}
	if region == nil || need > len(region) {
		return fmt.Errorf("%w: inode %d has no room for its in-inode attributes", errInlineFull, in.num)
	}
	magicAt := layout.InodeBaseSize + int(in.raw.ExtraIsize)
	clear(region)
	putLE32(in.rec[magicAt:], layout.XattrMagic)
	off, vend := 0, len(region)
	for _, x := range xs {
		voff := 0
		if len(x.value) > 0 {
			vend -= layout.XattrValueLen(len(x.value))
			voff = vend
			copy(region[vend:], x.value)
		}
		p := region[off:]
		p[0], p[1] = byte(len(x.name)), x.index
		binary.LittleEndian.PutUint16(p[2:], uint16(voff))
		putLE32(p[4:], x.inum)
		putLE32(p[8:], uint32(len(x.value)))
		putLE32(p[12:], x.hash)
		copy(p[layout.XattrEntrySize:], x.name)
		off += layout.XattrEntryLen(len(x.name))
	}
	return nil
}

// errInlineFull: content does not fit inline.
var errInlineFull = fmt.Errorf("ext: no room inline")

// xattrHash is the entry hash ext4 keeps for an attribute.
func xattrHash(name, value []byte) uint32 {
	h := uint32(0)
	for _, c := range name {
		h = h<<5 ^ h>>27 ^ uint32(int32(int8(c)))
	}
	padded := make([]byte, layout.XattrValueLen(len(value)))
	copy(padded, value)
	for i := 0; i+4 <= len(padded); i += 4 {
		h = h<<16 ^ h>>16 ^ le32(padded, i)
	}
	return h
}

// setInline stores data as in's inline content: the first 60 bytes in
// i_block, the rest as the system.data value. It fails with errInlineFull
// (changing nothing) when the in-inode xattr space is too small.
func (t *tx) setInline(in *inode, data []byte) error {
	xs, err := t.ibodyRaw(in)
	if err != nil {
		return err
	}
	var rest []byte
	if len(data) > layout.InodeBlockSize {
		rest = data[layout.InodeBlockSize:]
	}
	out := []rawXattr{{index: layout.XattrIndexSystem, name: []byte("data"), value: rest,
		hash: xattrHash([]byte("data"), rest)}}
	for _, x := range xs {
		if !isSystemData(x) {
			out = append(out, x)
		}
	}
	if err := t.putIbody(in, out); err != nil {
		return err
	}
	setIblock(in, data[:min(len(data), layout.InodeBlockSize)])
	t.setSize(in, int64(len(data)))
	t.dirtyInode(in)
	return nil
}

func isSystemData(x rawXattr) bool {
	return x.index == layout.XattrIndexSystem && string(x.name) == "data"
}

// uninline moves an inline-data file's content out to blocks: the
// system.data attribute goes, the inode gets an empty extent root (or
// block map) and the stored bytes are written back through writeData. A
// size past the stored bytes (a sparse tail, as mke2fs -d makes from a
// file of holes) is kept: the tail becomes a hole.
func (t *tx) uninline(in *inode) error {
	data, err := t.f.inlineContent(in)
	if err != nil {
		return err
	}
	size := in.size
	if err := t.dropInline(in); err != nil {
		return err
	}
	if err := t.writeData(in, 0, data); err != nil {
		return err
	}
	if size > int64(len(data)) {
		if err := t.checkMaxSize(in, size); err != nil {
			return err
		}
		t.setSize(in, size)
		t.dirtyInode(in)
	}
	return nil
}

// dropInline turns an inline-data inode (file or directory) into an empty
// block-mapped one: the system.data attribute goes, i_block gets an empty
// extent root (or an empty block map) and the size becomes 0. The caller
// has saved the content and writes it back.
func (t *tx) dropInline(in *inode) error {
	xs, err := t.ibodyRaw(in)
	if err != nil {
		return err
	}
	var keep []rawXattr
	for _, x := range xs {
		if !isSystemData(x) {
			keep = append(keep, x)
		}
	}
	if err := t.putIbody(in, keep); err != nil {
		return err
	}
	in.raw.Flags &^= layout.FlagInlineData
	setIblock(in, nil)
	if t.f.geo.extents {
		in.raw.Flags |= layout.FlagExtents
		setEmptyExtentRoot(in)
	}
	t.setSize(in, 0)
	t.dirtyInode(in)
	return nil
}

// truncateInline cuts an inline-data file to size bytes (at most its
// size). A size still past the stored bytes keeps them as they are: the
// rest of the file reads as zeros.
func (t *tx) truncateInline(in *inode, size int64) error {
	data, err := t.f.inlineContent(in)
	if err != nil {
		return err
	}
	if size > int64(len(data)) {
		t.setSize(in, size)
		t.dirtyInode(in)
		return nil
	}
	return t.setInline(in, data[:size])
}

// growInline grows an inline-data file to size bytes (at most an inode's
// size) by storing zeros after its content, or fails with errInlineFull,
// changing nothing, when they do not fit the inode.
func (t *tx) growInline(in *inode, size int64) error {
	data, err := t.f.inlineContent(in)
	if err != nil {
		return err
	}
	if size > int64(t.f.geo.inodeSize) {
		return fmt.Errorf("%w: inode %d cannot hold %d bytes", errInlineFull, in.num, size)
	}
	buf := make([]byte, size)
	copy(buf, data)
	return t.setInline(in, buf)
}

// writeInline writes data at off into an inline-data file, moving it out
// to blocks when the result no longer fits in the inode. The file's size
// may be past its stored bytes (a sparse tail): the result is only built
// in memory when it can fit an inode; otherwise the file moves out first,
// its tail a hole.
func (t *tx) writeInline(in *inode, off int64, data []byte) error {
	cur, err := t.f.inlineContent(in)
	if err != nil {
		return err
	}
	end := max(in.size, off+int64(len(data)))
	if end <= int64(t.f.geo.inodeSize) {
		buf := make([]byte, end)
		copy(buf, cur)
		copy(buf[off:], data)
		err = t.setInline(in, buf)
		if err == nil || !isNoRoom(err) {
			return err
		}
	}
	if err := t.uninline(in); err != nil {
		return err
	}
	return t.writeData(in, off, data)
}

func isNoRoom(err error) bool { return err != nil && errors.Is(err, errInlineFull) }

// canInline reports whether a new inode may keep its content inline:
// inline_data on, and room in the inode for the system.data attribute.
func (t *tx) canInline(in *inode) bool {
	if !t.f.sb.FeatureIncompat.Has(layout.IncompatInlineData) {
		return false
	}
	region := t.f.ibodyRegion(in)
	return len(region) >= 4+layout.XattrEntryLen(len("data"))
}

// makeInline turns a fresh inode into an (empty) inline-data one, as the
// kernel creates small files and directories on inline_data filesystems.
func makeInline(in *inode) {
	in.raw.Flags = in.raw.Flags&^layout.FlagExtents | layout.FlagInlineData
	setIblock(in, nil)
}

// writeNewFile writes the content of a new file: inline when it fits,
// else to blocks.
func (t *tx) writeNewFile(in *inode, data []byte) error {
	if len(data) > 0 && t.canInline(in) {
		makeInline(in)
		err := t.setInline(in, data)
		if err == nil || !isNoRoom(err) {
			return err
		}
		in.raw.Flags &^= layout.FlagInlineData
		if t.f.geo.extents {
			in.raw.Flags |= layout.FlagExtents
			setEmptyExtentRoot(in)
		}
	}
	return t.writeData(in, 0, data)
}
