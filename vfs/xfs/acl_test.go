package xfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// TestACLToXattr converts a hand-built XFS ACL (user::rw-, user:1000:r--,
// group::r--, mask::r--, other::---) to the xattr interface's format and
// refuses counts the value cannot hold.
func TestACLToXattr(t *testing.T) {
	ents := [][3]uint32{{1, 0, 6}, {2, 1000, 4}, {4, 0, 4}, {0x10, 0, 4}, {0x20, 0, 0}}
	v := binary.BigEndian.AppendUint32(nil, uint32(len(ents)))
	for _, e := range ents {
		v = binary.BigEndian.AppendUint32(v, e[0])
		v = binary.BigEndian.AppendUint32(v, e[1])
		v = binary.BigEndian.AppendUint16(v, uint16(e[2]))
		v = append(v, 0, 0)
	}
	got, err := aclToXattr(v, at("ACL", 1))
	if err != nil {
		t.Fatal(err)
	}
	want := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range ents {
		id := uint32(0xFFFFFFFF)
		if e[0] == 2 {
			id = e[1]
		}
		want = binary.LittleEndian.AppendUint16(want, uint16(e[0]))
		want = binary.LittleEndian.AppendUint16(want, uint16(e[2]))
		want = binary.LittleEndian.AppendUint32(want, id)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("converted ACL\n%x\nwant\n%x", got, want)
	}
	binary.BigEndian.PutUint32(v, 1000)
	if _, err := aclToXattr(v, at("ACL", 1)); !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("ACL claiming 1000 entries: %v", err)
	}
	if _, err := aclToXattr(v[:2], at("ACL", 1)); !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("2-byte ACL: %v", err)
	}
}
