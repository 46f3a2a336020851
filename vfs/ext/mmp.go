package ext

import (
	"fmt"
	"strings"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// ErrInUse: the filesystem may be in use elsewhere (MMP says a node holds
// it); Options.Force writes anyway.
var ErrInUse = errs.NewForceable(errs.ErrInUse, "ext: filesystem may be mounted")

// checkMMP reads the multi-mount protection block of an mmp filesystem
// and refuses one that a node or e2fsck may be using. The block itself
// must be sound (number, magic, checksum) whatever Force says.
func (f *FS) checkMMP() error {
	if !f.sb.FeatureIncompat.Has(layout.IncompatMMP) {
		return nil
	}
	m, err := f.readMMP()
	if err != nil {
		return err
	}
	if m.Seq == layout.MMPSeqClean {
		return nil
	}
	state := fmt.Sprintf("MMP seq %#x, node %q, device %q", m.Seq, m.Node, m.Device)
	if m.Seq == layout.MMPSeqFsck {
		state = "e2fsck is running: " + state
	}
	if f.opts.Force {
		f.warn("ext: writing although the filesystem may be mounted (" + state + ")")
		return nil
	}
	return fmt.Errorf("%w (%s); unmount it, or force", ErrInUse, state)
}

// readMMP reads and validates the MMP block.
func (f *FS) readMMP() (mmpBlock, error) {
	n := f.sb.MMPBlock
	if !f.validBlock(n) {
		return mmpBlock{}, corrupt("MMP block", n, 0, -1, "block number out of range (filesystem has %d blocks)", f.geo.blocksCount)
	}
	buf := make([]byte, layout.MMPSize)
	off := int64(n) * f.geo.blockSize
	if err := f.readAt(buf, off, "MMP block", n); err != nil {
		return mmpBlock{}, err
	}
	m := decodeMMP(buf)
	if m.Magic != layout.MMPMagic {
		return m, corrupt("MMP block", n, 0, off, "magic %#x", m.Magic)
	}
	if f.geo.metaCsum {
		if want := crc32c(f.geo.csumSeed, buf[:layout.MMPChecksumOff]); want != m.Checksum {
			return m, badChecksum("MMP block", n, 0, off, m.Checksum, want)
		}
	}
	if m.Seq > layout.MMPSeqMax && m.Seq != layout.MMPSeqClean && m.Seq != layout.MMPSeqFsck {
		return m, corrupt("MMP block", n, 0, off, "sequence %#x is neither a mount sequence nor clean nor fsck", m.Seq)
	}
	m.Node, m.Device = strings.ToValidUTF8(m.Node, "?"), strings.ToValidUTF8(m.Device, "?")
	return m, nil
}

// mmpBlock is the MMP block as checkMMP reports it: the node and device
// names as strings.
type mmpBlock struct {
	Magic, Seq, Checksum uint32
	Node, Device         string
}

// decodeMMP decodes the first layout.MMPSize bytes of b (the caller reads
// that many).
func decodeMMP(b []byte) mmpBlock {
	m, err := layout.DecodeMMP(b)
	if err != nil {
		return mmpBlock{}
	}
	return mmpBlock{Magic: m.Magic, Seq: m.Seq, Checksum: m.Checksum,
		Node: cString(m.NodeName[:]), Device: cString(m.BdevName[:])}
}
