package main

import (
	"errors"
	"fmt"
	"io"
	"os"

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

// section is a filesystem's bytes inside an image file: reads through
// io.SectionReader, writes at the same offset and bounded the same way.
// Image targets now go through inject/image, whose partition.Section
// bounds writes the same way; this stays for its test until that moves.
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
