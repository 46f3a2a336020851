package ext

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var _ vfs.XattrWriter = (*FS)(nil)

// SetXattr creates or replaces one attribute of the object at p (a final
// symlink is not followed), in one transaction. As the kernel places
// them, the attribute goes into the inode's in-body area when it fits
// there, else into the inode's xattr block (allocated if it has none; a
// block shared with other inodes, h_refcount > 1, is copied first and the
// shared one's count lowered). Checksums are resealed at commit. The
// user., trusted. and security. namespaces are written; system.* (POSIX
// ACLs, inline data) and values that would need an EA inode are refused
// (vfs.ErrUnsupported), as is an inode whose attributes already live in
// EA inodes. No room in the block is vfs.ErrNoSpace.
func (f *FS) SetXattr(p, name string, value []byte) error {
	defer f.wlock()()
	if err := vfs.CheckXattr(name, value); err != nil {
		return vfs.PathErr("setxattr", p, err)
	}
	idx, suffix, err := xattrIndex(name)
	if err != nil {
		return vfs.PathErr("setxattr", p, err)
	}
	return f.changeNoFollow("setxattr", p, func(t *tx, in *inode) error {
		return t.setXattr(in, idx, suffix, value, false)
	})
}

// RemoveXattr deletes one attribute of the object at p (a final symlink
// is not followed); a missing one is vfs.ErrNoXattr. An xattr block left
// empty is released (freed, or its reference count lowered).
func (f *FS) RemoveXattr(p, name string) error {
	defer f.wlock()()
	if err := vfs.CheckXattr(name, nil); err != nil {
		return vfs.PathErr("removexattr", p, err)
	}
	idx, suffix, err := xattrIndex(name)
	if err != nil {
		return vfs.PathErr("removexattr", p, err)
	}
	return f.changeNoFollow("removexattr", p, func(t *tx, in *inode) error {
		return t.setXattr(in, idx, suffix, nil, true)
	})
}

// xattrIndex splits a full attribute name into the on-disk name index
// and the stored suffix.
func xattrIndex(name string) (uint8, []byte, error) {
	for _, ns := range []struct {
		prefix string
		index  uint8
	}{{"user.", layout.XattrIndexUser}, {"trusted.", layout.XattrIndexTrusted}, {"security.", layout.XattrIndexSecurity}} {
		if s, ok := strings.CutPrefix(name, ns.prefix); ok {
			return ns.index, []byte(s), nil
		}
	}
	return 0, nil, fmt.Errorf("%w: writing attribute %.80q (only user., trusted. and security. are written)", vfs.ErrUnsupported, name)
}

// setXattr sets (or, with remove, deletes) attribute index/suffix of in.
func (t *tx) setXattr(in *inode, index uint8, suffix, value []byte, remove bool) error {
	if in.flag(layout.FlagEAInode) {
		return unsupported("attributes of EA inode %d", in.num)
	}
	body, err := t.ibodyRaw(in)
	if err != nil {
		return err
	}
	blk, shared, err := t.blockRaw(in)
	if err != nil {
		return err
	}
	for _, x := range slices.Concat(body, blk) {
		if x.inum != 0 {
			return unsupported("changing the attributes of inode %d, whose %q lives in EA inode %d", in.num, x.name, x.inum)
		}
	}
	same := func(x rawXattr) bool { return x.index == index && bytes.Equal(x.name, suffix) }
	nb, nk := len(body), len(blk)
	body = slices.DeleteFunc(body, same)
	blk = slices.DeleteFunc(blk, same)
	bodyChanged, blkChanged := len(body) != nb, len(blk) != nk
	if remove && !bodyChanged && !blkChanged {
		return fmt.Errorf("inode %d: %w", in.num, vfs.ErrNoXattr)
	}
	if !remove {
		x := rawXattr{index: index, name: slices.Clone(suffix), value: slices.Clone(value), hash: xattrHash(suffix, value)}
		err := t.putIbody(in, append(slices.Clone(body), x))
		switch {
		case err == nil:
			bodyChanged = false // written
		case isNoRoom(err):
			blk, blkChanged = append(blk, x), true
		default:
			return err
		}
	}
	if bodyChanged {
		if err := t.putIbody(in, body); err != nil {
			return err
		}
	}
	if blkChanged {
		if err := t.putXattrBlock(in, blk, shared); err != nil {
			return err
		}
	}
	t.setTimes(in, false, true, false, false)
	t.dirtyInode(in)
	return nil
}

// blockRaw returns the attributes of in's xattr block as stored, and
// whether the block is shared (h_refcount > 1).
func (t *tx) blockRaw(in *inode) ([]rawXattr, bool, error) {
	n := in.raw.FileACL()
	if n == 0 {
		return nil, false, nil
	}
	if !t.f.validBlock(n) {
		return nil, false, corrupt("inode", uint64(in.num), 0, -1, "xattr block %d outside the filesystem", n)
	}
	b, err := t.metaBlock(n, kindXattr)
	if err != nil {
		return nil, false, err
	}
	if err := t.f.checkXattrBlock(b, n, in.num); err != nil {
		return nil, false, err
	}
	if _, err := t.f.parseXattrs(b[layout.XattrHeaderSize:], b, "xattr block", n, in.num); err != nil {
		return nil, false, err // validates every bound used below
	}
	h, _ := layout.DecodeXattrHeader(b)
	var out []rawXattr
	entries := b[layout.XattrHeaderSize:]
	for off := 0; !layout.IsXattrListEnd(entries[off:]); off += layout.XattrEntryLen(int(entries[off])) {
		e, _ := layout.DecodeXattrEntry(entries[off:])
		name := entries[off+layout.XattrEntrySize : off+layout.XattrEntrySize+int(e.NameLen)]
		x := rawXattr{index: e.NameIndex, name: slices.Clone(name), inum: e.ValueInum, hash: e.Hash}
		if e.ValueInum == 0 {
			x.value = slices.Clone(b[e.ValueOffs : int(e.ValueOffs)+int(e.ValueSize)])
		}
		out = append(out, x)
	}
	return out, h.Refcount > 1, nil
}

// putXattrBlock makes xs the content of in's xattr block: none releases
// the block; a private block is rewritten in place; a shared or missing
// one is replaced by a newly allocated block.
func (t *tx) putXattrBlock(in *inode, xs []rawXattr, shared bool) error {
	bs := int(t.f.geo.blockSize)
	need := layout.XattrHeaderSize + 4
	for _, x := range xs {
		need += layout.XattrEntryLen(len(x.name)) + layout.XattrValueLen(len(x.value))
	}
	if need > bs {
		return fmt.Errorf("inode %d: attributes need %d bytes, the xattr block holds %d: %w", in.num, need, bs, vfs.ErrNoSpace)
	}
	old := in.raw.FileACL()
	if len(xs) == 0 || shared {
		if err := t.dropXattrBlock(in); err != nil {
			return err
		}
		if len(xs) == 0 {
			return nil
		}
		old = 0
	}
	var b []byte
	var err error
	if old != 0 {
		if err := t.checkTarget(kindXattr, in.num, -1, old); err != nil {
			return err
		}
		if b, err = t.metaBlock(old, kindXattr); err != nil {
			return err
		}
	} else {
		if err := t.checkBlocksRoom(in, t.f.ratio()); err != nil {
			return err
		}
		if old, err = t.allocBlock(t.inodeGoal(in)); err != nil {
			return err
		}
		b = t.newBlock(old, kindXattr)
		in.raw.SetFileACL(old)
		t.addBlocks(in, int64(t.f.ratio())) // the block takes a whole cluster
	}
	encodeXattrBlock(b, xs)
	blk := old
	return t.onSeal(blk, func(b []byte) { t.sealXattrBlock(blk, b) })
}

// encodeXattrBlock lays xs out as a private xattr block (refcount 1):
// the header, entries sorted as the kernel keeps a block's (index, name
// length, name), values packed down from the end, and the block hash
// over the entry hashes.
func encodeXattrBlock(b []byte, xs []rawXattr) {
	xs = slices.Clone(xs)
	slices.SortFunc(xs, func(a, c rawXattr) int {
		if a.index != c.index {
			return int(a.index) - int(c.index)
		}
		if len(a.name) != len(c.name) {
			return len(a.name) - len(c.name)
		}
		return bytes.Compare(a.name, c.name)
	})
	clear(b)
	le := binary.LittleEndian
	le.PutUint32(b[0:], layout.XattrMagic)
	le.PutUint32(b[4:], 1) // h_refcount
	le.PutUint32(b[8:], 1) // h_blocks
	off, vend := layout.XattrHeaderSize, len(b)
	var hash uint32
	for _, x := range xs {
		voff := 0
		if len(x.value) > 0 {
			vend -= layout.XattrValueLen(len(x.value))
			voff = vend
			copy(b[vend:], x.value)
		}
		e := b[off:]
		e[0], e[1] = byte(len(x.name)), x.index
		le.PutUint16(e[2:], uint16(voff))
		le.PutUint32(e[8:], uint32(len(x.value)))
		le.PutUint32(e[12:], x.hash)
		copy(e[layout.XattrEntrySize:], x.name)
		off += layout.XattrEntryLen(len(x.name))
		hash = hash<<16 ^ hash>>16 ^ x.hash
	}
	if slices.ContainsFunc(xs, func(x rawXattr) bool { return x.hash == 0 }) {
		hash = 0 // an unhashed entry leaves the block unhashed, as the kernel's rehash does
	}
	le.PutUint32(b[12:], hash)
}
