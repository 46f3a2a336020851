package ext

import (
	"encoding/binary"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// aclToXattr converts a POSIX ACL from ext4's compact on-disk form
// (version 1; short entries for the owner, group, mask and other) to the
// form the xattr interface returns (version 2, every entry with an id).
func aclToXattr(b []byte, ino uint32) ([]byte, error) {
	bad := func() ([]byte, error) {
		return nil, corrupt("inode", uint64(ino), 0, -1, "malformed POSIX ACL")
	}
	if len(b) < 4 || binary.LittleEndian.Uint32(b) != layout.ACLExt4Version {
		return bad()
	}
	out := binary.LittleEndian.AppendUint32(nil, layout.ACLXattrVersion)
	for off := 4; off < len(b); {
		if off+4 > len(b) {
			return bad()
		}
		tag, perm := binary.LittleEndian.Uint16(b[off:]), binary.LittleEndian.Uint16(b[off+2:])
		id := ^uint32(0)
		switch tag {
		case layout.ACLUserObj, layout.ACLGroupObj, layout.ACLMask, layout.ACLOther:
			off += 4
		case layout.ACLUser, layout.ACLGroup:
			if off+8 > len(b) {
				return bad()
			}
			id = binary.LittleEndian.Uint32(b[off+4:])
			off += 8
		default:
			return bad()
		}
		out = binary.LittleEndian.AppendUint16(out, tag)
		out = binary.LittleEndian.AppendUint16(out, perm)
		out = binary.LittleEndian.AppendUint32(out, id)
	}
	return out, nil
}
