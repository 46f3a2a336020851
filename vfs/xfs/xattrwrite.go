package xfs

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// Extended attribute writes (vfs.XattrWriter), in the two forms the
// kernel starts with, chosen by its rules:
//
//   - short form, in the inode's literal area after the data fork. The
//     attr fork is created on first use with di_forkoff placed as the
//     kernel's xfs_attr_shortform_bytesfit places it (attr2: as far
//     right as the attributes allow, never cutting into the data fork's
//     bytes, the data fork keeping room for a three-pointer btree root;
//     attr1 filesystems: the fixed default offset), and a data fork the
//     new offset no longer holds is converted first: a short-form
//     directory to a block, an extent list to a bmap btree, a btree
//     root laid out again for its smaller area. On v4 the superblock's
//     ATTR bit is set when the first fork is created, as the kernel sets
//     it. Removing the last attribute removes the fork (attr2, data fork
//     not a btree), as the kernel does.
//   - one leaf block (attr3 leaf on v5, with CRC, owner, disk address,
//     UUID and LSN), once a name or value of 255 bytes or more, or the
//     literal area, rules short form out: entries in hash order (the da
//     hash of the name), names and values packed from the block's end, a
//     one-slot free map. A value whose local record would take three
//     quarters of the block or more goes to remote blocks (each with its
//     XARM header on v5) at the first unused attr-fork offset. Removal
//     frees remote blocks, and returns to short form when every
//     remaining attribute would fit there (xfs_attr_shortform_allfit).
//   - a node at block 0 over one level of leaves, once one leaf is not
//     enough: the entries packed in hash order, as full as they go, a
//     run of equal hashes never split (xfs_repair wants each leaf's
//     hashes above the previous one's), the node's entries the highest
//     hash of each leaf, leaves linked as siblings. Every operation lays
//     all leaves out again (cost follows the attributes of the inode). A
//     set keeps every leaf (it only allocates); a removal frees leaves no
//     longer needed, from the highest offset down, and a node left with
//     one leaf becomes that leaf at block 0.
//
// Refused before anything is written (ErrUnsupportedFeature): more
// leaves than one node block points at (a deeper da btree), an attr
// fork already deeper or mapped by a bmap btree, attr-fork extents
// beyond what the inode's attr area holds (a removal that would split
// them past it included), an inline symlink the new fork offset would
// cut, a data fork btree root with no room left.
//
// Namespaces: user. (no flag), trusted. (ROOT), security. (SECURE);
// system.posix_acl_access and system.posix_acl_default are stored as
// XFS stores ACLs (trusted SGI_ACL_FILE, SGI_ACL_DEFAULT, big-endian
// entries), the mapping xattr.go reads back. Other system.* names are
// refused.

var _ vfs.XattrWriter = (*FS)(nil)

// attrKey is an attribute as stored: namespace flags and name.
type attrKey struct {
	flags uint8 // layout.AttrRoot, layout.AttrSecure or 0 (user)
	name  string
}

// attrEnt is one stored attribute.
type attrEnt struct {
	attrKey
	value  []byte // a local value
	remote bool   // the value lives in remote blocks
	blk    uint32 // remote: first attr-fork block
	vlen   uint32 // remote: value bytes
}

// attrForm is the form of an inode's attributes.
type attrForm uint8

const (
	attrNone attrForm = iota // no attr fork
	attrSF                   // short form (or an empty fork)
	attrLeaf                 // one leaf block (block 0)
	attrNode                 // a node at block 0 over one level of leaves
)

// attrState is what an inode's attr fork holds.
type attrState struct {
	form   attrForm
	ents   []attrEnt
	exts   []layout.Extent  // leaf, node: the attr fork's extents
	leaves []uint64         // node: the leaves' attr-fork blocks, in hash order
	keys   map[attrKey]bool // while reading: the names seen
}

// find returns the index of key, -1 when absent.
func (s *attrState) find(k attrKey) int {
	return slices.IndexFunc(s.ents, func(e attrEnt) bool { return e.attrKey == k })
}

// SetXattr creates or replaces one attribute of the object at p (a
// final symlink is not followed). Replacing a value held in remote
// blocks frees them in a transaction of its own first (freed space is
// written after the references to it, writeorder.go), then sets the
// new value; inject/diskimage's stage keeps the pair all-or-nothing.
func (f *FS) SetXattr(p, name string, value []byte) error {
	defer f.wlock()()
	if err := f.writable("setxattr", p); err != nil {
		return err
	}
	if err := vfs.CheckXattr(name, value); err != nil {
		return vfs.PathErr("setxattr", p, err)
	}
	key, value, err := f.attrKeyOf(name, value, true)
	if err != nil {
		return vfs.PathErr("setxattr", p, err)
	}
	_, in, err := f.resolve("setxattr", p, false)
	if err != nil {
		return err
	}
	now := f.now()
	st, err := f.loadAttrs(in)
	if err != nil {
		return vfs.PathErr("setxattr", p, err)
	}
	if i := st.find(key); i >= 0 && st.ents[i].remote {
		// Refuse what the set would refuse before the removal lands.
		ents := slices.Clone(st.ents)
		ents[i] = attrEnt{attrKey: key, value: value}
		if err := f.checkLeafFits(in.ino, ents); err != nil {
			return vfs.PathErr("setxattr", p, err)
		}
		// The removal and the set are built together once, written
		// never, so that what only the set refuses (a fork that must
		// become a bmap btree, a deeper node) fails before the removal
		// has landed.
		if err := f.inTx(func(t *tx) error {
			if err := t.attrChange(in.ino, key, nil, true, now); err != nil {
				return err
			}
			if err := t.attrChange(in.ino, key, value, false, now); err != nil {
				return err
			}
			return errRehearsed
		}); !errors.Is(err, errRehearsed) {
			return vfs.PathErr("setxattr", p, err)
		}
		if err := f.inTx(func(t *tx) error { return t.attrChange(in.ino, key, nil, true, now) }); err != nil {
			return vfs.PathErr("setxattr", p, err)
		}
	}
	if err := f.inTx(func(t *tx) error { return t.attrChange(in.ino, key, value, false, now) }); err != nil {
		return vfs.PathErr("setxattr", p, err)
	}
	return nil
}

// RemoveXattr deletes one attribute of the object at p (a final symlink
// is not followed); a missing one is vfs.ErrNoXattr.
func (f *FS) RemoveXattr(p, name string) error {
	defer f.wlock()()
	if err := f.writable("removexattr", p); err != nil {
		return err
	}
	if err := vfs.CheckXattr(name, nil); err != nil {
		return vfs.PathErr("removexattr", p, err)
	}
	key, _, err := f.attrKeyOf(name, nil, false)
	if err != nil {
		return vfs.PathErr("removexattr", p, err)
	}
	_, in, err := f.resolve("removexattr", p, false)
	if err != nil {
		return err
	}
	now := f.now()
	if err := f.inTx(func(t *tx) error { return t.attrChange(in.ino, key, nil, true, now) }); err != nil {
		return vfs.PathErr("removexattr", p, err)
	}
	return nil
}

// attrKeyOf maps a full attribute name to its stored namespace and name,
// and a POSIX ACL value (set true) to XFS's on-disk ACL.
func (f *FS) attrKeyOf(name string, value []byte, set bool) (attrKey, []byte, error) {
	switch name {
	case posixACLAccess, posixACLDefault:
		k := attrKey{flags: layout.AttrRoot, name: aclFileName}
		if name == posixACLDefault {
			k.name = aclDefaultName
		}
		if !set {
			return k, nil, nil
		}
		max := 25 // XFS_ACL_MAX_ENTRIES on v4
		if f.geo.crc {
			max = (maxXattrValue - 4) / 12
		}
		v, err := xattrToACL(value, max)
		return k, v, err
	}
	for _, ns := range []struct {
		prefix string
		flags  uint8
	}{{"user.", 0}, {"trusted.", layout.AttrRoot}, {"security.", layout.AttrSecure}} {
		if s, ok := strings.CutPrefix(name, ns.prefix); ok {
			return attrKey{flags: ns.flags, name: s}, value, nil
		}
	}
	return attrKey{}, nil, fmt.Errorf("%w: writing attribute %.80q (user., trusted., security. and the POSIX ACLs are written)", ErrUnsupportedFeature, name)
}

// xattrToACL converts the xattr interface's POSIX ACL (little-endian
// version 2 header, then tag, perm, id entries of 8 bytes) to XFS's
// on-disk ACL (big-endian count, then tag, id, perm, pad entries of 12),
// checking it is a valid ACL: known tags, one owner, owning group and
// other entry each, a mask when named entries are present.
func xattrToACL(v []byte, maxEntries int) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("POSIX ACL: %s: %w", fmt.Sprintf(format, args...), fs.ErrInvalid)
	}
	if len(v) < 4 || (len(v)-4)%8 != 0 {
		return nil, bad("%d bytes is no version header and whole entries", len(v))
	}
	if ver := binary.LittleEndian.Uint32(v); ver != 2 {
		return nil, bad("version %d, want 2", ver)
	}
	n := (len(v) - 4) / 8
	if n > maxEntries {
		return nil, bad("%d entries, this filesystem stores at most %d", n, maxEntries)
	}
	const (
		userObj, user, groupObj, group, mask, other = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
		undefinedID                                 = 0xFFFFFFFF
	)
	seen := map[uint16]int{}
	out := binary.BigEndian.AppendUint32(nil, uint32(n))
	for i := 0; i < n; i++ {
		e := v[4+i*8:]
		tag, perm, id := binary.LittleEndian.Uint16(e), binary.LittleEndian.Uint16(e[2:]), binary.LittleEndian.Uint32(e[4:])
		switch tag {
		case user, group:
		case userObj, groupObj, mask, other:
			id = undefinedID
		default:
			return nil, bad("entry %d has tag %#x", i, tag)
		}
		if perm&^7 != 0 {
			return nil, bad("entry %d has permissions %#o", i, perm)
		}
		seen[tag]++
		out = binary.BigEndian.AppendUint32(out, uint32(tag))
		out = binary.BigEndian.AppendUint32(out, id)
		out = binary.BigEndian.AppendUint16(out, perm)
		out = binary.BigEndian.AppendUint16(out, 0)
	}
	if seen[userObj] != 1 || seen[groupObj] != 1 || seen[other] != 1 || seen[mask] > 1 ||
		(seen[user]+seen[group] > 0 && seen[mask] != 1) {
		return nil, bad("owner, owning group and other must appear once each, and a mask once with named entries")
	}
	return out, nil
}

// loadAttrs reads the attributes of in as the writer edits them, with
// their namespace flags; a form the writer does not edit is refused.
func (f *FS) loadAttrs(in *inode) (*attrState, error) {
	if in.attr == nil {
		return &attrState{form: attrNone}, nil
	}
	switch {
	case in.core.AFormat == layout.FormatLocal:
		ents, err := f.sfAttrEnts(in)
		return &attrState{form: attrSF, ents: ents}, err
	case in.core.AFormat == layout.FormatExtents && in.core.AttrExtents() == 0:
		return &attrState{form: attrSF}, nil // a fork with nothing in it yet
	case in.core.AFormat == layout.FormatBtree:
		return nil, unsupported("writing the attributes of inode %d, whose attr fork is a bmap btree", in.ino)
	}
	exts, err := f.readForkExtents(in, true)
	if err != nil {
		return nil, err
	}
	b, err := f.attrBlock(in, exts, 0)
	if err != nil {
		return nil, err
	}
	st := &attrState{form: attrLeaf, exts: exts}
	if m := binary.BigEndian.Uint16(b[8:]); uint32(m) != f.daNodeMagic() {
		return st, f.parseAttrLeaf(in, st, b, 0, 0, 0)
	}
	// A node: one level over leaves (deeper trees are refused).
	st.form = attrNode
	w := where{what: "attr node", ag: -1, block: 0, ino: in.ino, off: -1}
	nh, err := layout.DecodeDANodeHdr(b[f.daInfoSize():])
	if err != nil {
		return nil, w.corrupt("%v", err)
	}
	if nh.Level != 1 {
		return nil, unsupported("writing the attributes of inode %d, whose da btree has %d levels (one node over leaves is written)", in.ino, nh.Level+1)
	}
	if nh.Count == 0 || int(nh.Count) > (len(b)-f.nodeHdrSize())/layout.DANodeEntrySize {
		return nil, w.corrupt("node with %d entries", nh.Count)
	}
	seen := map[uint64]bool{0: true}
	for i := 0; i < int(nh.Count); i++ {
		e, _ := layout.DecodeDANodeEntry(b[f.nodeHdrSize()+i*layout.DANodeEntrySize:])
		fb := uint64(e.Before)
		if seen[fb] {
			return nil, w.corrupt("entry %d points at block %d twice or at the root", i, fb)
		}
		seen[fb] = true
		var back, forw uint32
		if i > 0 {
			back = uint32(st.leaves[i-1])
		}
		if i+1 < int(nh.Count) {
			ne, _ := layout.DecodeDANodeEntry(b[f.nodeHdrSize()+(i+1)*layout.DANodeEntrySize:])
			forw = ne.Before
		}
		lb, err := f.attrBlock(in, exts, fb)
		if err != nil {
			return nil, err
		}
		if m := binary.BigEndian.Uint16(lb[8:]); uint32(m) == f.daNodeMagic() {
			return nil, at("attr node", in.ino).corrupt("level-1 node entry %d points at another node (block %d)", i, fb)
		}
		if err := f.parseAttrLeaf(in, st, lb, fb, back, forw); err != nil {
			return nil, err
		}
		st.leaves = append(st.leaves, fb)
	}
	return st, nil
}

// parseAttrLeaf appends the entries of leaf block b (attr-fork block fb)
// to st, checking its siblings are back and forw.
func (f *FS) parseAttrLeaf(in *inode, st *attrState, b []byte, fb uint64, back, forw uint32) error {
	exts := st.exts
	w := where{what: "attr leaf", ag: -1, block: int64(fb), ino: in.ino, off: -1}
	info, _ := layout.DecodeDABlkinfo(b)
	if info.Forw != forw || info.Back != back {
		return w.corrupt("siblings (%d, %d), want (%d, %d)", info.Back, info.Forw, back, forw)
	}
	c, err := layout.DecodeAttrLeafCounts(b[f.daInfoSize():])
	if err != nil {
		return w.corrupt("%v", err)
	}
	hdr := f.attrLeafHdrSize()
	if max := (len(b) - hdr) / layout.AttrLeafEntrySize; int(c.Count) > max {
		return w.corrupt("%d entries, at most %d fit", c.Count, max)
	}
	for i := 0; i < int(c.Count); i++ {
		e, _ := layout.DecodeAttrLeafEntry(b[hdr+i*layout.AttrLeafEntrySize:])
		if e.Flags&^(layout.AttrLocal|layout.AttrRoot|layout.AttrSecure) != 0 {
			return unsupported("writing the attributes of inode %d: entry %d of attr block %d has flags %#x (incomplete, or a namespace this engine does not write); run xfs_repair", in.ino, i, fb, e.Flags)
		}
		ns := e.Flags &^ layout.AttrLocal
		if ns == layout.AttrRoot|layout.AttrSecure {
			return w.corrupt("entry %d is in two namespaces", i)
		}
		p := int(e.NameIdx)
		if p < hdr+int(c.Count)*layout.AttrLeafEntrySize {
			return w.corrupt("entry %d's name at %d lies in the header or entries", i, p)
		}
		var ent attrEnt
		if e.Flags&layout.AttrLocal != 0 {
			if p+layout.AttrLeafNameLocalSize > len(b) {
				return w.corrupt("entry %d's name at %d runs past the block", i, p)
			}
			n, _ := layout.DecodeAttrLeafNameLocal(b[p:])
			q := p + layout.AttrLeafNameLocalSize
			if n.NameLen == 0 || q+int(n.NameLen)+int(n.ValueLen) > len(b) {
				return w.corrupt("entry %d (%d-byte name, %d-byte value) runs past the block", i, n.NameLen, n.ValueLen)
			}
			ent = attrEnt{attrKey: attrKey{ns, string(b[q : q+int(n.NameLen)])}, value: slices.Clone(b[q+int(n.NameLen) : q+int(n.NameLen)+int(n.ValueLen)])}
		} else {
			if p+layout.AttrLeafNameRemoteSize > len(b) {
				return w.corrupt("entry %d's name at %d runs past the block", i, p)
			}
			n, _ := layout.DecodeAttrLeafNameRemote(b[p:])
			q := p + layout.AttrLeafNameRemoteSize
			if n.NameLen == 0 || q+int(n.NameLen) > len(b) {
				return w.corrupt("entry %d's %d-byte name runs past the block", i, n.NameLen)
			}
			if n.ValueLen > maxXattrValue || n.ValueBlk == 0 {
				return w.corrupt("entry %d: remote value of %d bytes at attr block %d", i, n.ValueLen, n.ValueBlk)
			}
			for k := uint64(0); k < uint64(f.rmtBlocks(int(n.ValueLen))); k++ {
				if findExtent(exts, uint64(n.ValueBlk)+k) < 0 {
					return w.corrupt("entry %d: remote value block %d is not mapped", i, uint64(n.ValueBlk)+k)
				}
			}
			ent = attrEnt{attrKey: attrKey{ns, string(b[q : q+int(n.NameLen)])}, remote: true, blk: n.ValueBlk, vlen: n.ValueLen}
		}
		if st.keys == nil {
			st.keys = map[attrKey]bool{}
		}
		if st.keys[ent.attrKey] {
			return w.corrupt("attribute %q stored twice", fullName(ns, ent.name))
		}
		st.keys[ent.attrKey] = true
		if len(st.ents) >= maxXattrs {
			return w.corrupt("more than %d attributes", maxXattrs)
		}
		st.ents = append(st.ents, ent)
	}
	return nil
}

// sfAttrEnts decodes the short-form attributes of in with their flags.
func (f *FS) sfAttrEnts(in *inode) ([]attrEnt, error) {
	w := at("short-form attrs", in.ino)
	var out []attrEnt
	err := walkSFAttrs(in, func(i int, fl byte, name, value []byte) error {
		if len(name) == 0 {
			return w.corrupt("entry %d has an empty name", i)
		}
		if fl&^(layout.AttrRoot|layout.AttrSecure) != 0 || fl == layout.AttrRoot|layout.AttrSecure {
			return unsupported("writing the attributes of inode %d: short-form entry %d has flags %#x; run xfs_repair", in.ino, i, fl)
		}
		e := attrEnt{attrKey: attrKey{fl, string(name)}, value: slices.Clone(value)}
		if slices.ContainsFunc(out, func(o attrEnt) bool { return o.attrKey == e.attrKey }) {
			return w.corrupt("attribute %q stored twice", fullName(fl, e.name))
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (f *FS) attrLeafHdrSize() int {
	if f.geo.crc {
		return layout.Attr3LeafHdrSize
	}
	return layout.AttrLeafHdrSize
}

// rmtBlocks is the number of blocks a remote value of n bytes takes.
func (f *FS) rmtBlocks(n int) int {
	space := int(f.geo.blockSize)
	if f.geo.crc {
		space -= layout.RemoteHdrSize
	}
	return (n + space - 1) / space
}

// attr2 reports whether the filesystem places di_forkoff by the attr2
// rules (always on v5).
func (f *FS) attr2() bool {
	return f.geo.crc || f.sb.Bits()&layout.VersionMoreBits != 0 && f.sb.Features2&layout.Features2Attr2 != 0
}

// forkGeo is what the kernel's fork-offset choice depends on.
type forkGeo struct {
	litino    int // the literal area's bytes
	inodeSize int
	format    layout.ForkFormat // the data fork's
	forkoff   int               // 8-byte units, 0 without an attr fork
	dataBytes int               // bytes the data fork uses
	attr2     bool
}

func (f *FS) forkGeo(in *inode) forkGeo {
	c := in.core
	g := forkGeo{litino: int(f.geo.inodeSize) - c.CoreSize(), inodeSize: int(f.geo.inodeSize), format: c.Format, forkoff: int(c.ForkOff), attr2: f.attr2()}
	switch c.Format {
	case layout.FormatLocal:
		g.dataBytes = int(c.Size)
	case layout.FormatExtents:
		g.dataBytes = int(c.DataExtents()) * layout.BmbtRecSize
	case layout.FormatBtree:
		if len(in.data) >= 4 {
			g.dataBytes = layout.BmdrSpace(int(binary.BigEndian.Uint16(in.data[2:])))
		}
	case layout.FormatDev:
		g.dataBytes = 4
	}
	return g
}

// defaultOff is the kernel's default attr fork offset in bytes.
func (g forkGeo) defaultOff() int {
	if g.format == layout.FormatDev {
		return 8
	}
	if g.inodeSize == 256 {
		return g.litino - layout.BmdrSpace(layout.BmdrMinAttrPtrs)
	}
	return layout.BmdrSpace(6 * layout.BmdrMinAttrPtrs)
}

// bytesFit returns the fork offset (8-byte units) at which an attr fork
// of bytes fits in short form, 0 when it does not: the rules of the
// kernel's xfs_attr_shortform_bytesfit.
func (g forkGeo) bytesFit(bytes int) int {
	if bytes > g.litino {
		return 0
	}
	offset := (g.litino - bytes) >> 3
	if g.format == layout.FormatDev {
		if offset >= 1 {
			return 1
		}
		return 0
	}
	if g.forkoff != 0 && bytes <= g.litino-g.forkoff*8 {
		return g.forkoff
	}
	if !g.attr2 {
		return 0
	}
	dsize := g.dataBytes
	switch g.format {
	case layout.FormatExtents:
		if g.forkoff == 0 && g.dataBytes > g.defaultOff() {
			dsize = layout.BmdrSpace(layout.BmdrMinDataPtrs)
		}
	case layout.FormatBtree:
		if g.forkoff != 0 {
			if offset < g.forkoff {
				return 0
			}
			return g.forkoff
		}
	}
	minOff := (max(dsize, layout.BmdrSpace(layout.BmdrMinDataPtrs)) + 7) >> 3
	maxOff := (g.litino - layout.BmdrSpace(layout.BmdrMinAttrPtrs)) >> 3
	switch {
	case offset >= maxOff:
		return maxOff
	case offset >= minOff:
		return offset
	}
	return 0
}

// after returns the geometry once the attr fork sits at forkoff: a data
// fork that no longer fits becomes what applyForkOff converts it to.
func (g forkGeo) after(forkoff int) forkGeo {
	g.forkoff = forkoff
	if forkoff == 0 || g.dataBytes <= forkoff*8 {
		return g
	}
	switch g.format {
	case layout.FormatLocal: // a directory becomes one block
		g.format, g.dataBytes = layout.FormatExtents, layout.BmbtRecSize
	case layout.FormatExtents: // a btree of one leaf
		g.format, g.dataBytes = layout.FormatBtree, layout.BmdrSpace(1)
	}
	return g
}

// sfSize is the short-form bytes of ents, and whether each fits a
// short-form entry at all.
func sfSize(ents []attrEnt) (int, bool) {
	n := layout.AttrSFHdrSize
	for _, e := range ents {
		if e.remote || len(e.name) >= layout.AttrSFEntSizeMax || len(e.value) >= layout.AttrSFEntSizeMax {
			return 0, false
		}
		n += layout.AttrSFEntSize(len(e.name), len(e.value))
	}
	return n, true
}

// attrChange sets (or, with remove, deletes) attribute key of inode ino
// in the transaction.
func (t *tx) attrChange(ino uint64, key attrKey, value []byte, remove bool, now time.Time) error {
	in, err := t.f.inode(ino)
	if err != nil {
		return err
	}
	if in.core.Flags&(layout.FlagImmutable|layout.FlagAppend) != 0 {
		return fmt.Errorf("xfs: inode %d is immutable or append-only: %w", ino, fs.ErrPermission)
	}
	st, err := t.f.loadAttrs(in)
	if err != nil {
		return err
	}
	i := st.find(key)
	ents := slices.Clone(st.ents)
	switch {
	case remove && i < 0:
		return fmt.Errorf("xfs: inode %d: %q: %w", ino, fullName(key.flags, key.name), vfs.ErrNoXattr)
	case remove:
		ents = slices.Delete(ents, i, i+1)
	case i >= 0:
		if ents[i].remote {
			return fmt.Errorf("xfs: inode %d: replacing the remote value of %q in place (a bug: SetXattr removes it first)", ino, key.name)
		}
		ents[i] = attrEnt{attrKey: key, value: value}
	default:
		ents = append(ents, attrEnt{attrKey: key, value: value})
	}
	b, c, err := t.inodeBuf(ino)
	if err != nil {
		return err
	}
	g := t.f.forkGeo(in)
	var delta int64 // blocks the inode gains
	switch {
	case st.form >= attrLeaf && remove:
		delta, err = t.attrLeafRemove(in, b, g, st, st.ents[i], ents)
	case st.form >= attrLeaf:
		delta, err = t.storeAttrBlocks(in, b, st, ents, false)
	case remove:
		if size, _ := sfSize(ents); len(ents) == 0 && g.attr2 && g.format != layout.FormatBtree {
			delta, err = t.removeAttrFork(in, b)
		} else if fo := g.bytesFit(size); fo == 0 {
			err = at("short-form attrs", ino).corrupt("%d bytes left do not fit the fork", size)
		} else if delta, err = t.applyForkOff(in, b, fo); err == nil {
			t.putSF(b, c.CoreSize(), fo, ents)
		}
	default:
		delta, err = t.attrSetSF(in, b, g, st, key, value, ents)
	}
	if err != nil {
		return err
	}
	if delta != 0 {
		nb := int64(binary.BigEndian.Uint64(b.data[0x40:])) + delta
		if nb < 0 {
			return at("inode", ino).corrupt("block count would drop below zero")
		}
		binary.BigEndian.PutUint64(b.data[0x40:], uint64(nb))
	}
	t.touchCtime(b, c, now)
	return nil
}

// attrSetSF sets an attribute of an inode whose attributes are in short
// form (or that has none): the fork is created where the kernel creates
// it, then the attributes stay in short form where bytesFit allows, or
// move to a leaf block.
func (t *tx) attrSetSF(in *inode, b *txBuf, g forkGeo, st *attrState, key attrKey, value []byte, ents []attrEnt) (int64, error) {
	fo := g.forkoff
	if st.form == attrNone {
		fo = g.bytesFit(layout.AttrSFHdrSize + layout.AttrSFEntSize(len(key.name), len(value)))
		if fo == 0 {
			fo = g.defaultOff() >> 3
		}
		g = g.after(fo)
		if err := t.addAttrFeature(); err != nil {
			return 0, err
		}
	}
	size, ok := sfSize(ents)
	if ok {
		if fo2 := g.bytesFit(size); fo2 != 0 {
			delta, err := t.applyForkOff(in, b, fo2)
			if err != nil {
				return 0, err
			}
			t.putSF(b, in.core.CoreSize(), fo2, ents)
			return delta, nil
		}
	}
	delta, err := t.applyForkOff(in, b, fo)
	if err != nil {
		return 0, err
	}
	d2, err := t.storeAttrBlocks(in, b, &attrState{form: attrSF}, ents, false)
	return delta + d2, err
}

// addAttrFeature sets the v4 superblock's ATTR bit when the first attr
// fork is created, as the kernel does (v5 implies it). The attr2 bit is
// left as it is: a filesystem without it is written by the attr1 rules.
func (t *tx) addAttrFeature() error {
	if t.f.geo.crc {
		return nil
	}
	sb, err := t.buf(0, int(t.f.geo.sectSize), kindSuper, classSuper, at("superblock", 0))
	if err != nil {
		return err
	}
	v := binary.BigEndian.Uint16(sb.data[0x64:])
	if v&uint16(layout.VersionAttr) == 0 {
		binary.BigEndian.PutUint16(sb.data[0x64:], v|uint16(layout.VersionAttr))
		t.markDirty(sb)
	}
	return nil
}

// applyForkOff moves the attr fork of the inode in buffer b to forkoff
// (8-byte units; 0 removes the fork), converting a data fork the new
// offset no longer holds: a short-form directory to a block, an extent
// list to a bmap btree, a btree root laid out for its new area. It
// returns the blocks the inode gained. The attr area is cleared.
func (t *tx) applyForkOff(in *inode, b *txBuf, forkoff int) (int64, error) {
	c, err := layout.DecodeInodeCore(b.data)
	if err != nil {
		return 0, at("inode", in.ino).corrupt("%v", err)
	}
	core := c.CoreSize()
	litino := int(t.f.geo.inodeSize) - core
	oldData, newData := litino, litino
	if c.ForkOff != 0 {
		oldData = int(c.ForkOff) * 8
	}
	if forkoff != 0 {
		newData = forkoff * 8
	}
	if forkoff*8 >= litino || forkoff < 0 {
		return 0, fmt.Errorf("xfs: inode %d: attr fork offset %d outside the %d-byte literal area (a bug)", in.ino, forkoff, litino)
	}
	var delta int64
	convertExtents := false
	var exts []layout.Extent
	switch c.Format {
	case layout.FormatLocal:
		if int(c.Size) > newData {
			if !in.isDir() {
				return 0, unsupported("an attr fork at offset %d in inode %d: its %d-byte inline symlink would have to move to a block", forkoff*8, in.ino, c.Size)
			}
			// sfToBlock counts its new block in the same inode buffer.
			if err := t.sfToBlock(in.ino); err != nil {
				return 0, err
			}
		}
	case layout.FormatExtents:
		if int(c.DataExtents())*layout.BmbtRecSize > newData {
			if exts, err = t.f.readForkExtents(in, false); err != nil {
				return 0, err
			}
			convertExtents = true
		}
	case layout.FormatBtree:
		if oldData != newData {
			root := b.data[core : core+oldData]
			n := int(binary.BigEndian.Uint16(root[2:]))
			oldMax := (oldData - layout.BmdrHeaderSize) / (layout.BmbtKeySize + layout.BmbtPtrSize)
			newMax := (newData - layout.BmdrHeaderSize) / (layout.BmbtKeySize + layout.BmbtPtrSize)
			if n > oldMax {
				return 0, at("data fork", in.ino).corrupt("bmap root with %d records, room for %d", n, oldMax)
			}
			if n > newMax {
				return 0, unsupported("an attr fork at offset %d in inode %d: its bmap btree root of %d records would need another level", forkoff*8, in.ino, n)
			}
			keys := slices.Clone(root[layout.BmdrHeaderSize : layout.BmdrHeaderSize+n*layout.BmbtKeySize])
			ptrs := slices.Clone(root[layout.BmdrHeaderSize+oldMax*layout.BmbtKeySize:][:n*layout.BmbtPtrSize])
			area := b.data[core : core+max(oldData, newData)]
			clear(area[layout.BmdrHeaderSize:])
			copy(area[layout.BmdrHeaderSize:], keys)
			copy(area[layout.BmdrHeaderSize+newMax*layout.BmbtKeySize:], ptrs)
		}
	}
	b.data[layout.InodeForkOffOffset] = byte(forkoff)
	if forkoff != 0 {
		clear(b.data[core+newData:])
	} else {
		clear(b.data[core+oldData:])
	}
	t.markDirty(b)
	if convertExtents {
		w := at("inode", in.ino)
		in2, err := t.f.decodeInode(in.ino, b.data, w)
		if err != nil {
			return 0, err
		}
		d, err := t.writeDataFork(in2, exts, nil)
		if err != nil {
			return 0, err
		}
		delta += d
	}
	return delta, nil
}

// putSF writes ents as the short-form attr fork at forkoff.
func (t *tx) putSF(b *txBuf, core, forkoff int, ents []attrEnt) {
	b.data[layout.InodeForkOffOffset] = byte(forkoff)
	area := b.data[core+forkoff*8:]
	clear(area)
	pos := layout.AttrSFHdrSize
	for _, e := range ents {
		area[pos], area[pos+1], area[pos+2] = byte(len(e.name)), byte(len(e.value)), e.flags
		pos += layout.AttrSFEntrySize
		pos += copy(area[pos:], e.name)
		pos += copy(area[pos:], e.value)
	}
	binary.BigEndian.PutUint16(area[0:], uint16(pos))
	area[2] = byte(len(ents))
	binary.BigEndian.PutUint16(b.data[layout.InodeANextentsOffset:], 0)
	b.data[layout.InodeAFormatOffset] = byte(layout.FormatLocal)
	t.markDirty(b)
}

// removeAttrFork drops an empty attr fork: the data fork gets the whole
// literal area back.
func (t *tx) removeAttrFork(in *inode, b *txBuf) (int64, error) {
	delta, err := t.applyForkOff(in, b, 0)
	if err != nil {
		return 0, err
	}
	binary.BigEndian.PutUint16(b.data[layout.InodeANextentsOffset:], 0)
	b.data[layout.InodeAFormatOffset] = byte(layout.FormatExtents)
	t.markDirty(b)
	return delta, nil
}

// attrLeafRemove removes attribute old from a leaf- or node-form fork,
// ents being what remains: its remote blocks are freed, leaves no longer
// needed are freed (a node with one leaf left becomes that leaf, at
// block 0), and the fork goes back to short form (or away) when the
// kernel's allfit rule says so.
func (t *tx) attrLeafRemove(in *inode, b *txBuf, g forkGeo, st *attrState, old attrEnt, ents []attrEnt) (int64, error) {
	st = &attrState{form: st.form, exts: slices.Clone(st.exts), leaves: st.leaves}
	var delta int64
	if old.remote {
		n := t.f.rmtBlocks(int(old.vlen))
		var err error
		if st.exts, err = t.unmapAttr(in.ino, st.exts, uint64(old.blk), uint64(n)); err != nil {
			return 0, err
		}
		delta -= int64(n)
	}
	size, ok := sfSize(ents)
	fo := 0
	if ok {
		if !(len(ents) == 0 && g.attr2 && g.format != layout.FormatBtree) {
			fo = g.bytesFit(size)
		}
		if fo == 0 && len(ents) != 0 {
			ok = false
		}
	}
	if !ok {
		d, err := t.storeAttrBlocks(in, b, st, ents, true)
		return delta + d, err
	}
	// Back to short form (fo != 0) or no fork: the leaf (and node)
	// blocks go; no remote value is left.
	own := map[uint64]bool{0: true}
	for _, l := range st.leaves {
		own[l] = true
	}
	for _, e := range st.exts {
		for k := uint64(0); k < uint64(e.Count); k++ {
			if !own[e.StartOff+k] {
				return 0, unsupported("inode %d's attr fork maps block %d, which no attribute uses; run xfs_repair", in.ino, e.StartOff+k)
			}
		}
	}
	for _, e := range st.exts {
		if _, err := t.unmapAttr(in.ino, []layout.Extent{e}, e.StartOff, uint64(e.Count)); err != nil {
			return 0, err
		}
		delta -= int64(e.Count)
	}
	if fo == 0 {
		d, err := t.removeAttrFork(in, b)
		return delta + d, err
	}
	d, err := t.applyForkOff(in, b, fo)
	if err != nil {
		return 0, err
	}
	t.putSF(b, in.core.CoreSize(), fo, ents)
	return delta + d, nil
}

// unmapAttr frees attr-fork blocks [fb, fb+n) and returns the extents
// without them.
func (t *tx) unmapAttr(ino uint64, exts []layout.Extent, fb, n uint64) ([]layout.Extent, error) {
	var out []layout.Extent
	end := fb + n
	for _, e := range exts {
		eEnd := e.StartOff + uint64(e.Count)
		if eEnd <= fb || e.StartOff >= end {
			out = append(out, e)
			continue
		}
		lo, hi := max(e.StartOff, fb), min(eEnd, end)
		if e.StartOff < lo {
			out = append(out, layout.Extent{StartOff: e.StartOff, StartBlock: e.StartBlock, Count: uint32(lo - e.StartOff)})
		}
		if err := t.freeFSB(e.StartBlock+(lo-e.StartOff), uint32(hi-lo), ownAttr(ino, lo, false)); err != nil {
			return nil, err
		}
		if hi < eEnd {
			out = append(out, layout.Extent{StartOff: hi, StartBlock: e.StartBlock + (hi - e.StartOff), Count: uint32(eEnd - hi)})
		}
	}
	return out, nil
}

// attrLeafEnt is an entry as laid out in a leaf block.
type attrLeafEnt struct {
	*attrEnt
	hash  uint32
	local bool
	size  int
}

// layoutLeaves sorts ents into hash order, sizes their records (local,
// or remote by the kernel's three-quarter rule) and packs them into
// leaves in order, each as full as it goes (at least min leaves, as
// even as the packing allows). It fails when they need more leaves than
// one node block points at.
func (f *FS) layoutLeaves(ino uint64, ents []attrEnt, min int) ([][]attrLeafEnt, error) {
	bs := int(f.geo.blockSize)
	les := make([]attrLeafEnt, len(ents))
	for i := range ents {
		e := &ents[i]
		le := attrLeafEnt{attrEnt: e, hash: daHash([]byte(e.name))}
		if !e.remote {
			if s := layout.AttrLeafEntSizeLocal(len(e.name), len(e.value)); s < layout.AttrLeafEntSizeLocalMax(bs) {
				le.local, le.size = true, s
			}
		}
		if !le.local {
			le.size = layout.AttrLeafEntSizeRemote(len(e.name))
		}
		les[i] = le
	}
	slices.SortStableFunc(les, func(a, b attrLeafEnt) int { return cmp.Compare(a.hash, b.hash) })
	// Pack runs of equal hashes (one name in several namespaces): a run
	// never spans two leaves, as xfs_repair requires each leaf's hashes
	// to lie strictly above the previous leaf's.
	room := bs - f.attrLeafHdrSize()
	var groups [][]attrLeafEnt
	used := room + 1
	for i := 0; i < len(les); {
		j, need := i, 0
		for ; j < len(les) && les[j].hash == les[i].hash; j++ {
			need += layout.AttrLeafEntrySize + les[j].size
		}
		if need > room {
			return nil, unsupported("inode %d: %d attributes share the hash %#x and need more than one leaf", ino, j-i, les[i].hash)
		}
		if used+need > room {
			groups = append(groups, nil)
			used = 0
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], les[i:j]...)
		used += need
		i = j
	}
	if len(groups) == 0 {
		groups = [][]attrLeafEnt{nil}
	}
	// Keep min leaves (a set never frees one): split the most populated
	// leaf where the hash changes nearest its middle.
	for len(groups) < min {
		best, cut := -1, 0
		for gi, grp := range groups {
			for k := 1; k < len(grp); k++ {
				if grp[k].hash == grp[k-1].hash {
					continue
				}
				if best < 0 || min2(k, len(grp)-k) > min2(cut, len(groups[best])-cut) {
					best, cut = gi, k
				}
			}
		}
		if best < 0 {
			return nil, unsupported("inode %d: %d attributes cannot fill its %d leaves", ino, len(ents), min)
		}
		a, b := slices.Clone(groups[best][:cut]), slices.Clone(groups[best][cut:])
		groups = slices.Replace(groups, best, best+1, a, b)
	}
	if max := (bs - f.nodeHdrSize()) / layout.DANodeEntrySize; len(groups) > max {
		return nil, unsupported("inode %d's %d attributes need %d leaf blocks, more than one node points at (%d); a deeper da btree is not written", ino, len(ents), len(groups), max)
	}
	return groups, nil
}

// checkLeafFits refuses, before any write, attributes that one node's
// leaves cannot hold.
func (f *FS) checkLeafFits(ino uint64, ents []attrEnt) error {
	if _, ok := sfSize(ents); ok {
		return nil
	}
	_, err := f.layoutLeaves(ino, ents, 0)
	return err
}

// storeAttrBlocks writes ents as the leaf block, or the node and its
// leaves, of the attr fork in state st (form none or short form: the
// fork has no block yet), storing new values that need it in remote
// blocks, and records the fork's extents in the inode. A set
// (removing false) keeps every leaf the fork has and frees nothing; a
// removal frees the leaves no longer needed and allocates nothing, so a
// transaction either frees or allocates (writeorder.go). A node left
// with one leaf becomes that leaf, at block 0. It returns the blocks the
// inode gained.
func (t *tx) storeAttrBlocks(in *inode, b *txBuf, st *attrState, ents []attrEnt, removing bool) (int64, error) {
	f := t.f
	g := &f.geo
	bs := int(g.blockSize)
	ents = slices.Clone(ents)
	keep := 0
	if !removing && st.form == attrNode {
		keep = len(st.leaves)
	}
	groups, err := f.layoutLeaves(in.ino, ents, keep)
	if err != nil {
		return 0, err
	}
	c, err := layout.DecodeInodeCore(b.data)
	if err != nil {
		return 0, at("inode", in.ino).corrupt("%v", err)
	}
	core := c.CoreSize()
	if c.ForkOff == 0 {
		return 0, fmt.Errorf("xfs: inode %d: a leaf attr fork without a fork offset (a bug)", in.ino)
	}
	attrArea := int(g.inodeSize) - core - int(c.ForkOff)*8
	agHint := uint32(in.ino >> (g.agBlkLog + g.inoPBLog))
	var delta int64
	exts := slices.Clone(st.exts)
	alloc := func(fb uint64, n int, kind bufKind) ([]*txBuf, error) {
		if removing {
			return nil, fmt.Errorf("xfs: inode %d: removing an attribute would allocate attr block %d (a bug)", in.ino, fb)
		}
		var bufs []*txBuf
		for n > 0 {
			agbno, got, ag, err := t.allocAnyAG(agHint, uint32(n), ownAttr(in.ino, fb, false))
			if err != nil {
				return nil, err
			}
			fsb := uint64(ag)<<g.agBlkLog | uint64(agbno)
			for k := uint32(0); k < got; k++ {
				nb, err := t.newBuf((g.fsbLinear(fsb)+int64(k))<<g.blockLog, bs, kind, at("attr block", in.ino))
				if err != nil {
					return nil, err
				}
				bufs = append(bufs, nb)
			}
			exts = insertAttrExtent(exts, layout.Extent{StartOff: fb, StartBlock: fsb, Count: got}, g.agBlkLog)
			fb += uint64(got)
			n -= int(got)
			delta += int64(got)
		}
		return bufs, nil
	}
	// block returns the buffer of attr-fork block fb, allocating it when
	// unmapped.
	block := func(fb uint64) (*txBuf, error) {
		x := findExtent(exts, fb)
		if x < 0 {
			bufs, err := alloc(fb, 1, kindDA)
			if err != nil {
				return nil, err
			}
			return bufs[0], nil
		}
		fsb := exts[x].StartBlock + (fb - exts[x].StartOff)
		w := where{what: "attr block", ag: int64(fsb >> g.agBlkLog), block: int64(fb), ino: in.ino, off: g.fsbLinear(fsb) << g.blockLog}
		return t.buf(w.off, bs, kindDA, className, w)
	}
	root, err := block(0)
	if err != nil {
		return 0, err
	}
	// The leaves' blocks: a node's own, lowest offsets first; new ones at
	// the first unused offsets. A removal frees those it no longer needs
	// from the highest offset down, so the fork's extents shrink rather
	// than split.
	var leafFB []uint64
	own := slices.Sorted(slices.Values(st.leaves))
	if len(groups) > 1 {
		leafFB = slices.Clone(own[:min(len(own), len(groups))])
		for len(leafFB) < len(groups) {
			fb := firstUnused(exts, 1)
			if _, err := alloc(fb, 1, kindDA); err != nil {
				return 0, err
			}
			leafFB = append(leafFB, fb)
		}
	}
	if st.form == attrNode && removing {
		for _, fb := range slices.Backward(own[len(leafFB):]) {
			if exts, err = t.unmapAttr(in.ino, exts, fb, 1); err != nil {
				return 0, err
			}
			delta--
		}
	}
	// New remote values, at the first unused attr-fork offsets.
	kind := kindRaw
	if g.crc {
		kind = kindRemote
	}
	for _, grp := range groups {
		for _, le := range grp {
			e := le.attrEnt
			if le.local || e.remote {
				continue
			}
			n := f.rmtBlocks(len(e.value))
			fb := firstUnused(exts, uint64(n))
			if fb+uint64(n) > 1<<32 {
				return 0, unsupported("inode %d's attr fork has no room for a %d-block value", in.ino, n)
			}
			bufs, err := alloc(fb, n, kind)
			if err != nil {
				return 0, err
			}
			f.putRemote(bufs, in.ino, e.value)
			for _, rb := range bufs {
				t.markDirty(rb)
			}
			e.remote, e.blk, e.vlen, e.value = true, uint32(fb), uint32(len(e.value)), nil
		}
	}
	if len(exts)*layout.BmbtRecSize > attrArea {
		return 0, unsupported("inode %d's attr fork would map %d extents, more than its %d-byte area holds (a bmap btree attr fork is not written)", in.ino, len(exts), attrArea)
	}
	if len(groups) == 1 {
		f.putLeaf(root, in.ino, groups[0], 0, 0)
		t.markDirty(root)
	} else {
		hashes := make([]uint32, len(groups))
		for i, grp := range groups {
			lb, err := block(leafFB[i])
			if err != nil {
				return 0, err
			}
			var back, forw uint64
			if i > 0 {
				back = leafFB[i-1]
			}
			if i+1 < len(groups) {
				forw = leafFB[i+1]
			}
			f.putLeaf(lb, in.ino, grp, uint32(back), uint32(forw))
			t.markDirty(lb)
			hashes[i] = grp[len(grp)-1].hash
		}
		f.putNode(root, in.ino, hashes, leafFB)
		t.markDirty(root)
	}
	area := b.data[core+int(c.ForkOff)*8:]
	clear(area)
	for i, e := range exts {
		layout.EncodeExtent(area[i*layout.BmbtRecSize:], e)
	}
	binary.BigEndian.PutUint16(b.data[layout.InodeANextentsOffset:], uint16(len(exts)))
	b.data[layout.InodeAFormatOffset] = byte(layout.FormatExtents)
	t.markDirty(b)
	return delta, nil
}

// putNode lays out node block nb at attr-fork block 0: one level over
// the leaves at blocks leaves, each entry the highest hash of its leaf.
func (f *FS) putNode(nb *txBuf, ino uint64, hashes []uint32, leaves []uint64) {
	g := &f.geo
	d := nb.data
	clear(d)
	magic := uint16(layout.DANodeMagic)
	if g.crc {
		magic = layout.DA3NodeMagic
		binary.BigEndian.PutUint64(d[0x10:], uint64(nb.off)/layout.BBSize)
		copy(d[0x20:0x30], g.metaUUID[:])
		binary.BigEndian.PutUint64(d[0x30:], ino)
	}
	binary.BigEndian.PutUint16(d[8:], magic)
	h := d[f.daInfoSize():]
	binary.BigEndian.PutUint16(h[0:], uint16(len(leaves)))
	binary.BigEndian.PutUint16(h[2:], 1)
	for i, fb := range leaves {
		e := d[f.nodeHdrSize()+i*layout.DANodeEntrySize:]
		binary.BigEndian.PutUint32(e[0:], hashes[i])
		binary.BigEndian.PutUint32(e[4:], uint32(fb))
	}
}

func min2(a, b int) int { return min(a, b) }

// insertAttrExtent adds e to the sorted extents, merged with a
// neighbour it continues.
func insertAttrExtent(exts []layout.Extent, e layout.Extent, agBlkLog uint) []layout.Extent {
	i, _ := slices.BinarySearchFunc(exts, e.StartOff, func(x layout.Extent, off uint64) int { return cmp.Compare(x.StartOff, off) })
	if i > 0 {
		p := &exts[i-1]
		if p.StartOff+uint64(p.Count) == e.StartOff && p.StartBlock+uint64(p.Count) == e.StartBlock &&
			p.StartBlock>>agBlkLog == e.StartBlock>>agBlkLog && uint64(p.Count)+uint64(e.Count) <= maxExtentBlocks {
			p.Count += e.Count
			return exts
		}
	}
	return slices.Insert(exts, i, e)
}

// firstUnused returns the first attr-fork offset from which n blocks are
// unmapped (the kernel's xfs_bmap_first_unused from 0).
func firstUnused(exts []layout.Extent, n uint64) uint64 {
	next := uint64(0)
	for _, e := range exts {
		if e.StartOff >= next+n {
			break
		}
		next = max(next, e.StartOff+uint64(e.Count))
	}
	return next
}

// putRemote writes value over the remote blocks bufs: on v5 each block
// starts with its header (offset and bytes of its part, owner, disk
// address, UUID).
func (f *FS) putRemote(bufs []*txBuf, ino uint64, value []byte) {
	g := &f.geo
	off := 0
	for _, rb := range bufs {
		d := rb.data
		clear(d)
		if !g.crc {
			off += copy(d, value[off:])
			continue
		}
		n := min(len(d)-layout.RemoteHdrSize, len(value)-off)
		binary.BigEndian.PutUint32(d[0:], layout.AttrRemoteMagic)
		binary.BigEndian.PutUint32(d[4:], uint32(off))
		binary.BigEndian.PutUint32(d[8:], uint32(n))
		copy(d[0x10:0x20], g.metaUUID[:])
		binary.BigEndian.PutUint64(d[0x20:], ino)
		binary.BigEndian.PutUint64(d[0x28:], uint64(rb.off)/layout.BBSize)
		copy(d[layout.RemoteHdrSize:], value[off:off+n])
		off += n
	}
}

// putLeaf lays les (in hash order) out in leaf block lb, between its
// siblings back and forw (0: none): the header, the
// entries, and the name/value records packed from the block's end in
// entry order, the free map's first slot covering the gap between.
func (f *FS) putLeaf(lb *txBuf, ino uint64, les []attrLeafEnt, back, forw uint32) {
	g := &f.geo
	d := lb.data
	clear(d)
	binary.BigEndian.PutUint32(d[0:], forw)
	binary.BigEndian.PutUint32(d[4:], back)
	info := f.daInfoSize()
	magic := uint16(layout.AttrLeafMagic)
	if g.crc {
		magic = layout.Attr3LeafMagic
		binary.BigEndian.PutUint64(d[0x10:], uint64(lb.off)/layout.BBSize)
		copy(d[0x20:0x30], g.metaUUID[:])
		binary.BigEndian.PutUint64(d[0x30:], ino)
	}
	binary.BigEndian.PutUint16(d[8:], magic)
	hdr := f.attrLeafHdrSize()
	pos, used := len(d), 0
	for i, le := range les {
		pos -= le.size
		used += le.size
		e := d[hdr+i*layout.AttrLeafEntrySize:]
		binary.BigEndian.PutUint32(e[0:], le.hash)
		binary.BigEndian.PutUint16(e[4:], uint16(pos))
		flags := le.flags
		r := d[pos:]
		if le.local {
			flags |= layout.AttrLocal
			binary.BigEndian.PutUint16(r[0:], uint16(len(le.value)))
			r[2] = byte(len(le.name))
			copy(r[layout.AttrLeafNameLocalSize:], le.name)
			copy(r[layout.AttrLeafNameLocalSize+len(le.name):], le.value)
		} else {
			binary.BigEndian.PutUint32(r[0:], le.blk)
			binary.BigEndian.PutUint32(r[4:], le.vlen)
			r[8] = byte(len(le.name))
			copy(r[layout.AttrLeafNameRemoteSize:], le.name)
		}
		e[6] = flags
	}
	h := d[info:]
	base := hdr + len(les)*layout.AttrLeafEntrySize
	firstUsed := pos
	if firstUsed == 1<<16 { // only an empty 64 KiB leaf: XFS_ATTR3_LEAF_NULLOFF
		firstUsed = 0
	}
	binary.BigEndian.PutUint16(h[0:], uint16(len(les)))
	binary.BigEndian.PutUint16(h[2:], uint16(used))
	binary.BigEndian.PutUint16(h[4:], uint16(firstUsed))
	binary.BigEndian.PutUint16(h[8:], uint16(base))
	binary.BigEndian.PutUint16(h[10:], uint16(pos-base))
}
