package diskimage

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject/diskimage/stage"
	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/xfs"
)

// ErrCannotGrow: Options.Grow cannot be done (the partition is not the
// last one, its filesystem cannot grow, ...); nothing was written. The
// partition and ext layers' own errors are wrapped too.
var ErrCannotGrow = errs.New(errs.ErrUnsupported, "cannot grow")

// Growth is what Options.Grow did to the disk.
type Growth struct {
	Partition partition.Growth // Number 0 for a filesystem on the whole disk
	// FS is the filesystem's growth; for XFS its groups are allocation
	// groups, and XFS holds the XFS engine's own report.
	FS     ext.GrowReport
	FSType string          `json:"fs_type,omitempty"` // "xfs", or "" for ext
	XFS    *xfs.GrowReport `json:"xfs,omitempty"`
}

// stagedSection is a partition section over the whole-disk stage a grown
// image is written through; the engine's sync barriers go to the stage.
type stagedSection struct {
	*partition.Section
	st *stage.Stage
}

func (s stagedSection) Sync() error { return s.st.Sync() }

// openGrown serves Options.Grow: the whole disk is staged (the partition
// table and the filesystems are written in one unit, committed or
// discarded with the injection), the partition to grow (the root, or the
// one Grow names) is extended to the end of the disk, its filesystem grown
// to fill it, and the root filesystem opened over the same stage.
func (im *Image) openGrown(disk formats.Disk, t *partition.Table, root int, o Options) error {
	if !o.Writable && !o.Rehearse {
		return fmt.Errorf("%w: growing needs the image opened for writing", ErrCannotGrow)
	}
	if o.StageLimit < 0 {
		return fmt.Errorf("%w: growing is only done through staging (the table and the filesystem change together)", ErrCannotGrow)
	}
	sync := disk.Flush
	if o.Rehearse {
		sync = nil
	}
	ds := stage.New(disk, disk.Size(), sync, o.StageLimit)
	im.stage, im.rehearse = ds, o.Rehearse
	num := root
	switch o.Grow {
	case "root", "auto":
	default:
		n, err := strconv.Atoi(o.Grow)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: %q is not a partition number", ErrBadPartition, o.Grow)
		}
		num = n
	}
	g := &Growth{}
	var p partition.Partition
	if t.Scheme == partition.SchemeNone {
		if num != 0 {
			return fmt.Errorf("%w: partition %d: the disk has no partition table", ErrCannotGrow, num)
		}
		p = partition.Partition{Start: 0, Size: disk.Size()}
		g.Partition = partition.Growth{Start: 0, OldSize: disk.Size(), NewSize: disk.Size()}
	} else {
		pg, nt, err := t.Grow(ds, num)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCannotGrow, err)
		}
		g.Partition, im.Table, t = pg, nt, nt
		if p, err = t.Partition(num); err != nil {
			return err
		}
	}
	eo := &ext.Options{Writable: true, Force: o.Force, Warn: o.Warn}
	xo := &xfs.Options{Warn: o.Warn, Batch: true}
	sec := partition.NewSection(ds, p.Start, p.Size)
	fsys, err := openGrowable(stagedSection{sec, ds}, p.Size, eo, xo)
	if err != nil {
		if errors.Is(err, ext.ErrNotExt) {
			return fmt.Errorf("%w: %s holds no ext2/3/4 or XFS filesystem (only those are grown): %w", ErrCannotGrow, describePart(p), err)
		}
		return fmt.Errorf("%s: %w", describePart(p), err)
	}
	switch f := fsys.(type) {
	case *ext.FS:
		g.FS, err = f.Grow(p.Size)
	case *xfs.FS:
		var r xfs.GrowReport
		r, err = f.Grow(p.Size)
		g.FSType, g.XFS = "xfs", &r
		g.FS = ext.GrowReport{BlockSize: r.BlockSize, OldBlocks: r.OldBlocks, NewBlocks: r.NewBlocks, OldGroups: r.OldAGs, NewGroups: r.NewAGs, Writes: r.Writes, Bytes: r.Bytes}
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCannotGrow, describePart(p), err)
	}
	im.Grown = g
	if num == root {
		im.Partition, im.FS = p, fsys
		return nil
	}
	rp, err := t.Partition(root)
	if err != nil {
		return err
	}
	rs, err := t.Open(ds, root)
	if err != nil {
		return err
	}
	im.Partition = rp
	if im.FS, err = openGrowable(stagedSection{rs, ds}, rp.Size, eo, xo); err != nil {
		return fmt.Errorf("%s: %w", describePart(rp), err)
	}
	return nil
}

// openGrowable opens the ext or XFS filesystem on dev for writing.
func openGrowable(dev stagedSection, size int64, eo *ext.Options, xo *xfs.Options) (vfs.FS, error) {
	f, err := ext.Open(dev, size, eo)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, ext.ErrNotExt) {
		return nil, err
	}
	xf, xerr := xfs.OpenWritable(dev, size, xo)
	switch {
	case xerr == nil:
		return xf, nil
	case errors.Is(xerr, xfs.ErrNotXFS):
		return nil, err
	}
	return nil, xerr
}

// growInfo is what inspect says of growing partition p: the free space
// after it, whether --grow could use it, and why not or what it would
// give. It reads nothing (the table is read, fsys's superblock loaded).
func growInfo(t *partition.Table, p partition.Partition, fsys RootProbe) (free int64, ok bool, note string) {
	if p.Extended {
		return 0, false, ""
	}
	size := p.Size
	if t.Scheme != partition.SchemeNone {
		free = t.SpaceAfter(p.Number)
		g, err := t.PlanGrow(p.Number)
		switch {
		case err != nil:
			var pe *partition.Error
			if errors.As(err, &pe) {
				return free, false, pe.Msg
			}
			return free, false, err.Error()
		case !g.Changed():
			return free, false, g.Why
		}
		size = g.NewSize
	}
	var r ext.GrowReport
	var err error
	switch f := fsys.(type) {
	case *ext.FS:
		r, err = f.CheckGrow(size)
	case *xfs.FS:
		var xr xfs.GrowReport
		xr, err = f.CheckGrow(size)
		r = ext.GrowReport{BlockSize: xr.BlockSize, OldBlocks: xr.OldBlocks, NewBlocks: xr.NewBlocks}
	default:
		return free, false, "only ext2/3/4 and XFS filesystems are grown"
	}
	switch {
	case err != nil:
		return free, false, err.Error()
	case !r.Changed():
		return free, false, "the filesystem already fills the space"
	}
	return free, true, fmt.Sprintf("filesystem %d to %d blocks of %d bytes", r.OldBlocks, r.NewBlocks, r.BlockSize)
}
