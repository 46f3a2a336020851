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

// openImage opens a raw image file holding an ext filesystem at o.offset:
// read-only for the read verbs, read-write (the ext engine opened Writable)
// for an injection. A dry run only reads, so it opens read-only too.
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
	opts := &ext.Options{AllowDirtyJournal: o.allowDirty, Warn: o.warn, Writable: o.write, Force: o.force}
	fsys, err := ext.Open(imageSection(f, o.offset, size-o.offset), size-o.offset, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: no ext2/3/4 filesystem at offset %d (a partitioned disk needs --offset of the partition): %w", path, o.offset, err)
	}
	return &target{fs: fsys, close: f.Close}, nil
}

// section is the filesystem's bytes inside an image file: reads through
// io.SectionReader, writes at the same offset and bounded the same way, so
// the write engine can never touch bytes before --offset or past the end.
type section struct {
	*io.SectionReader
	f    *os.File
	base int64
}

func imageSection(f *os.File, off, n int64) *section {
	return &section{SectionReader: io.NewSectionReader(f, off, n), f: f, base: off}
}

// errOutsideSection: a write would leave the filesystem's section.
var errOutsideSection = errors.New("write outside the filesystem's part of the image")

func (s *section) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > s.Size() || int64(len(p)) > s.Size()-off {
		return 0, fmt.Errorf("%w: %d bytes at offset %d of %d", errOutsideSection, len(p), off, s.Size())
	}
	return s.f.WriteAt(p, s.base+off)
}
