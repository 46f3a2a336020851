package xfs

import (
	"fmt"
	"io"
	"strings"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// readWriterAt is the device of a writable FS.
type readWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Quota flags of sb_qflags that mean the kernel accounts usage: an
// offline write would leave the dquots stale.
const (
	qflagUserAcct    = 0x0001
	qflagProjAcct    = 0x0008
	qflagGroupAcct   = 0x0040
	qflagAcctMask    = qflagUserAcct | qflagProjAcct | qflagGroupAcct
	roCompatWritable = layout.ROCompatFinobt | layout.ROCompatRmapbt | layout.ROCompatReflink | layout.ROCompatInobtCnt
)

// OpenWritable opens the XFS filesystem held in the first size bytes of
// rw for writing: Open, then every refusal of checkWritable (a dirty or
// external log, realtime, quota accounting and unknown feature
// bits), before anything is written. Writes go straight to rw, ordered
// by its Sync when it has one; callers wanting all-or-nothing stage them
// (inject/diskimage does).
func OpenWritable(rw interface {
	io.ReaderAt
	io.WriterAt
}, size int64, opts *Options) (*FS, error) {
	return openWritable(rw, size, opts)
}

// CheckWritable reports what OpenWritable would refuse, without
// writing: a dry run's check on a read-only open.
func (f *FS) CheckWritable() error { return f.checkWritable() }

// openWritable opens the filesystem on rw for writing through
// transactions, after checkWritable: everything the engine cannot write
// safely is refused here, before any write.
func openWritable(rw readWriterAt, size int64, opts *Options) (*FS, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.AllowDirtyLog = false
	f, err := Open(rw, size, &o)
	if err != nil {
		return nil, err
	}
	if err := f.checkWritable(); err != nil {
		return nil, err
	}
	f.w = rw
	return f, nil
}

// elsewhere says what to do about a filesystem the engine will not write.
const elsewhere = "to inject, boot the guest and write from inside it, or use a tool that mounts the filesystem"

// checkWritable refuses, naming the cause, a filesystem the engine
// cannot write without breaking an invariant it does not maintain.
func (f *FS) checkWritable() error {
	sb := f.sb
	if f.log.External {
		return fmt.Errorf("%w: writing needs a clean log, and the log is on an external device", ErrUnsupportedFeature)
	}
	if !f.log.Clean {
		return fmt.Errorf("%w: %s; mount the filesystem once or run xfs_repair before writing", ErrNeedsRecovery, f.log.Detail)
	}
	if f.geo.hasRT || sb.RBlocks != 0 || sb.RExtents != 0 || sb.RBMBlocks != 0 {
		return unsupported("writing a filesystem with a realtime subvolume; %s", elsewhere)
	}
	if sb.QFlags&qflagAcctMask != 0 {
		return unsupported("writing a filesystem with quota accounting (sb_qflags %#x): the quota records would go stale; mount it once without quota options (the kernel then drops the accounting flags), or %s", sb.QFlags, strings.TrimPrefix(elsewhere, "to inject, "))
	}
	if !f.geo.crc && sb.Bits()&layout.VersionNlink == 0 {
		return unsupported("writing version 1 inodes (a version 4 superblock without the nlink bit); %s", elsewhere)
	}
	if f.geo.crc {
		if unk := sb.FeaturesROCompat &^ roCompatWritable; unk != 0 {
			return unsupported("writing with read-only-compatible feature %s, which this engine does not maintain; %s", unk, elsewhere)
		}
		if sb.FeaturesLogIncompat != 0 {
			return unsupported("writing with log-incompatible feature %s set (the log is in use); mount and cleanly unmount the filesystem, or run xfs_repair", sb.FeaturesLogIncompat)
		}
		if sb.FeaturesIncompat&layout.IncompatNrext64 != 0 {
			return unsupported("writing with large extent counters (nrext64); %s", elsewhere)
		}
	}
	return nil
}
