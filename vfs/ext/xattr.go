package ext

import (
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// maxXattrValue bounds one value (the kernel's XATTR_SIZE_MAX).
const maxXattrValue = 65536

// xattr is one extended attribute; a value stored in an EA inode is read
// only when asked for (inum != 0, value nil).
type xattr struct {
	index uint8
	name  string // full name, prefix included
	value []byte
	inum  uint32
	size  uint32
}

// xattrs returns in's extended attributes: those in the inode body, then
// those of its xattr block.
func (f *FS) xattrs(in *inode) ([]xattr, error) {
	out, err := f.ibodyXattrs(in)
	if err != nil {
		return nil, err
	}
	blk := in.raw.FileACL()
	if blk == 0 {
		return out, nil
	}
	more, err := f.blockXattrs(in, blk)
	return append(out, more...), err
}

// ibodyXattrs parses the attributes after the extra inode fields.
func (f *FS) ibodyXattrs(in *inode) ([]xattr, error) {
	start := layout.InodeBaseSize + int(in.raw.ExtraIsize)
	if f.geo.inodeSize <= layout.InodeBaseSize || start+layout.XattrIbodyHeaderSize > len(in.rec) {
		return nil, nil
	}
	if le32(in.rec, start) != layout.XattrMagic {
		return nil, nil
	}
	region := in.rec[start+layout.XattrIbodyHeaderSize:]
	return f.parseXattrs(region, region, "inode", uint64(in.num), 0)
}

// blockXattrs reads, checks and parses xattr block blk of in.
func (f *FS) blockXattrs(in *inode, blk uint64) ([]xattr, error) {
	b, err := f.block(blk, "xattr block", in.num)
	if err != nil {
		return nil, err
	}
	if err := f.checkXattrBlock(b, blk, in.num); err != nil {
		return nil, err
	}
	return f.parseXattrs(b[layout.XattrHeaderSize:], b, "xattr block", blk, in.num)
}

// checkXattrBlock validates the header and checksum of an xattr block.
func (f *FS) checkXattrBlock(b []byte, blk uint64, ino uint32) error {
	h, err := layout.DecodeXattrHeader(b)
	if err != nil {
		return err
	}
	at := int64(blk) * f.geo.blockSize
	if h.Magic != layout.XattrMagic || h.Blocks != 1 || h.Refcount == 0 {
		return corrupt("xattr block", blk, ino, at, "magic %#x, %d blocks, refcount %d", h.Magic, h.Blocks, h.Refcount)
	}
	if !f.geo.metaCsum {
		return nil
	}
	tmp := append([]byte(nil), b...)
	clear(tmp[layout.XattrBlockCsumOffset : layout.XattrBlockCsumOffset+4])
	want := crc32c(crc32cU64(f.geo.csumSeed, blk), tmp)
	if want != h.Checksum {
		return badChecksum("xattr block", blk, ino, at, h.Checksum, want)
	}
	return nil
}

// parseXattrs walks the entry list at the start of entries; values are at
// offsets from base. Both are bounded by their slices.
func (f *FS) parseXattrs(entries, base []byte, what string, num uint64, ino uint32) ([]xattr, error) {
	var out []xattr
	off := 0
	for !layout.IsXattrListEnd(entries[off:]) {
		if off+layout.XattrEntrySize > len(entries) {
			return nil, corrupt(what, num, ino, -1, "xattr entry at %d runs past the end", off)
		}
		e, _ := layout.DecodeXattrEntry(entries[off:])
		nameEnd := off + layout.XattrEntrySize + int(e.NameLen)
		if nameEnd > len(entries) { // an empty name is fine: the ACL indexes have none
			return nil, corrupt(what, num, ino, -1, "xattr entry at %d has a %d-byte name", off, e.NameLen)
		}
		x, err := f.xattrEntry(e, string(entries[off+layout.XattrEntrySize:nameEnd]), base, what, num, ino)
		if err != nil {
			return nil, err
		}
		if x.name != "" {
			out = append(out, x)
		}
		off += layout.XattrEntryLen(int(e.NameLen))
		if off >= len(entries) {
			return nil, corrupt(what, num, ino, -1, "xattr entry list has no end marker")
		}
	}
	return out, nil
}

// xattrEntry checks one entry's value bounds and builds the attribute (an
// unknown name index yields a nameless one, which callers skip).
func (f *FS) xattrEntry(e *layout.XattrEntry, suffix string, base []byte, what string, num uint64, ino uint32) (xattr, error) {
	if e.ValueSize > maxXattrValue {
		return xattr{}, corrupt(what, num, ino, -1, "xattr %q value of %d bytes", suffix, e.ValueSize)
	}
	x := xattr{index: e.NameIndex, size: e.ValueSize}
	if prefix, ok := layout.XattrPrefix(e.NameIndex); ok {
		x.name = prefix + suffix
	}
	if e.ValueInum != 0 {
		if !f.sb.FeatureIncompat.Has(layout.IncompatEAInode) || !f.validIno(e.ValueInum) {
			return xattr{}, corrupt(what, num, ino, -1, "xattr %q value in inode %d", suffix, e.ValueInum)
		}
		x.inum = e.ValueInum
		return x, nil
	}
	start, end := int(e.ValueOffs), int(e.ValueOffs)+int(e.ValueSize)
	if end > len(base) {
		return xattr{}, corrupt(what, num, ino, -1, "xattr %q value %d+%d runs past the end", suffix, start, e.ValueSize)
	}
	x.value = base[start:end:end]
	return x, nil
}

// xattrValue returns x's value, reading it from its EA inode if needed.
func (f *FS) xattrValue(x xattr, owner uint32) ([]byte, error) {
	if x.inum == 0 {
		return append([]byte(nil), x.value...), nil
	}
	in, err := f.inode(x.inum)
	if err != nil {
		return nil, err
	}
	if !in.flag(layout.FlagEAInode) || in.size != int64(x.size) {
		return nil, corrupt("inode", uint64(x.inum), 0, -1, "EA inode for %q of inode %d: flags %#x, size %d, want %d", x.name, owner, in.raw.Flags, in.size, x.size)
	}
	return f.readAll(in, maxXattrValue)
}

// sortedNames returns the distinct names of xs, sorted.
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
