package image

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject/image/stage"
	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/vfs/ext"
)

// ErrCannotGrow: Options.Grow cannot be done (the partition is not the
// last one, its filesystem cannot grow, ...); nothing was written. The
// partition and ext layers' own errors are wrapped too.
var ErrCannotGrow = errors.New("cannot grow")

// Growth is what Options.Grow did to the disk.
type Growth struct {
	Partition partition.Growth // Number 0 for a filesystem on the whole disk
	FS        ext.GrowReport
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
	sec := partition.NewSection(ds, p.Start, p.Size)
	fsys, err := ext.Open(stagedSection{sec, ds}, p.Size, eo)
	if err != nil {
		if errors.Is(err, ext.ErrNotExt) {
			return fmt.Errorf("%w: %s holds no ext2/3/4 filesystem (only ext filesystems are grown): %w", ErrCannotGrow, describePart(p), err)
		}
		return fmt.Errorf("%s: %w", describePart(p), err)
	}
	if g.FS, err = fsys.Grow(p.Size); err != nil {
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
	if im.FS, err = ext.Open(stagedSection{rs, ds}, rp.Size, eo); err != nil {
		return fmt.Errorf("%s: %w", describePart(rp), err)
	}
	return nil
}

// growInfo is what inspect says of growing partition p: the free space
// after it, whether --grow could use it, and why not or what it would
// give. It reads nothing (the table is read, fsys's superblock loaded).
func growInfo(t *partition.Table, p partition.Partition, fsys *ext.FS) (free int64, ok bool, note string) {
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
	if fsys == nil {
		return free, false, "only ext2/3/4 filesystems are grown"
	}
	r, err := fsys.CheckGrow(size)
	switch {
	case err != nil:
		return free, false, err.Error()
	case !r.Changed():
		return free, false, "the filesystem already fills the space"
	}
	return free, true, fmt.Sprintf("filesystem %d to %d blocks of %d bytes", r.OldBlocks, r.NewBlocks, r.BlockSize)
}
