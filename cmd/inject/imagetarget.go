package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject/diskimage"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/local"
)

// guest is an opened TARGET: the guest filesystem, where it lives (for
// messages), and what releases it.
type guest struct {
	fs    vfs.FS
	where string // "disk.qcow2 partition 3", "rootfs/", ...
	close func() error
	// discard, for an image, drops what the injection staged so that
	// close writes nothing of it (nil for a directory).
	discard func()
	// rehearse: the image was opened to rehearse a dry run (writes held
	// in memory, never committed).
	rehearse bool
	grown    *diskimage.Growth // what --grow did, nil without it
	// created is the overlay this run created (removed again if the
	// injection fails).
	created string
	base    string // the overlay's base (TARGET)
	closed  bool
}

// release closes g once.
func (g *guest) release() error {
	if g.closed {
		return nil
	}
	g.closed = true
	return g.close()
}

// openOptions say how to open a TARGET.
type openOptions struct {
	write bool // the verb writes: open the image read-write
	// force writes into an ext filesystem whose superblock says it has
	// errors or may be mounted (ext.Options.Force).
	force bool
	// allowDirty lets read-only verbs open an ext filesystem whose journal
	// needs recovery; warn is told so.
	allowDirty bool
	warn       func(string)
	img        imageFlags
	// guestRoot: the verb writes into the guest (an injection, its dry
	// run too), so a directory TARGET must be a guest root and never the
	// host's root; allowNonRootDir waives the first test only.
	guestRoot, allowNonRootDir bool
	// rehearse: a dry run of an injection opens an image read-only with
	// its filesystem writable over writes that are never committed
	// (diskimage.Options.Rehearse), so the dry run makes the real run's writes.
	rehearse bool
	// grow is --grow: "root" or a partition number (diskimage.Options.Grow).
	grow string
}

// errImageFlagOnDir is a usage error: an image flag given for a directory.
var errImageFlagOnDir = errors.New("--format, --backing, --partition, --offset, --force-share and --overlay apply to image files, not to a directory")

// openGuest opens TARGET: a directory is a guest root served by
// vfs/local; a regular file is a disk image (raw or qcow2, partitioned or
// not) opened through inject/diskimage.
func openGuest(path string, o openOptions) (*guest, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		if o.img.given() || o.grow != "" {
			return nil, errImageFlagOnDir
		}
		return openDir(path, o)
	case fi.Mode().IsRegular():
		return openDiskImage(path, o)
	}
	return nil, fmt.Errorf("%s: neither a directory nor a regular image file (%v)", path, fi.Mode().Type())
}

// errNotGuestRoot: a directory TARGET an injection would write into is not
// a guest root.
var errNotGuestRoot = errors.New("not a guest root")

// openDir serves a directory holding a guest root through vfs/local. For
// an injection it refuses the host's own root (found by device and inode,
// so "/proc/self/root", a bind mount or a symlink of "/" is refused too),
// whatever the flags, and a directory that fails the guest-root test
// images get unless allowNonRootDir.
func openDir(path string, o openOptions) (*guest, error) {
	if o.guestRoot {
		if err := refuseHostRoot(path); err != nil {
			return nil, err
		}
	}
	l, err := local.Open(path)
	if err != nil {
		return nil, err
	}
	if o.guestRoot && !o.allowNonRootDir {
		if ok, why := diskimage.LooksLikeGuestRoot(l); !ok {
			l.Close()
			return nil, fmt.Errorf("%s: %w: %s (pass --allow-non-root-dir to inject into it anyway)", path, errNotGuestRoot, why)
		}
	}
	return &guest{fs: l, where: path, close: l.Close}, nil
}

// refuseHostRoot fails when dir is the root directory of this host.
func refuseHostRoot(dir string) error {
	root, err := os.Stat("/")
	if err != nil {
		return fmt.Errorf("cannot tell whether %s is the host's root: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if os.SameFile(fi, root) {
		return fmt.Errorf("%s: %w: it is this host's root directory; refusing to inject into the host (--allow-non-root-dir does not change this)", dir, errNotGuestRoot)
	}
	return nil
}

// openDiskImage opens an image file: read-only for the read verbs and dry
// runs, read-write for an injection.
func openDiskImage(path string, o openOptions) (*guest, error) {
	opts := o.img.options()
	opts.Writable, opts.Force, opts.Rehearse = o.write, o.force, o.rehearse && !o.write
	opts.AllowDirtyJournal, opts.Warn, opts.Grow = o.allowDirty, o.warn, o.grow
	opts.LoneFS = !o.write && !o.guestRoot // the read verbs read a data disk too
	if opts.Rehearse && opts.Format == "" {
		// a dry run opens read-only, as the read verbs do; it must refuse
		// what the real run refuses (formats read but never written)
		if name, err := formats.DetectFile(path); err == nil && formats.ReadOnlyFormat(name) {
			return nil, formats.WriteRefused(path, name)
		}
	}
	im, err := diskimage.Open(path, opts)
	if err != nil {
		return nil, explainOpen(path, err)
	}
	return &guest{fs: im.FS, where: imageWhere(path, im), close: im.Close, discard: im.Discard, rehearse: opts.Rehearse, grown: im.Grown}, nil
}

// imageWhere names the filesystem inside the image for messages.
func imageWhere(path string, im *diskimage.Image) string {
	p := im.Partition
	switch {
	case im.Volume != "":
		return fmt.Sprintf("%s logical volume %s", path, im.Volume)
	case p.Number > 0:
		return fmt.Sprintf("%s partition %d", path, p.Number)
	case p.Start > 0:
		return fmt.Sprintf("%s filesystem at offset %d", path, p.Start)
	}
	return path + " (whole disk)"
}

// explainOpen adds what a user can do to the errors that need it, by
// class: whichever layer refused (the image's lock or ext's multi-mount
// protection, a backing file, root detection), the class says what helps.
func explainOpen(path string, err error) error {
	switch {
	case errors.Is(err, errs.ErrForceable): // ext: unclean, orphan inodes, MMP
		return fmt.Errorf("%w (nothing was written; --force writes anyway)", err)
	case errors.Is(err, errs.ErrInUse):
		return fmt.Errorf("%s: image is in use by another process (a running VM?); stop it or work on a copy (cat, ls and inspect read it anyway with -U): %w", path, err)
	case errors.Is(err, errs.ErrDenied): // the backing policy
		return fmt.Errorf("%w (pass --backing allow to open it anyway)", err)
	case errors.Is(err, errs.ErrAmbiguous): // root detection: none or several
		return fmt.Errorf("%w (choose with --partition N, or --partition none for a filesystem on the whole disk)", err)
	}
	return err
}
