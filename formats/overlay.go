package formats

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/formats/qcow2"
)

// OverlayOptions controls CreateOverlay.
type OverlayOptions struct {
	// Size of the overlay; 0 means the base's virtual size. A size smaller
	// than the base is refused with ErrTooSmall.
	Size int64
	// BackingName is the base's name as stored in the overlay. "" stores a
	// path relative to the overlay's directory when the base lies inside
	// it, and the absolute path otherwise (opening such an overlay then
	// needs BackingAllow).
	BackingName string
	// Base are the options for opening the base (read-only is forced).
	Base Options
	// NoSync leaves the new overlay unsynced: the caller opens it next
	// with Options.Fresh and writes, and its Close makes everything
	// durable at once.
	NoSync bool
}

// CreateOverlay writes a new qcow2 v3 image at newPath backed by basePath
// (raw or qcow2). The base is opened read-only to learn its format and size
// and is never written. newPath must not exist.
func CreateOverlay(newPath, basePath string, o OverlayOptions) error {
	bo := o.Base
	bo.ReadOnly = true
	base, err := Open(basePath, bo)
	if err != nil {
		return err
	}
	info := *base.Info()
	base.Close()
	size := o.Size
	if size == 0 {
		size = info.VirtualSize
	}
	size = (size + 511) &^ 511 // qemu sizes disks in whole sectors
	if size < info.VirtualSize {
		return &diskerr.Error{Path: newPath, What: fmt.Sprintf("overlay size %d < base %s virtual size %d", size, basePath, info.VirtualSize), Offset: -1, Err: ErrTooSmall}
	}
	name := o.BackingName
	if name == "" {
		if name, err = backingNameFor(newPath, basePath); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(newPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = qcow2.Create(f, qcow2.CreateOptions{Size: size, BackingFile: name, BackingFormat: info.Format, NoSync: o.NoSync})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(newPath)
	}
	return err
}

// backingNameFor names base relative to the overlay's directory when it is
// inside it, else by its absolute path.
func backingNameFor(newPath, basePath string) (string, error) {
	absBase, err := filepath.Abs(basePath)
	if err != nil {
		return "", err
	}
	absDir, err := filepath.Abs(filepath.Dir(newPath))
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absDir, absBase)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return rel, nil
	}
	return absBase, nil
}
