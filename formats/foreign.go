package formats

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/formats/vdi"
	"github.com/guestinject/guestinject/formats/vhd"
	"github.com/guestinject/guestinject/formats/vhdx"
	"github.com/guestinject/guestinject/formats/vmdk"
)

// Formats read but never written in place (the read verbs open them;
// `inject import` converts them).
const (
	FormatVMDK = "vmdk"
	FormatVHD  = "vhd"
	FormatVHDX = "vhdx"
	FormatVDI  = "vdi"
)

// ReadOnlyFormat reports a container that is opened read-only only.
func ReadOnlyFormat(name string) bool {
	return name == FormatVMDK || name == FormatVHD || name == FormatVHDX || name == FormatVDI
}

// WriteRefused is the error for writing (or rehearsing a write) into an
// image of a read-only format (ReadOnlyFormat): ErrUnsupportedFormat,
// pointing at 'inject import'.
func WriteRefused(path, name string) error { return readOnlyRefused(path, name) }

func readOnlyRefused(path, name string) error {
	return &diskerr.Error{Path: path, What: fmt.Sprintf("%s images are read here but never written in place (convert with 'inject import %s --output DISK.qcow2', then inject into DISK.qcow2, or in the same command)", name, path), Offset: -1, Err: ErrUnsupportedFormat}
}

// foreignDisk serves a read-only format's virtual disk as a Disk.
type foreignDisk struct {
	io.ReaderAt
	size  int64
	close func() error
}

func (d *foreignDisk) Size() int64 { return d.size }
func (d *foreignDisk) WriteAt(_ []byte, off int64) (int, error) {
	return 0, diskerr.At(off, "write", ErrReadOnly)
}
func (d *foreignDisk) Flush() error { return nil }
func (d *foreignDisk) Close() error {
	if d.close == nil {
		return nil
	}
	c := d.close
	d.close = nil
	return c()
}

// OpenForeign opens r (the file at path, fileSize bytes) as the read-only
// format name. Extent files a VMDK descriptor names are opened beneath
// path's directory only (vmdk.DirOpener).
func OpenForeign(r io.ReaderAt, fileSize int64, path, name string) (Disk, string, error) {
	var (
		rd interface {
			ReadAt([]byte, int64) (int, error)
		}
		size     int64
		describe string
		closeFn  func() error
	)
	switch name {
	case FormatVHD:
		d, err := vhd.Open(r, fileSize)
		if err != nil {
			return nil, "", diskerr.WithPath(path, err)
		}
		rd, size, describe = d, d.Size(), d.Describe()
	case FormatVHDX:
		d, err := vhdx.Open(r, fileSize)
		if err != nil {
			return nil, "", diskerr.WithPath(path, err)
		}
		rd, size, describe = d, d.Size(), d.Describe()
	case FormatVDI:
		d, err := vdi.Open(r, fileSize)
		if err != nil {
			return nil, "", diskerr.WithPath(path, err)
		}
		rd, size, describe = d, d.Size(), d.Describe()
	case FormatVMDK:
		var open vmdk.Opener
		if path != "" {
			o, c, err := vmdk.DirOpener(filepath.Dir(path))
			if err != nil {
				return nil, "", err
			}
			open, closeFn = o, c
		}
		d, err := vmdk.Open(r, fileSize, open)
		if err != nil {
			if closeFn != nil {
				closeFn()
			}
			return nil, "", diskerr.WithPath(path, err)
		}
		rd, size, describe = d, d.Size(), d.Describe()
	default:
		return nil, "", unsupported(path, name)
	}
	return &foreignDisk{ReaderAt: rd, size: size, close: closeFn}, describe, nil
}

// openForeign is openLayer's branch for the read-only formats.
func openForeign(f *os.File, size int64, path, name string, readOnly bool, info *Info) (Disk, error) {
	if !readOnly {
		return nil, readOnlyRefused(path, name)
	}
	d, describe, err := OpenForeign(f, size, path, name)
	if err != nil {
		return nil, err
	}
	info.VirtualSize, info.Detail = d.Size(), describe
	return d, nil
}
