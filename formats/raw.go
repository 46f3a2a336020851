package formats

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// rawDisk is a raw image file: the virtual disk is the file.
type rawDisk struct {
	f        *os.File
	size     int64
	readOnly bool
}

func (r *rawDisk) Size() int64 { return r.size }

func (r *rawDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, diskerr.At(off, "raw read", ErrOutOfRange)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > r.size-off {
		p = p[:r.size-off]
	}
	n, err := r.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	clear(p[n:]) // a file shorter than its recorded size reads as zeros
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// WriteAt writes inside the disk; a raw disk never grows.
func (r *rawDisk) WriteAt(p []byte, off int64) (int, error) {
	if r.readOnly {
		return 0, diskerr.At(off, "raw write", ErrReadOnly)
	}
	if off < 0 || off > r.size || int64(len(p)) > r.size-off {
		return 0, diskerr.At(off, fmt.Sprintf("raw write of %d bytes", len(p)), ErrOutOfRange)
	}
	return r.f.WriteAt(p, off)
}

func (r *rawDisk) Flush() error {
	if r.readOnly {
		return nil
	}
	return r.f.Sync()
}

func (r *rawDisk) Close() error { return nil }
