//go:build !linux

package local

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// errNoData never matches off Linux.
var errNoData = errors.New("no attribute")

// Off Linux the handles are not path-only descriptors and there is no
// /proc/self/fd to act through them race-free, so the customisation
// operations are refused rather than done by name.
var errNotHere = fmt.Errorf("%w: served on Linux only", vfs.ErrUnsupported)

func fdSetxattr(*os.File, string, []byte) error         { return errNotHere }
func fdRemovexattr(*os.File, string) error              { return errNotHere }
func fdListxattr(*os.File) ([]string, error)            { return nil, errNotHere }
func fdGetxattr(*os.File, string) ([]byte, error)       { return nil, errNotHere }
func fdUtimes(*os.File, time.Time, time.Time) error     { return errNotHere }
func renameAt(*os.File, string, *os.File, string) error { return errNotHere }
func linkAt(*os.File, string, *os.File, string) error   { return errNotHere }

// Times reports the modification time for all three off Linux.
func (l *FS) Times(p string) (atime, mtime, ctime time.Time, err error) {
	n, err := l.lexisting("stat", p)
	if err != nil {
		return
	}
	return n.fi.ModTime(), n.fi.ModTime(), n.fi.ModTime(), nil
}
