// Package image opens a disk image as users have it — raw or qcow2, a thin
// overlay on a base, partitioned (MBR with logical partitions, GPT) or not —
// finds the guest's root filesystem and serves it as a vfs.FS:
//
//	formats.Open ─▶ partition.Read ─▶ partition section ─▶ ext.Open
//
// Policy lives here (which partition is the root, whether a backing file
// may be opened, whether to write); the layers below only do what they are
// told.
package image

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/xfs"
)

// Errors of root detection; test with errors.Is.
var (
	// ErrNoRoot: no partition holds an ext filesystem that looks like a
	// guest root. The error lists what each partition holds.
	ErrNoRoot = errors.New("no guest root filesystem found")
	// ErrManyRoots: several partitions look like a guest root (a
	// multi-boot disk); pick one with Partition.
	ErrManyRoots = errors.New("several partitions look like a guest root")
	// ErrBadPartition: the Partition option names no usable partition.
	ErrBadPartition = errors.New("no such partition")
	// ErrNotExt: the chosen partition holds no filesystem this tool can
	// open (it names what it holds instead).
	ErrNotExt = errors.New("partition holds no ext2/3/4 filesystem")
)

// Options say how to open an image and which filesystem to serve.
type Options struct {
	Format  string                // "", "raw" or "qcow2" ("" detects by magic)
	Backing formats.BackingPolicy // which backing files the image may name
	NoLock  bool                  // skip the qemu-compatible image locks
	// Fresh: the image was just created by this process (an overlay) and
	// is discarded, not repaired, if the run fails (formats.Options.Fresh).
	Fresh bool

	// Partition is "auto" (or ""): the one partition that looks like a
	// guest root; "none": a filesystem on the whole disk; or a partition
	// number as Linux numbers them (1-4 primary, 5+ logical, GPT index+1).
	Partition string
	// Offset, when non-zero, serves the filesystem starting at this byte
	// of the disk and ignores any partition table.
	Offset int64

	Writable          bool // open the image and the filesystem for writing
	Force             bool // ext.Options.Force
	AllowDirtyJournal bool // ext.Options.AllowDirtyJournal (read-only opens)
	Warn              func(string)
}

// Image is an opened image with the filesystem chosen in it.
type Image struct {
	Disk      formats.Disk     // *formats.Image when opened by Open
	Table     *partition.Table // nil when Offset was given
	Partition partition.Partition
	// FS is the guest filesystem: *ext.FS, or *xfs.FS (read-only) for
	// an XFS root.
	FS vfs.FS
}

// Open opens the image at path and the filesystem Options select in it.
func Open(path string, o Options) (*Image, error) {
	disk, err := formats.Open(path, formats.Options{Format: o.Format, ReadOnly: !o.Writable, Backing: o.Backing, NoLock: o.NoLock, Fresh: o.Fresh})
	if err != nil {
		return nil, err
	}
	im, err := openOn(disk, o)
	if err != nil {
		disk.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

// OpenDisk is Open over a disk the caller already opened (an image file
// through formats.Open, or any other virtual disk). The Format, Backing and
// NoLock options do not apply; the returned Image owns disk and closes it.
func OpenDisk(disk formats.Disk, o Options) (*Image, error) {
	return openOn(disk, o)
}

// Close flushes what was written to stable storage (fsync, for raw images
// too) and closes the image and its chain.
func (im *Image) Close() error {
	err := im.Disk.Flush()
	if cerr := im.Disk.Close(); err == nil {
		err = cerr
	}
	return err
}

func openOn(disk formats.Disk, o Options) (*Image, error) {
	im := &Image{Disk: disk}
	if o.Offset != 0 {
		if o.Offset < 0 || o.Offset >= disk.Size() {
			return nil, fmt.Errorf("%w: offset %d is outside the %d-byte disk", ErrBadPartition, o.Offset, disk.Size())
		}
		im.Partition = partition.Partition{Start: o.Offset, Size: disk.Size() - o.Offset}
		return im, im.openFS(partition.NewSection(disk, o.Offset, disk.Size()-o.Offset), disk, o)
	}
	t, err := partition.Read(disk, disk.Size())
	if err != nil {
		return nil, err
	}
	im.Table = t
	num, err := choose(disk, t, o)
	if err != nil {
		return nil, err
	}
	sec, err := section(disk, t, num)
	if err != nil {
		return nil, err
	}
	im.Partition = sec.part
	return im, im.openFS(sec.Section, disk, o)
}

// fsSection is the partition as the filesystem sees it: bounded by the
// partition section, and Sync flushes the disk below (the ext engine syncs
// through it, e.g. after replaying a journal).
type fsSection struct {
	*partition.Section
	disk formats.Disk
}

func (s fsSection) Sync() error { return s.disk.Flush() }

func (im *Image) openFS(sec *partition.Section, disk formats.Disk, o Options) error {
	size := im.Partition.Size
	fsys, err := ext.Open(fsSection{sec, disk}, size, &ext.Options{Writable: o.Writable, Force: o.Force, AllowDirtyJournal: o.AllowDirtyJournal, Warn: o.Warn})
	if errors.Is(err, ext.ErrNotExt) {
		var xf *xfs.FS
		if xf, err = openXFS(sec, size, o); err == nil {
			im.FS = xf
			return nil
		}
		if errors.Is(err, xfs.ErrNotXFS) {
			err = fmt.Errorf("%w (nor %w)", ext.ErrNotExt, xfs.ErrNotXFS)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", describePart(im.Partition), err)
	}
	im.FS = fsys
	return nil
}

// openXFS opens an XFS filesystem: read-only, so a writable open is
// refused before anything is read past the superblock.
func openXFS(sec io.ReaderAt, size int64, o Options) (*xfs.FS, error) {
	f, err := xfs.Open(sec, size, &xfs.Options{AllowDirtyLog: o.AllowDirtyJournal, Warn: o.Warn})
	if err == nil && o.Writable {
		return nil, fmt.Errorf("xfs: this engine only reads XFS: %w", vfs.ErrReadOnly)
	}
	return f, err
}

// partSection is a partition and the section of the disk that holds it.
type partSection struct {
	*partition.Section
	part partition.Partition
}

// section returns the bounded section of partition num; 0 is the whole
// disk when the table is empty.
func section(disk formats.Disk, t *partition.Table, num int) (partSection, error) {
	if num == 0 && t.Scheme != partition.SchemeNone {
		return partSection{}, fmt.Errorf("%w: partition 0 (the whole disk) of a disk with a %s table", ErrBadPartition, t.Scheme)
	}
	if num == 0 && len(t.Partitions) == 0 {
		p := partition.Partition{Start: 0, Size: disk.Size()}
		return partSection{partition.NewSection(disk, 0, disk.Size()), p}, nil
	}
	p, err := t.Partition(num)
	if err != nil {
		return partSection{}, fmt.Errorf("%w: %d: %w", ErrBadPartition, num, err)
	}
	s, err := t.Open(disk, num)
	if err != nil {
		return partSection{}, err
	}
	return partSection{s, p}, nil
}

// choose applies the Partition option.
func choose(disk formats.Disk, t *partition.Table, o Options) (int, error) {
	switch sel := strings.TrimSpace(o.Partition); sel {
	case "", "auto":
		c, err := findRoot(disk, t)
		if err != nil {
			return 0, err
		}
		return c.Number, nil
	case "none":
		return 0, nil
	default:
		n, err := strconv.Atoi(sel)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: %q is not auto, none or a partition number", ErrBadPartition, sel)
		}
		return n, nil
	}
}

func describePart(p partition.Partition) string {
	if p.Number == 0 {
		if p.Start == 0 {
			return "whole disk"
		}
		return fmt.Sprintf("filesystem at offset %d", p.Start)
	}
	return fmt.Sprintf("partition %d", p.Number)
}
