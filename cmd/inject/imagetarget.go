package main

import (
	"errors"
	"fmt"
	"github.com/guestinject/guestinject/vfs/ext"
	"os"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject/image"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/local"
)

// guest is an opened TARGET: the guest filesystem, where it lives (for
// messages), and what releases it.
type guest struct {
	fs    vfs.FS
	where string // "disk.qcow2 partition 3", "rootfs/", ...
	close func() error
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
	// check makes a read-only open (a dry run) refuse what the writing
	// open would (ext.Options.CheckWritable): the same plan, nothing
	// written.
	check bool
	// force writes into an ext filesystem whose superblock says it has
	// errors or may be mounted (ext.Options.Force).
	force bool
	// allowDirty lets read-only verbs open an ext filesystem whose journal
	// needs recovery; warn is told so.
	allowDirty bool
	warn       func(string)
	img        imageFlags
}

// errImageFlagOnDir is a usage error: an image flag given for a directory.
var errImageFlagOnDir = errors.New("--format, --backing, --partition, --offset and --overlay apply to image files, not to a directory")

// openGuest opens TARGET: a directory is a guest root served by
// vfs/local; a regular file is a disk image (raw or qcow2, partitioned or
// not) opened through inject/image.
func openGuest(path string, o openOptions) (*guest, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		if o.img.given() {
			return nil, errImageFlagOnDir
		}
		l, err := local.Open(path)
		if err != nil {
			return nil, err
		}
		return &guest{fs: l, where: path, close: l.Close}, nil
	case fi.Mode().IsRegular():
		return openDiskImage(path, o)
	}
	return nil, fmt.Errorf("%s: neither a directory nor a regular image file (%v)", path, fi.Mode().Type())
}

// openDiskImage opens an image file: read-only for the read verbs and dry
// runs, read-write for an injection.
func openDiskImage(path string, o openOptions) (*guest, error) {
	opts := o.img.options()
	opts.Writable, opts.Force, opts.CheckWritable = o.write, o.force, o.check && !o.write
	opts.AllowDirtyJournal, opts.Warn = o.allowDirty, o.warn
	im, err := image.Open(path, opts)
	if err != nil {
		return nil, explainOpen(path, err)
	}
	return &guest{fs: im.FS, where: imageWhere(path, im), close: im.Close}, nil
}

// imageWhere names the filesystem inside the image for messages.
func imageWhere(path string, im *image.Image) string {
	p := im.Partition
	switch {
	case p.Number > 0:
		return fmt.Sprintf("%s partition %d", path, p.Number)
	case p.Start > 0:
		return fmt.Sprintf("%s filesystem at offset %d", path, p.Start)
	}
	return path + " (whole disk)"
}

// explainOpen adds what a user can do to the errors that need it.
func explainOpen(path string, err error) error {
	switch {
	case errors.Is(err, formats.ErrInUse):
		return fmt.Errorf("%s: image is in use by another process (a running VM?); stop it or work on a copy: %w", path, err)
	case errors.Is(err, formats.ErrBackingDenied):
		return fmt.Errorf("%w (pass --backing allow to open it anyway)", err)
	case errors.Is(err, image.ErrManyRoots), errors.Is(err, image.ErrNoRoot):
		return fmt.Errorf("%w (choose with --partition N, or --partition none for a filesystem on the whole disk)", err)
	case errors.Is(err, ext.ErrUnclean), errors.Is(err, ext.ErrInUse), errors.Is(err, ext.ErrOrphans):
		return fmt.Errorf("%w (nothing was written; --force writes anyway)", err)
	}
	return err
}
