package ext

import (
	"fmt"
	"strings"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs/ext/layout"
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
	if m.Seq == mmpSeqClean {
		return nil
	}
	state := fmt.Sprintf("MMP seq %#x, node %q, device %q", m.Seq, m.Node, m.Device)
	if m.Seq == mmpSeqFsck {
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
	buf := make([]byte, mmpSize)
	off := int64(n) * f.geo.blockSize
	if err := f.readAt(buf, off, "MMP block", n); err != nil {
		return mmpBlock{}, err
	}
	m := decodeMMP(buf)
	if m.Magic != mmpMagic {
		return m, corrupt("MMP block", n, 0, off, "magic %#x", m.Magic)
	}
	if f.geo.metaCsum {
		if want := crc32c(f.geo.csumSeed, buf[:mmpChecksumOff]); want != m.Checksum {
			return m, badChecksum("MMP block", n, 0, off, m.Checksum, want)
		}
	}
	if m.Seq > mmpSeqMax && m.Seq != mmpSeqClean && m.Seq != mmpSeqFsck {
		return m, corrupt("MMP block", n, 0, off, "sequence %#x is neither a mount sequence nor clean nor fsck", m.Seq)
	}
	m.Node, m.Device = strings.ToValidUTF8(m.Node, "?"), strings.ToValidUTF8(m.Device, "?")
	return m, nil
}
