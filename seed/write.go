package seed

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Filesystem is the seed image's filesystem.
type Filesystem string

// The filesystems Write makes.
const (
	ISO9660 Filesystem = "iso9660"
	VFAT    Filesystem = "vfat"
)

// DefaultTime is the timestamp of every file and of the volume when none
// is asked for: the same data gives the same bytes.
var DefaultTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Write builds the image of files for format f at out: written under a
// temporary name beside out and renamed over it only when complete, so out
// is never a half-written seed. stamp is every date in the image
// (DefaultTime when zero).
func Write(out string, f Format, fsys Filesystem, files []File, stamp time.Time) (err error) {
	if fsys == "" {
		fsys = ISO9660
	}
	switch {
	case fsys != ISO9660 && fsys != VFAT:
		return fmt.Errorf("%w: filesystem %q: want iso9660 or vfat", ErrInvalid, fsys)
	case fsys == VFAT && f == OpenNebula:
		return fmt.Errorf("%w: filesystem vfat: OpenNebula's CONTEXT disk is ISO9660 (its context scripts look for a CD-ROM); want iso9660", ErrInvalid)
	}
	if stamp.IsZero() {
		stamp = DefaultTime
	}
	if y := stamp.UTC().Year(); y < 1970 || y > 2155 {
		return fmt.Errorf("%w: timestamp %v: want a year from 1970 to 2155", ErrInvalid, stamp)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if fsys == VFAT {
		err = writeFAT(tmp, f.Label(), files, stamp)
	} else {
		err = writeISO(tmp, f.Label(), files, stamp)
	}
	if err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
