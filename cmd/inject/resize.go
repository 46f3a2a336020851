package main

import (
	"fmt"
	"os"

	"github.com/guestinject/guestinject/formats"
)

// resize serves --size without --overlay: TARGET itself is grown to SIZE
// before anything else is opened (qemu-img resize in process), so that
// --grow finds the new space; a dry run only judges the request. When the
// run fails afterwards, undoResize puts the image back byte for byte.
func (a *injectArgs) resize() error {
	if a.overlay.size == 0 || a.overlay.path != "" {
		return nil
	}
	fi, err := os.Stat(a.target)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return usagef("--size without --overlay resizes an image file, and %s is not one", a.target)
	}
	o := formats.Options{Format: a.img.format, Backing: a.img.policy()}
	r, err := formats.Grow(a.target, a.overlay.size, o, a.dryRun)
	if err != nil {
		return fmt.Errorf("--size %d: %w", a.overlay.size, explainOpen(a.target, err))
	}
	if !a.dryRun {
		a.resized = r
	}
	return nil
}

// undoResize undoes the in-place resize after err failed the run, and
// says what became of it.
func (a *injectArgs) undoResize(err error) error {
	r := a.resized
	if r == nil {
		return err
	}
	a.resized = nil
	if uerr := r.Undo(); uerr != nil {
		a.discarded = fmt.Sprintf("undoing the resize of %s from %d to %d bytes failed: %v", r.Path, r.OldSize, r.NewSize, uerr)
		return fmt.Errorf("%w; %s: %w", err, a.discarded, uerr)
	}
	a.discarded = fmt.Sprintf("the resize of %s to %d bytes was undone; the image is unchanged", r.Path, r.NewSize)
	return fmt.Errorf("%w; %s", err, a.discarded)
}
