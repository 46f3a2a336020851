// Package layout holds the on-disk structures of XFS (v4 and v5) and
// nothing else: no I/O, no policy. Each structure is a Go struct whose
// fields mirror the disk byte for byte (a hex comment gives each field's
// offset, a size test pins each struct), decoded from a byte slice with
// encoding/binary in big-endian order, as XFS stores everything but its
// CRC32c checksums (which are little-endian).
//
// Naming: fields keep the on-disk names without their prefix (sb_, agf_,
// di_, ...). A value split over two fields keeps both halves raw, as Lo
// and Hi (ProjidLo, ProjidHi); one accessor method joins them (Projid).
// Feature bits are typed (Incompat, ROCompat, VersionBits, Features2) and
// name themselves through String. Records packed into bit fields (the
// 128-bit extent record) are decoded by a function of their own.
//
// Decoding never fails on content: it only needs a buffer at least as long
// as the structure. Validating what was decoded is the caller's job.
package layout

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// decode fills v (a pointer to a fixed-size struct) from the start of b in
// big-endian order. It fails only when b is too short.
func decode(b []byte, v any, what string) error {
	n := binary.Size(v)
	if len(b) < n {
		return fmt.Errorf("%s needs %d bytes, have %d", what, n, len(b))
	}
	_, err := binary.Decode(b[:n], binary.BigEndian, v)
	return err
}

// Encode writes v into the start of b in big-endian order (b must be long
// enough); it is the inverse of the decoders, used by tests.
func Encode(b []byte, v any) error {
	_, err := binary.Encode(b, binary.BigEndian, v)
	return err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum computes the CRC32c XFS stores in a v5 structure: over all of b
// with the four bytes at off counted as zero. It does not modify b.
func Checksum(b []byte, off int) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, b[off+4:])
}

// StoredChecksum returns the little-endian CRC stored at off in b.
func StoredChecksum(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }

// BBSize is the size of a "basic block", the 512-byte unit XFS addresses
// sectors and log blocks in.
const BBSize = 512
