package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/local"
)

// targetOptions say how to open a TARGET.
type targetOptions struct {
	offset int64 // byte offset of the filesystem inside an image file
	write  bool  // the verb writes: open an image read-write
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

// errOffsetOnDir is a usage error: --offset means nothing for a directory.
var errOffsetOnDir = errors.New("--offset applies to image files, not to a directory")

// openTarget opens TARGET: a directory is a guest root served by
// vfs/local; a regular file is a raw image holding an ext2/3/4 filesystem
// at o.offset. Container formats and partition tables slot in here.
func openTarget(path string, o targetOptions) (*target, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		if o.offset != 0 {
			return nil, errOffsetOnDir
		}
		l, err := local.Open(path)
		if err != nil {
			return nil, err
		}
		return &target{fs: l, close: l.Close}, nil
	case fi.Mode().IsRegular():
		return openImage(path, fi.Size(), o)
	}
	return nil, fmt.Errorf("%s: neither a directory nor a regular image file (%v)", path, fi.Mode().Type())
}

// openImage opens a raw image file holding an ext filesystem at o.offset.
func openImage(path string, size int64, o targetOptions) (*target, error) {
	if o.offset < 0 || o.offset >= size {
		return nil, fmt.Errorf("%s: --offset %d is outside the %d-byte image", path, o.offset, size)
	}
	flag := os.O_RDONLY
	if o.write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	opts := &ext.Options{AllowDirtyJournal: o.allowDirty, Warn: o.warn}
	fsys, err := ext.Open(io.NewSectionReader(f, o.offset, size-o.offset), size-o.offset, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: no ext2/3/4 filesystem at offset %d (a partitioned disk needs --offset of the partition): %w", path, o.offset, err)
	}
	return &target{fs: fsys, close: f.Close}, nil
}
