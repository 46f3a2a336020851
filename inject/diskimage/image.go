// Package diskimage opens a disk image as users have it — raw or qcow2, a thin
// overlay on a base, partitioned (MBR with logical partitions, GPT) or not —
// finds the guest's root filesystem and serves it as a vfs.FS:
//
//	formats.Open ─▶ partition.Read ─▶ partition section ─▶ ext.Open
//
// Policy lives here (which partition is the root, whether a backing file
// may be opened, whether to write); the layers below only do what they are
// told.
package diskimage

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject/diskimage/stage"
	"github.com/guestinject/guestinject/lvm"
	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/xfs"
)

// Errors of root detection; test with errors.Is.
var (
	// ErrNoRoot: no partition holds an ext filesystem that looks like a
	// guest root. The error lists what each partition holds.
	ErrNoRoot = errs.New(errs.ErrAmbiguous, "no guest root filesystem found")
	// ErrManyRoots: several partitions look like a guest root (a
	// multi-boot disk); pick one with Partition.
	ErrManyRoots = errs.New(errs.ErrAmbiguous, "several partitions look like a guest root")
	// ErrBadPartition: the Partition option names no usable partition.
	ErrBadPartition = errs.New(errs.ErrNotFound, "no such partition")
	// ErrNotExt: the chosen partition holds no filesystem this tool can
	// open (it names what it holds instead).
	ErrNotExt = errs.New(errs.ErrUnsupported, "partition holds no ext2/3/4 filesystem")
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
	// LoneFS, for readers: when Partition is auto and no filesystem looks
	// like a guest root, serve the only ext or XFS filesystem the disk
	// holds (a data disk, a bare filesystem image) rather than refuse.
	// Injections leave it off: they write only into a guest root.
	LoneFS bool
	// Offset, when non-zero, serves the filesystem starting at this byte
	// of the disk and ignores any partition table.
	Offset int64

	Writable bool // open the image and the filesystem for writing
	// Rehearse opens the image read-only and the filesystem writable over
	// a stage that is never committed: every write is made in memory
	// (reads see it), with the refusals and the journal replay of a
	// writable open, and nothing reaches the image. A dry run that
	// rehearses the injection meets every failure the real run would.
	Rehearse bool
	// StageLimit bounds the bytes a writable open holds in memory until
	// Commit (stage.DefaultLimit, 1 GiB, when 0); an injection that
	// writes more fails with stage.ErrLimit and writes nothing. Negative
	// turns staging off: writes then reach the image as they are made
	// (a failure part-way leaves the earlier ones written).
	StageLimit int64
	// Grow, on a writable open, first extends a partition to the end of
	// the disk and grows its ext filesystem to fill it (see grow.go):
	// "root" the root filesystem's partition, or a partition number.
	Grow              string
	Force             bool // ext.Options.Force
	AllowDirtyJournal bool // ext.Options.AllowDirtyJournal (read-only opens)
	CheckWritable     bool // ext.Options.CheckWritable (a dry run: a writable open's checks, nothing written)
	Warn              func(string)
}

// Image is an opened image with the filesystem chosen in it.
type Image struct {
	Disk      formats.Disk        // *formats.Image when opened by Open
	Table     *partition.Table    // nil when Offset was given
	Partition partition.Partition // Number -1 for a logical volume
	Volume    string              // "vg/lv" when the filesystem is on an LVM logical volume
	// FS is the guest filesystem: *ext.FS, or *xfs.FS for an XFS root.
	FS    vfs.FS
	Grown *Growth // what Options.Grow did (nil without it)

	// stage holds the filesystem's writes until Commit (nil when
	// read-only or when staging is off).
	stage     *stage.Stage
	rehearse  bool // Options.Rehearse: the stage is never committed
	discarded bool // Discard was called: nothing more reaches the stage
	warn      func(string)

	// Unjournaled, set before Commit, writes the staged writes in the
	// engine's order with its barriers even on a journaled filesystem
	// (for comparisons and benchmarks; the default journals).
	Unjournaled bool
}

// Open opens the image at path and the filesystem Options select in it.
func Open(path string, o Options) (*Image, error) {
	disk, err := formats.Open(path, formats.Options{Format: o.Format, ReadOnly: !o.Writable || o.Rehearse, Backing: o.Backing, NoLock: o.NoLock, Fresh: o.Fresh})
	if err != nil {
		return nil, err
	}
	im, err := openOn(disk, o)
	if err != nil {
		disk.Close()
		return nil, errs.In(path, "", err)
	}
	return im, nil
}

// OpenDisk is Open over a disk the caller already opened (an image file
// through formats.Open, or any other virtual disk). The Format, Backing and
// NoLock options do not apply; the returned Image owns disk and closes it.
func OpenDisk(disk formats.Disk, o Options) (*Image, error) {
	return openOn(disk, o)
}

// Commit writes what the filesystem staged to the image, in the order the
// engine wrote it (each of its sync barriers a flush of the image), and
// flushes the image. Until Commit nothing a writable open writes reaches
// the image: a caller whose injection failed calls Discard (or Close
// after Discard) and the image is byte for byte unchanged.
func (im *Image) Commit() error {
	// A batching engine (XFS) holds its last operations in an open
	// transaction: they reach the stage first.
	if fl, ok := im.FS.(interface{ Flush() error }); ok && im.stage != nil && !im.discarded {
		if err := fl.Flush(); err != nil {
			im.stage.Discard()
			return err
		}
	}
	if im.rehearse {
		im.stage.Discard()
		return nil
	}
	if im.stage != nil {
		if err := im.commitStage(); err != nil && !errors.Is(err, stage.ErrDone) {
			return err
		}
	}
	return im.Disk.Flush()
}

// commitStage writes the staged writes: on an ext3/4 filesystem with an
// internal journal, as one jbd2 transaction (ext.FS.JournalCommit: every
// item of the injection lands, or after a crash the journal's replay
// gives the image as it was or the whole payload); otherwise, or when the
// engine cannot journal them (it says why, through Warn), in the
// engine's own order with a flush at each of its barriers.
func (im *Image) commitStage() error {
	f, ok := im.FS.(*ext.FS)
	if !ok || im.Unjournaled {
		return im.stage.Commit()
	}
	if im.Grown != nil {
		// --grow stages the whole disk (table and filesystems), whose
		// offsets are not the filesystem's: written in the engine's order.
		if im.warn != nil {
			im.warn("--grow: the table, the grown filesystem and the payload are written in the engines' order with flushes, not through the journal")
		}
		return im.stage.Commit()
	}
	ops, err := f.JournalCommit(im.stage.Base(), im.stage.Written(), time.Now())
	switch {
	case errors.Is(err, ext.ErrNoJournal):
		return im.stage.Commit()
	case errors.Is(err, ext.ErrNotJournaled):
		if im.warn != nil {
			im.warn(fmt.Sprintf("%v: written in the unjournaled order instead", err))
		}
		return im.stage.Commit()
	case err != nil:
		im.stage.Discard()
		return err
	case ops == nil:
		return im.stage.Commit()
	}
	plan := make([]stage.Op, len(ops))
	for i, o := range ops {
		plan[i] = stage.Op{Off: o.Off, Data: o.Data, Sync: o.Sync}
	}
	return im.stage.CommitOps(plan)
}

// Discard drops what the filesystem staged: nothing of it reaches the
// image. The filesystem must not be used afterwards.
func (im *Image) Discard() {
	im.discarded = true
	if im.stage != nil {
		im.stage.Discard()
	}
}

// Staged reports the bytes the filesystem holds in memory for Commit and
// the limit on them (0, 0 when nothing is staged).
func (im *Image) Staged() (bytes, limit int64) {
	if im.stage == nil {
		return 0, 0
	}
	b, _ := im.stage.Staged()
	return b, im.stage.Limit()
}

// Close commits what was staged unless Discard was called, flushes what
// was written to stable storage (fsync, for raw images too) and closes the
// image and its chain.
func (im *Image) Close() error {
	err := im.Commit()
	if cerr := im.Disk.Close(); err == nil {
		err = cerr
	}
	return err
}

func openOn(disk formats.Disk, o Options) (*Image, error) {
	im := &Image{Disk: disk, warn: o.Warn}
	if o.Offset != 0 && o.Grow != "" {
		return nil, fmt.Errorf("%w: an offset bypasses the partition table, which growing changes", ErrCannotGrow)
	}
	if o.Offset != 0 {
		if o.Offset < 0 || o.Offset >= disk.Size() {
			return nil, fmt.Errorf("%w: offset %d is outside the %d-byte disk", ErrBadPartition, o.Offset, disk.Size())
		}
		im.Partition = partition.Partition{Start: o.Offset, Size: disk.Size() - o.Offset}
		return im, im.openFS(fsSection{partition.NewSection(disk, o.Offset, disk.Size()-o.Offset), disk}, disk, o)
	}
	t, err := partition.Read(disk, disk.Size())
	if err != nil {
		return nil, err
	}
	im.Table = t
	var cands []Candidate // root detection's, when it ran: the PVs are known already
	sel, err := choose(o, func() []Candidate { cands = Candidates(disk, disk.Size(), t); return cands })
	if err != nil {
		return nil, err
	}
	if sel.volume != "" {
		if o.Grow != "" {
			return nil, fmt.Errorf("%w: %s is an LVM logical volume; growing one is not supported", ErrCannotGrow, sel.volume)
		}
		v, err := openVolume(disk, t, cands, sel.volume, func(s *partition.Section) lvm.Device { return fsSection{s, disk} })
		if err != nil {
			return nil, err
		}
		im.Volume = sel.volume
		im.Partition = partition.Partition{Number: -1, Size: v.Size()}
		return im, im.openFS(v, disk, o)
	}
	num := sel.num
	if o.Grow != "" {
		return im, im.openGrown(disk, t, num, o)
	}
	sec, err := section(disk, t, num)
	if err != nil {
		return nil, err
	}
	im.Partition = sec.part
	return im, im.openFS(fsSection{sec.Section, disk}, disk, o)
}

// fsDevice is what a filesystem is opened on: a partition's section (an
// fsSection) or an LVM logical volume mapped over the disk.
type fsDevice interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	CheckWrite(off, n int64) error
}

// fsSection is the partition as the filesystem sees it: bounded by the
// partition section, and Sync flushes the disk below (the ext engine syncs
// through it, e.g. after replaying a journal).
type fsSection struct {
	*partition.Section
	disk formats.Disk
}

func (s fsSection) Sync() error { return s.disk.Flush() }

// CheckWrite asks the disk (a qcow2 image: metadata overlap) whether a
// write of n bytes at off in the section would be refused, writing
// nothing; the stage asks before committing anything.
func (s fsSection) CheckWrite(off, n int64) error {
	if off < 0 || n < 0 || off > s.Size() || n > s.Size()-off {
		return fmt.Errorf("write of %d bytes at offset %d of a %d-byte filesystem: %w", n, off, s.Size(), formats.ErrOutOfRange)
	}
	if c, ok := s.disk.(formats.WriteChecker); ok {
		return c.CheckWrite(s.Start()+off, n)
	}
	return nil
}

func (im *Image) openFS(sec fsDevice, disk formats.Disk, o Options) error {
	size := im.Partition.Size
	var dev io.ReaderAt = sec
	switch {
	case o.Rehearse:
		im.stage, im.rehearse = stage.New(sec, size, nil, max(o.StageLimit, 0)), true
		dev = im.stage
	case o.Writable && o.StageLimit >= 0:
		im.stage = stage.New(sec, size, disk.Flush, o.StageLimit)
		dev = im.stage
	}
	fsys, err := ext.Open(dev, size, &ext.Options{Writable: o.Writable || o.Rehearse, Force: o.Force, AllowDirtyJournal: o.AllowDirtyJournal, CheckWritable: o.CheckWritable && !o.Writable && !o.Rehearse, Warn: o.Warn})
	if errors.Is(err, ext.ErrNotExt) {
		var xf *xfs.FS
		if xf, err = openXFS(dev, size, o, im.stage != nil); err == nil {
			im.FS = xf
			return nil
		}
		if errors.Is(err, xfs.ErrNotXFS) {
			err = fmt.Errorf("%w (nor %w)", ext.ErrNotExt, xfs.ErrNotXFS)
		}
	}
	if err != nil {
		return errs.In("", im.where(), err)
	}
	im.FS = fsys
	return nil
}

// where names the filesystem the image serves, for errors.
func (im *Image) where() string {
	if im.Volume != "" {
		return "logical volume " + im.Volume
	}
	return describePart(im.Partition)
}

// openXFS opens an XFS filesystem on dev: the stage of a writable open
// or rehearsal (staged: every write held until Commit, so an injection
// is all or nothing), the partition itself otherwise. A writable open refuses, in
// xfs.OpenWritable and before anything is written, what the engine
// cannot write safely; CheckWritable (a dry run) asks the same of a
// read-only open.
func openXFS(dev io.ReaderAt, size int64, o Options, staged bool) (*xfs.FS, error) {
	// Staged, the engine batches its operations into one transaction
	// (flushed by Commit): the stage already makes the injection one
	// unit, and a batch costs one transaction's barriers.
	opts := &xfs.Options{AllowDirtyLog: o.AllowDirtyJournal, Warn: o.Warn, Batch: staged}
	if o.Writable || o.Rehearse {
		rw, ok := dev.(interface {
			io.ReaderAt
			io.WriterAt
		})
		if !ok {
			return nil, fmt.Errorf("xfs: the device cannot be written: %w", vfs.ErrReadOnly)
		}
		return xfs.OpenWritable(rw, size, opts)
	}
	f, err := xfs.Open(dev, size, opts)
	if err == nil && o.CheckWritable {
		err = f.CheckWritable()
	}
	if err != nil {
		return nil, err
	}
	return f, nil
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

// choose applies the Partition option; cands is called only when the root
// is to be detected.
func choose(o Options, cands func() []Candidate) (selection, error) {
	switch sel := strings.TrimSpace(o.Partition); {
	case sel == "" || sel == "auto":
		cs := cands()
		c, err := findRoot(cs)
		if errors.Is(err, ErrNoRoot) && o.LoneFS {
			if lone, ok := loneFS(cs); ok {
				if o.Warn != nil {
					o.Warn(fmt.Sprintf("no guest root markers found; reading the only filesystem, %s", lone))
				}
				return selectionOf(lone), nil
			}
		}
		if err != nil {
			return selection{}, err
		}
		return selectionOf(c), nil
	case sel == "none":
		return selection{}, nil
	case strings.Count(sel, "/") == 1 && !strings.HasPrefix(sel, "/") && !strings.HasSuffix(sel, "/"):
		return selection{num: -1, volume: sel}, nil
	default:
		n, err := strconv.Atoi(sel)
		if err != nil || n < 0 {
			return selection{}, fmt.Errorf("%w: %q is not auto, none, a partition number or an LVM volume vg/lv", ErrBadPartition, sel)
		}
		return selection{num: n}, nil
	}
}

// selection is the filesystem choose picked: partition num (0 the whole
// disk), or the logical volume named volume ("vg/lv", num -1).
type selection struct {
	num    int
	volume string
}

func selectionOf(c Candidate) selection { return selection{num: c.Number, volume: c.Volume} }

func describePart(p partition.Partition) string {
	if p.Number == 0 {
		if p.Start == 0 {
			return "whole disk"
		}
		return fmt.Sprintf("filesystem at offset %d", p.Start)
	}
	return fmt.Sprintf("partition %d", p.Number)
}

// RootProbe is what LooksLikeGuestRoot reads of a filesystem: any vfs.FS
// with Stat (the ext engine, vfs/local, vfs/memfs).
type RootProbe interface {
	vfs.FS
	Stat(path string) (vfs.FileInfo, error)
}

// LooksLikeGuestRoot applies root detection's test to any guest
// filesystem: /etc is a directory and one of the OS markers root
// detection uses exists. When it does not, the string says what is
// missing. The CLI applies it to a directory TARGET.
func LooksLikeGuestRoot(fsys RootProbe) (bool, string) {
	st, err := fsys.Stat("/etc")
	if err != nil || !st.IsDir() {
		return false, "no /etc directory"
	}
	for _, m := range rootMarkers {
		if ok, _ := fsys.HasFile(m); ok {
			return true, ""
		}
	}
	return false, "has /etc but none of " + strings.Join(rootMarkers, ", ")
}
