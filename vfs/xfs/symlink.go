package xfs

import (
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// maxSymlinkLen is the longest target XFS stores (its own limit, the
// kernel's PATH_MAX does not apply on disk).
const maxSymlinkLen = 1024

// readlink returns the target of symlink in: inline in the data fork, or
// in remote blocks (each mapped extent a buffer with, on v5, one
// self-describing header and CRC).
func (f *FS) readlink(in *inode) (string, error) {
	w := at("symlink", in.ino)
	size := in.size()
	if size <= 0 || size > maxSymlinkLen {
		return "", w.corrupt("target length %d outside [1, %d]", size, maxSymlinkLen)
	}
	if in.core.Format == layout.FormatLocal {
		if size > int64(len(in.data)) {
			return "", w.corrupt("target length %d exceeds the %d-byte data fork", size, len(in.data))
		}
		return string(in.data[:size]), nil
	}
	exts, err := f.forkExtents(in, false)
	if err != nil {
		return "", err
	}
	g := &f.geo
	out := make([]byte, 0, size)
	var next uint64
	for _, e := range exts {
		if e.StartOff != next || int64(len(out)) >= size {
			return "", w.corrupt("remote target blocks are not contiguous from block 0")
		}
		if int64(e.Count)<<g.blockLog > 4*maxSymlinkLen+g.blockSize {
			return "", w.corrupt("remote target extent of %d blocks", e.Count)
		}
		lin := g.fsbLinear(e.StartBlock)
		ew := where{what: "symlink block", ag: int64(e.StartBlock >> g.agBlkLog), block: int64(e.StartBlock), ino: in.ino, off: lin << g.blockLog}
		b := make([]byte, int64(e.Count)<<g.blockLog)
		if err := f.readAt(b, ew.off, ew); err != nil {
			return "", err
		}
		if g.crc {
			h, err := layout.DecodeRemoteHdr(b)
			if err != nil {
				return "", ew.corrupt("%v", err)
			}
			if h.Magic != layout.SymlinkMagic {
				return "", ew.corrupt("bad magic %#x", h.Magic)
			}
			if err := f.checkSelf(b, layout.RemoteHdrCRCOffset, h.Blkno, h.UUID, h.Owner, in.ino, lin, ew); err != nil {
				return "", err
			}
			if int64(h.Offset) != int64(len(out)) || int64(h.Bytes) > int64(len(b)-layout.RemoteHdrSize) || int64(len(out))+int64(h.Bytes) > size {
				return "", ew.corrupt("header says %d bytes at offset %d of a %d-byte target", h.Bytes, h.Offset, size)
			}
			out = append(out, b[layout.RemoteHdrSize:layout.RemoteHdrSize+int(h.Bytes)]...)
		} else {
			out = append(out, b[:min(int64(len(b)), size-int64(len(out)))]...)
		}
		next = e.StartOff + uint64(e.Count)
	}
	if int64(len(out)) != size {
		return "", w.corrupt("remote blocks hold %d bytes of a %d-byte target", len(out), size)
	}
	return string(out), nil
}
