package main

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject/diskimage"
)

// overlayRequest is --overlay NEW.qcow2 [--size SIZE]: the nova flow.
// TARGET is the base; it is only ever opened read-only.
type overlayRequest struct {
	path string
	size int64 // 0: the base's virtual size
}

// checkOverlay validates the request without creating anything: TARGET
// is an image file, NEW does not exist yet, SIZE is not smaller than the
// base. A dry run stops here.
func checkOverlay(base string, r overlayRequest, o openOptions) error {
	if err := checkOverlayPaths(base, r); err != nil {
		return err
	}
	disk, err := formats.Open(base, formats.Options{Format: o.img.format, ReadOnly: true, Backing: o.img.policy()})
	if err != nil {
		return explainOpen(base, err)
	}
	vsize := disk.Size()
	disk.Close()
	if r.size != 0 && r.size < vsize {
		return fmt.Errorf("--size %d for %s: %w: %s has a virtual size of %d bytes", r.size, r.path, formats.ErrTooSmall, base, vsize)
	}
	return nil
}

// checkOverlayPaths: TARGET is an image file and NEW does not exist.
func checkOverlayPaths(base string, r overlayRequest) error {
	fi, err := os.Stat(base)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return usagef("--overlay needs an image file as TARGET, and %s is not one", base)
	}
	if _, err := os.Lstat(r.path); err == nil {
		return fmt.Errorf("--overlay %s: %w (the overlay must be a new file)", r.path, fs.ErrExist)
	}
	return nil
}

// openOverlay creates the overlay backed by base and opens the filesystem
// in it for writing. The overlay is removed again if that fails.
func openOverlay(base string, r overlayRequest, o openOptions) (*guest, error) {
	if err := checkOverlayPaths(base, r); err != nil {
		return nil, err
	}
	err := formats.CreateOverlay(r.path, base, formats.OverlayOptions{
		Size:   r.size,
		Base:   formats.Options{Format: o.img.format, Backing: o.img.policy()},
		NoSync: true, // opened Fresh next; its Close syncs once
	})
	if err != nil {
		return nil, fmt.Errorf("creating overlay %s on %s: %w", r.path, base, explainOpen(base, err))
	}
	// The base and its chain were just opened under the caller's policy;
	// the overlay's own backing name is ours, so it is allowed.
	opts := o.img.options()
	opts.Format, opts.Backing, opts.Fresh = formats.FormatQcow2, formats.BackingAllow, true
	opts.Writable, opts.Force, opts.Warn, opts.Grow = true, o.force, o.warn, o.grow
	im, err := diskimage.Open(r.path, opts)
	if err != nil {
		os.Remove(r.path)
		return nil, fmt.Errorf("%w; removed the overlay %s created for this run", explainOpen(r.path, err), r.path)
	}
	where := fmt.Sprintf("%s (overlay on %s)", imageWhere(r.path, im), base)
	return &guest{fs: im.FS, where: where, close: im.Close, discard: im.Discard, created: r.path, base: base, grown: im.Grown}, nil
}

// discardOverlay closes g and removes the overlay it created; the message
// says so.
func discardOverlay(g *guest) string {
	g.release()
	if err := os.Remove(g.created); err != nil {
		return fmt.Sprintf("could not remove the overlay %s created for this run: %v", g.created, err)
	}
	return fmt.Sprintf("removed the overlay %s created for this run; %s was not changed", g.created, g.base)
}
