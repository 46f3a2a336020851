package xfs

import (
	"encoding/binary"
	"sort"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// xattr is one extended attribute as stored: its full name (namespace
// prefix included), and its value inline or in remote attr-fork blocks.
type xattr struct {
	name     string
	local    []byte
	remote   bool
	valueBlk uint32
	valueLen uint32
}

// Bounds of attribute reads.
const (
	maxXattrValue = 64 << 10 // the kernel's XATTR_SIZE_MAX
	maxXattrs     = 1 << 16
	maxAttrLeaves = 1 << 16
)

// The names XFS stores POSIX ACLs under (in the trusted namespace), and
// the names the xattr interface gives them.
const (
	aclFileName     = "SGI_ACL_FILE"
	aclDefaultName  = "SGI_ACL_DEFAULT"
	posixACLAccess  = "system.posix_acl_access"
	posixACLDefault = "system.posix_acl_default"
)

// fullName prefixes a stored name with its namespace by the entry's
// flags: trusted., security. or user..
func fullName(flags uint8, name string) string {
	switch {
	case flags&layout.AttrRoot != 0:
		return "trusted." + name
	case flags&layout.AttrSecure != 0:
		return "security." + name
	}
	return "user." + name
}

// xattrs lists the attributes of in as Linux does: each stored one, plus
// the POSIX ACLs again under their system.* names (values converted by
// GetXattr).
func (f *FS) xattrs(in *inode) ([]xattr, error) {
	xs, err := f.storedXattrs(in)
	for _, x := range xs {
		switch x.name {
		case "trusted." + aclFileName:
			x.name = posixACLAccess
			xs = append(xs, x)
		case "trusted." + aclDefaultName:
			x.name = posixACLDefault
			xs = append(xs, x)
		}
	}
	return xs, err
}

// storedXattrs lists the attributes stored for in, from the short-form
// fork or the attr fork's leaf (and node) blocks.
func (f *FS) storedXattrs(in *inode) ([]xattr, error) {
	if in.attr == nil {
		return nil, nil
	}
	if in.core.AFormat == layout.FormatLocal {
		return f.shortformXattrs(in)
	}
	exts, err := f.forkExtents(in, true)
	if err != nil {
		return nil, err
	}
	if len(exts) == 0 {
		return nil, nil
	}
	// Descend the leftmost path to the first leaf, then walk the leaves.
	fb := uint64(0)
	for depth := 0; ; depth++ {
		if depth > maxDANodeDepth {
			return nil, at("attr node", in.ino).corrupt("da btree deeper than %d levels", maxDANodeDepth)
		}
		b, err := f.attrBlock(in, exts, fb)
		if err != nil {
			return nil, err
		}
		if uint32(binary.BigEndian.Uint16(b[8:])) != f.daNodeMagic() {
			break
		}
		w := where{what: "attr node", ag: -1, block: int64(fb), ino: in.ino, off: -1}
		nh, err := layout.DecodeDANodeHdr(b[f.daInfoSize():])
		if err != nil {
			return nil, w.corrupt("%v", err)
		}
		if nh.Count == 0 || int(nh.Count) > (len(b)-f.nodeHdrSize())/layout.DANodeEntrySize {
			return nil, w.corrupt("node with %d entries", nh.Count)
		}
		fb = uint64(binary.BigEndian.Uint32(b[f.nodeHdrSize()+4:]))
	}
	var out []xattr
	seen := map[uint64]bool{}
	for hops := 0; ; hops++ {
		if hops >= maxAttrLeaves || seen[fb] {
			return nil, at("attr leaf", in.ino).corrupt("leaf chain loops or exceeds %d leaves", maxAttrLeaves)
		}
		seen[fb] = true
		b, err := f.attrBlock(in, exts, fb)
		if err != nil {
			return nil, err
		}
		forw, err := f.attrLeaf(in, b, fb, &out)
		if err != nil {
			return nil, err
		}
		if forw == 0 {
			return out, nil
		}
		fb = uint64(forw)
	}
}

// attrBlock reads attr-fork block fb and checks its v5 header.
func (f *FS) attrBlock(in *inode, exts []layout.Extent, fb uint64) ([]byte, error) {
	w := where{what: "attr fork", ag: -1, block: int64(fb), ino: in.ino, off: -1}
	b, lin, err := f.readMapped(exts, fb, 1, w)
	if err != nil {
		return nil, err
	}
	magic := binary.BigEndian.Uint16(b[8:])
	okMagic := magic == layout.AttrLeafMagic || magic == layout.DANodeMagic
	if f.geo.crc {
		okMagic = magic == layout.Attr3LeafMagic || magic == layout.DA3NodeMagic
	}
	if !okMagic {
		return nil, w.corrupt("bad magic %#x", magic)
	}
	if f.geo.crc {
		h, err := layout.DecodeDA3Blkinfo(b)
		if err != nil {
			return nil, w.corrupt("%v", err)
		}
		if err := f.checkSelf(b, layout.DA3BlkinfoCRCOffset, h.Blkno, h.UUID, h.Owner, in.ino, lin, w); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// attrLeaf appends the complete entries of leaf b to out and returns the
// forward sibling.
func (f *FS) attrLeaf(in *inode, b []byte, fb uint64, out *[]xattr) (uint32, error) {
	w := where{what: "attr leaf", ag: -1, block: int64(fb), ino: in.ino, off: -1}
	info, _ := layout.DecodeDABlkinfo(b)
	c, err := layout.DecodeAttrLeafCounts(b[f.daInfoSize():])
	if err != nil {
		return 0, w.corrupt("%v", err)
	}
	hdr := layout.AttrLeafHdrSize
	if f.geo.crc {
		hdr = layout.Attr3LeafHdrSize
	}
	if max := (len(b) - hdr) / layout.AttrLeafEntrySize; int(c.Count) > max {
		return 0, w.corrupt("%d entries, at most %d fit", c.Count, max)
	}
	for i := 0; i < int(c.Count); i++ {
		e, _ := layout.DecodeAttrLeafEntry(b[hdr+i*layout.AttrLeafEntrySize:])
		if e.Flags&layout.AttrIncomplete != 0 {
			continue
		}
		p := int(e.NameIdx)
		if p < hdr {
			return 0, w.corrupt("entry %d's name at %d lies in the header", i, p)
		}
		var x xattr
		if e.Flags&layout.AttrLocal != 0 {
			if p+layout.AttrLeafNameLocalSize > len(b) {
				return 0, w.corrupt("entry %d's name at %d runs past the block", i, p)
			}
			n, _ := layout.DecodeAttrLeafNameLocal(b[p:])
			q := p + layout.AttrLeafNameLocalSize
			if q+int(n.NameLen)+int(n.ValueLen) > len(b) {
				return 0, w.corrupt("entry %d (%d-byte name, %d-byte value) runs past the block", i, n.NameLen, n.ValueLen)
			}
			x = xattr{name: fullName(e.Flags, string(b[q:q+int(n.NameLen)])), local: b[q+int(n.NameLen) : q+int(n.NameLen)+int(n.ValueLen)]}
		} else {
			if p+layout.AttrLeafNameRemoteSize > len(b) {
				return 0, w.corrupt("entry %d's name at %d runs past the block", i, p)
			}
			n, _ := layout.DecodeAttrLeafNameRemote(b[p:])
			q := p + layout.AttrLeafNameRemoteSize
			if q+int(n.NameLen) > len(b) {
				return 0, w.corrupt("entry %d's %d-byte name runs past the block", i, n.NameLen)
			}
			x = xattr{name: fullName(e.Flags, string(b[q:q+int(n.NameLen)])), remote: true, valueBlk: n.ValueBlk, valueLen: n.ValueLen}
		}
		if len(*out) >= maxXattrs {
			return 0, w.corrupt("more than %d attributes", maxXattrs)
		}
		*out = append(*out, x)
	}
	return info.Forw, nil
}

// shortformXattrs decodes attributes held inside the inode.
func (f *FS) shortformXattrs(in *inode) ([]xattr, error) {
	var out []xattr
	err := walkSFAttrs(in, func(_ int, fl byte, name, value []byte) error {
		if fl&layout.AttrIncomplete == 0 {
			out = append(out, xattr{name: fullName(fl, string(name)), local: value})
		}
		return nil
	})
	return out, err
}

// walkSFAttrs checks the short-form attribute header of in and calls fn
// with each entry's index, flags, name and value (slices of the inode's
// attr fork), every length bounded by the header's total size first.
func walkSFAttrs(in *inode, fn func(i int, fl byte, name, value []byte) error) error {
	w := at("short-form attrs", in.ino)
	h, err := layout.DecodeAttrSFHdr(in.attr)
	if err != nil {
		return w.corrupt("%v", err)
	}
	if int(h.TotSize) > len(in.attr) || h.TotSize < layout.AttrSFHdrSize {
		return w.corrupt("total size %d does not fit the %d-byte attr fork", h.TotSize, len(in.attr))
	}
	b := in.attr[:h.TotSize]
	pos := layout.AttrSFHdrSize
	for i := 0; i < int(h.Count); i++ {
		if pos+layout.AttrSFEntrySize > len(b) {
			return w.corrupt("entry %d runs past the %d bytes", i, len(b))
		}
		nl, vl, fl := int(b[pos]), int(b[pos+1]), b[pos+2]
		q := pos + layout.AttrSFEntrySize
		if q+nl+vl > len(b) {
			return w.corrupt("entry %d (%d-byte name, %d-byte value) runs past the %d bytes", i, nl, vl, len(b))
		}
		if err := fn(i, fl, b[q:q+nl], b[q+nl:q+nl+vl]); err != nil {
			return err
		}
		pos = q + nl + vl
	}
	return nil
}

// xattrValue returns the value of x, reading remote blocks when needed.
func (f *FS) xattrValue(in *inode, x xattr) ([]byte, error) {
	if !x.remote {
		return append([]byte(nil), x.local...), nil
	}
	w := where{what: "attr remote value", ag: -1, block: int64(x.valueBlk), ino: in.ino, off: -1}
	if x.valueLen > maxXattrValue {
		return nil, w.corrupt("value of %d bytes exceeds %d", x.valueLen, maxXattrValue)
	}
	exts, err := f.forkExtents(in, true)
	if err != nil {
		return nil, err
	}
	g := &f.geo
	space := g.blockSize
	if g.crc {
		space -= layout.RemoteHdrSize
	}
	nblk := (int64(x.valueLen) + space - 1) / space
	out := make([]byte, 0, x.valueLen)
	for i := int64(0); i < nblk; i++ {
		fb := uint64(x.valueBlk) + uint64(i)
		bw := w
		bw.block = int64(fb)
		b, lin, err := f.readMapped(exts, fb, 1, bw)
		if err != nil {
			return nil, err
		}
		want := min(space, int64(x.valueLen)-int64(len(out)))
		if !g.crc {
			out = append(out, b[:want]...)
			continue
		}
		h, err := layout.DecodeRemoteHdr(b)
		if err != nil {
			return nil, bw.corrupt("%v", err)
		}
		if h.Magic != layout.AttrRemoteMagic {
			return nil, bw.corrupt("bad magic %#x", h.Magic)
		}
		if err := f.checkSelf(b, layout.RemoteHdrCRCOffset, h.Blkno, h.UUID, h.Owner, in.ino, lin, bw); err != nil {
			return nil, err
		}
		if int64(h.Offset) != int64(len(out)) || int64(h.Bytes) != want {
			return nil, bw.corrupt("header says %d bytes at offset %d, want %d at %d", h.Bytes, h.Offset, want, len(out))
		}
		out = append(out, b[layout.RemoteHdrSize:layout.RemoteHdrSize+want]...)
	}
	return out, nil
}

// aclToXattr converts an XFS on-disk ACL (big-endian count, then tag, id,
// perm entries of 12 bytes) to the xattr interface's POSIX ACL format
// (little-endian version 2 header, then tag, perm, id entries of 8).
func aclToXattr(v []byte, w where) ([]byte, error) {
	if len(v) < 4 {
		return nil, w.corrupt("ACL of %d bytes", len(v))
	}
	n := binary.BigEndian.Uint32(v)
	if n > 25*1024 || int64(len(v)) < 4+int64(n)*12 {
		return nil, w.corrupt("ACL counts %d entries in %d bytes", n, len(v))
	}
	out := binary.LittleEndian.AppendUint32(nil, 2)
	for i := 0; i < int(n); i++ {
		e := v[4+i*12:]
		tag, id, perm := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint16(e[8:])
		if tag != 2 && tag != 8 { // only named user and group entries carry an id
			id = 0xFFFFFFFF
		}
		out = binary.LittleEndian.AppendUint16(out, uint16(tag))
		out = binary.LittleEndian.AppendUint16(out, perm)
		out = binary.LittleEndian.AppendUint32(out, id)
	}
	return out, nil
}

// sortedNames lists the distinct names of xs, sorted.
func sortedNames(xs []xattr) []string {
	seen := map[string]bool{}
	var names []string
	for _, x := range xs {
		if !seen[x.name] {
			seen[x.name] = true
			names = append(names, x.name)
		}
	}
	sort.Strings(names)
	return names
}
