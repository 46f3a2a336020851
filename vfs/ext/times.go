package ext

import (
	"fmt"
	"io/fs"
	"math"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var _ vfs.TimeSetter = (*FS)(nil)

// SetTimes sets the access and modification times of the object at p (a
// final symlink is not followed) and its change time to now, in one
// transaction. Nanoseconds and the epoch bits go into the extra fields
// where the inode has them; a time the inode cannot hold (before 1901 or
// after 2038 without them, after 2446 with them) is refused, not clamped.
func (f *FS) SetTimes(p string, atime, mtime time.Time) error {
	defer f.wlock()()
	return f.changeNoFollow("utimes", p, func(t *tx, in *inode) error {
		if err := t.putTime(in, atime, &in.raw.Atime, &in.raw.AtimeExtra, layout.EndAtimeExtra); err != nil {
			return fmt.Errorf("atime: %w", err)
		}
		if err := t.putTime(in, mtime, &in.raw.Mtime, &in.raw.MtimeExtra, layout.EndMtimeExtra); err != nil {
			return fmt.Errorf("mtime: %w", err)
		}
		t.setTimes(in, false, true, false, false)
		t.dirtyInode(in)
		return nil
	})
}

// putTime encodes tm into an inode time field and, when the inode has it,
// its extra field (nanoseconds, epoch).
func (t *tx) putTime(in *inode, tm time.Time, sec, extra *uint32, end int) error {
	s, ns := tm.Unix(), int64(tm.Nanosecond())
	hasExtra := in.raw.HasExtra(end) && len(in.rec) > layout.InodeBaseSize
	hi := int64(math.MaxInt32)
	if hasExtra {
		hi += layout.TimeEpochMask << 32
	}
	if s < math.MinInt32 || s > hi {
		return fmt.Errorf("inode %d cannot hold %v: %w", in.num, tm.UTC(), fs.ErrInvalid)
	}
	es, ex := layout.EncodeTime(s, ns)
	*sec = es
	if hasExtra {
		*extra = ex
	}
	return nil
}

// changeNoFollow runs change in a transaction on the inode p names, a
// final symlink not followed (the operations of the vfs.XattrWriter and
// vfs.TimeSetter contracts). A trailing slash requires a directory. An
// immutable or append-only inode is refused (fs.ErrPermission), as the
// kernel refuses both changes there.
func (f *FS) changeNoFollow(op, p string, change func(t *tx, in *inode) error) error {
	r, err := f.lresolve(op, p)
	if err != nil {
		return err
	}
	if !r.Exists {
		return vfs.PathErr(op, p, fs.ErrNotExist)
	}
	err = f.inTx(func(t *tx) error {
		in, err := t.inode(r.Node)
		if err != nil {
			return err
		}
		if in.flag(layout.FlagImmutable) || in.flag(layout.FlagAppend) {
			return fmt.Errorf("inode %d is immutable or append-only: %w", in.num, fs.ErrPermission)
		}
		return change(t, in)
	})
	if err != nil {
		return vfs.PathErr(op, p, err)
	}
	return nil
}

// lresolve resolves p for an operation that names an entry without
// following a final symlink (see vfs.ResolveEntry).
func (f *FS) lresolve(op, p string) (vfs.Resolved[uint32], error) {
	return vfs.ResolveEntry[uint32](tree{f}, op, p)
}

// Times returns the access, modification and change times of the object
// at p (a final symlink is not followed), as the inode holds them.
func (f *FS) Times(p string) (atime, mtime, ctime time.Time, err error) {
	r, err := f.lresolve("stat", p)
	if err != nil {
		return
	}
	if !r.Exists {
		err = vfs.PathErr("stat", p, fs.ErrNotExist)
		return
	}
	in, err := f.inode(r.Node)
	if err != nil {
		err = vfs.PathErr("stat", p, err)
		return
	}
	get := func(sec, extra uint32, end int) time.Time {
		if !in.raw.HasExtra(end) {
			extra = 0
		}
		s, ns := layout.DecodeTime(sec, extra)
		return time.Unix(s, ns)
	}
	return get(in.raw.Atime, in.raw.AtimeExtra, layout.EndAtimeExtra), in.mtime(),
		get(in.raw.Ctime, in.raw.CtimeExtra, layout.EndCtimeExtra), nil
}
