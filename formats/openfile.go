package formats

import (
	"io/fs"
	"os"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Opening a path the user or an image names (the image itself, every
// backing file, DetectFile): the path is stat'ed first and only a regular
// file or a block device is opened; open(2) of a FIFO would block until a
// writer appears, and opening a character device (a tape, a terminal) has
// side effects of its own. The open itself is non-blocking and close-on-exec
// (so a FIFO swapped in after the check cannot hang us, and no child process
// inherits the descriptor and with it the image locks), and the opened
// descriptor is checked again with fstat to be the object that was stat'ed.
// A backing file the default policy allowed is stat'ed and opened beneath
// the image's directory through an os.Root, so the check and the open see
// the same directory, whatever is renamed meanwhile.
//
// Block devices are accepted as images and as backing files (a base image
// on an LVM volume is common with qemu); the CLI itself takes only regular
// files as its image argument. FIFOs, sockets, character devices and
// directories are refused, always, with ErrUnsupported.

// imageFileType refuses what must never be opened as an image.
func imageFileType(path string, fi fs.FileInfo) error {
	m := fi.Mode()
	if m.IsRegular() || m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0 {
		return nil
	}
	what := "not a regular file or block device"
	switch {
	case m.IsDir():
		what += " (a directory)"
	case m&fs.ModeNamedPipe != 0:
		what += " (a FIFO)"
	case m&fs.ModeSocket != 0:
		what += " (a socket)"
	case m&fs.ModeCharDevice != 0:
		what += " (a character device)"
	}
	return &diskerr.Error{Path: path, What: what, Offset: -1, Err: ErrUnsupported}
}

// testHook, when set by a test, runs before the check ("check") and
// between the check and the open ("open") of path.
var testHook func(stage, path string)

func hook(stage, path string) {
	if testHook != nil {
		testHook(stage, path)
	}
}

// errChanged is the error for a path that named another object by the time
// it was opened.
func errChanged(path string) error {
	return &diskerr.Error{Path: path, What: "changed between its check and its open (something is replacing it)", Offset: -1, Err: ErrUnsupported}
}

// openImagePath opens loc (following symlinks, as qemu does; beneath
// loc.Dir when that is set) for reading, or for reading and writing,
// after checking its type; see above.
func openImagePath(loc location, write bool) (*os.File, fs.FileInfo, error) {
	stat := func() (fs.FileInfo, error) { return os.Stat(loc.Path) }
	open := func() (*os.File, error) { return openNonBlocking(loc.Path, write) }
	if loc.Dir != "" {
		root, err := os.OpenRoot(loc.Dir)
		if err != nil {
			return nil, nil, err
		}
		defer root.Close()
		stat = func() (fs.FileInfo, error) { return root.Stat(loc.Rel) }
		open = func() (*os.File, error) { return openInRoot(root, loc.Rel, write) }
	}
	wrap := func(err error) error { // the os.Root's errors name only Rel
		if loc.Dir == "" {
			return err
		}
		return diskerr.WithPath(loc.Path, err)
	}
	hook("check", loc.Path)
	fi, err := stat()
	if err != nil {
		return nil, nil, wrap(err)
	}
	if err := imageFileType(loc.Path, fi); err != nil {
		return nil, nil, err
	}
	hook("open", loc.Path)
	f, err := open()
	if err != nil {
		return nil, nil, wrap(err)
	}
	ofi, err := f.Stat()
	if err == nil {
		if err = imageFileType(loc.Path, ofi); err == nil && !os.SameFile(fi, ofi) {
			err = errChanged(loc.Path)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, ofi, nil
}
