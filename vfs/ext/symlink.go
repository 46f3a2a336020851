package ext

import (
	"bytes"
	"io"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// readlink returns the target of symlink in: inline in i_block (fast), in
// inline data, or in data blocks (slow).
func (f *FS) readlink(in *inode) (string, error) {
	bad := func(format string, args ...any) (string, error) {
		return "", corrupt("inode", uint64(in.num), 0, -1, format, args...)
	}
	if in.size == 0 || in.size > vfs.MaxPathLen {
		return bad("symlink of %d bytes", in.size)
	}
	if in.flag(layout.FlagEncrypt) {
		return "", unsupported("symlink inode %d is encrypted", in.num)
	}
	var target []byte
	if f.isFastSymlink(in) {
		target = in.iblock()[:in.size]
	} else {
		d, err := f.openData(in)
		if err != nil {
			return "", err
		}
		target = make([]byte, in.size)
		if n, err := d.ReadAt(target, 0); n < len(target) {
			if err == nil || err == io.EOF {
				return bad("symlink target short: %d of %d bytes", n, in.size)
			}
			return "", err
		}
	}
	if bytes.IndexByte(target, 0) >= 0 {
		return bad("symlink target holds a NUL byte")
	}
	return string(target), nil
}

// isFastSymlink follows e2fsprogs: a target shorter than i_block lives
// in it, unless the inode holds inline data, or has an extent tree that
// maps blocks (a legacy slow symlink). i_blocks alone cannot decide: with
// ea_inode it also counts the blocks of attribute inodes.
func (f *FS) isFastSymlink(in *inode) bool {
	if in.flag(layout.FlagInlineData) || in.size >= layout.InodeBlockSize {
		return false
	}
	var ea uint64
	if in.raw.FileACL() != 0 {
		ea = uint64(f.geo.clusterSize >> 9)
	}
	return !in.flag(layout.FlagExtents) || f.blocks512(in) <= ea
}
