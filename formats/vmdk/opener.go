package vmdk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// DirOpener opens extent files beneath dir only, through an os.Root (a
// symlink or a name leading out of dir is refused by the kernel-side
// walk), and only regular files (a FIFO is refused before it is opened).
// close releases the files opened and the root.
func DirOpener(dir string) (open Opener, close func() error, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	var files []*os.File
	type opened struct {
		f    *os.File
		size int64
	}
	byName := map[string]opened{} // a name named again shares its descriptor
	open = func(name string) (io.ReaderAt, int64, error) {
		if err := CheckExtentName(name); err != nil {
			return nil, 0, err
		}
		if o, ok := byName[name]; ok {
			return o.f, o.size, nil
		}
		fi, err := root.Lstat(name)
		if err != nil {
			return nil, 0, err
		}
		if !fi.Mode().IsRegular() {
			return nil, 0, fmt.Errorf("extent %q is not a regular file (%v): %w", name, fi.Mode().Type(), diskerr.ErrUnsupported)
		}
		// O_NONBLOCK: a FIFO swapped in after the Lstat does not block the open
		f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, 0, err
		}
		files = append(files, f)
		fi, err = f.Stat()
		if err != nil {
			return nil, 0, err
		}
		if !fi.Mode().IsRegular() {
			return nil, 0, fmt.Errorf("extent %q is not a regular file: %w", name, diskerr.ErrUnsupported)
		}
		byName[name] = opened{f, fi.Size()}
		return f, fi.Size(), nil
	}
	close = func() error {
		var errs []error
		for _, f := range files {
			errs = append(errs, f.Close())
		}
		files = nil
		return errors.Join(append(errs, root.Close())...)
	}
	return open, close, nil
}
