package main

import (
	"github.com/guestinject/guestinject/vfs"
)

// targetOptions say how to open a TARGET.
type targetOptions struct {
	offset int64 // byte offset of the filesystem inside an image file
	write  bool  // the verb writes: open an image read-write
	// force writes into an ext filesystem whose superblock says it has
	// errors or may be mounted (ext.Options.Force).
	force bool
	// allowDirty lets read-only verbs open an ext filesystem whose journal
	// needs recovery; warn is told so.
	allowDirty bool
	warn       func(string)
}

// target is an opened guest filesystem and what releases it.
type target struct {
	fs    vfs.FS
	close func() error
}

// openTarget opens TARGET with the default image flags (format by magic,
// default backing policy, the auto-detected root, or the filesystem at
// o.offset when it is not 0). The verbs use openGuest, which takes every
// image flag.
func openTarget(path string, o targetOptions) (*target, error) {
	var img imageFlags
	if o.offset != 0 {
		img.offset, img.offsetSet = offsetFlag(o.offset), true
	}
	g, err := openGuest(path, openOptions{write: o.write, force: o.force, allowDirty: o.allowDirty, warn: o.warn, img: img})
	if err != nil {
		return nil, err
	}
	return &target{fs: g.fs, close: g.release}, nil
}
