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

// beforeOpen, when set by a test, runs between the check and the open.
var beforeOpen func(path string)

// errChanged is the error for a path that named another object by the time
// it was opened.
func errChanged(path string) error {
	return &diskerr.Error{Path: path, What: "changed between its check and its open (something is replacing it)", Offset: -1, Err: ErrUnsupported}
}

// openImagePath opens path (following symlinks, as qemu does) for reading,
// or for reading and writing, after checking its type; see above.
// noFollow refuses a final symlink (for a path already resolved).
func openImagePath(path string, write, noFollow bool) (*os.File, fs.FileInfo, error) {
	stat := os.Stat
	if noFollow {
		stat = os.Lstat
	}
	fi, err := stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := imageFileType(path, fi); err != nil {
		return nil, nil, err
	}
	if beforeOpen != nil {
		beforeOpen(path)
	}
	f, err := openNonBlocking(path, write, noFollow)
	if err != nil {
		return nil, nil, err
	}
	ofi, err := f.Stat()
	if err == nil {
		if err = imageFileType(path, ofi); err == nil && !os.SameFile(fi, ofi) {
			err = errChanged(path)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, ofi, nil
}
