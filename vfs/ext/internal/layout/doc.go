// Package layout holds the on-disk structures of ext2, ext3 and ext4 and of
// the jbd2 journal, and nothing else: no I/O, no policy. Each structure is a
// Go struct whose fields mirror the disk byte for byte (a hex comment gives
// each field's offset, a size test pins each struct), decoded from a byte
// slice with encoding/binary; the small structures read once per entry
// (dirents, extents) are decoded by hand instead, as fast as reading the
// fields, and a test holds each to what encoding/binary decodes. So are the
// structures read or written once per inode, descriptor or transaction
// (superblocks, inodes, group descriptors, the journal superblock), by
// codec.go, which a test generates from the structs and holds to
// encoding/binary.
//
// Naming: fields keep the on-disk names without their prefix (s_, bg_, i_,
// ee_, ...). A value split over two fields keeps both halves raw, as Lo and
// Hi (BlocksCountLo, BlocksCountHi); one accessor method joins them
// (BlocksCount). Flags are typed (IncompatFeature, InodeFlag) and name
// themselves through String.
//
// Decoding never fails on content: it only needs a buffer at least as long
// as the structure. Validating what was decoded is the caller's job.
package layout

import (
	"encoding/binary"
	"fmt"
)

// decode fills v (a pointer to a fixed-size struct) from the start of b in
// little-endian order. It fails only when b is too short.
func decode(b []byte, v any, what string) error {
	if c, ok := v.(codec); ok {
		if len(b) < c.size() {
			return short(what, c.size(), len(b))
		}
		c.get(b)
		return nil
	}
	n := binary.Size(v)
	if len(b) < n {
		return short(what, n, len(b))
	}
	_, err := binary.Decode(b[:n], binary.LittleEndian, v)
	return err
}

// short is decode's error for a buffer too short for what.
func short(what string, n, have int) error {
	return fmt.Errorf("%s needs %d bytes, have %d", what, n, have)
}

var le = binary.LittleEndian

// encode writes v into the start of b in little-endian order (b must be
// long enough); it is the inverse of decode, used by tests and writers.
func encode(b []byte, v any) error {
	if c, ok := v.(codec); ok {
		if len(b) < c.size() {
			return short("encoding", c.size(), len(b))
		}
		c.put(b)
		return nil
	}
	_, err := binary.Encode(b, binary.LittleEndian, v)
	return err
}
