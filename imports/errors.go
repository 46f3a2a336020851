// Package imports brings a disk image in the way users have it — a local
// file, stdin or an http(s) URL; gzip, bzip2, xz or zstd compressed,
// nested; inside a tar, zip or OVA; raw, qcow2, VMDK, VHD or VHDX — and
// writes it as a sparse raw or qcow2 disk in one pass over the source,
// verifying a checksum on the way, to a temporary name beside the output
// that becomes the output only once complete and verified.
//
// Layout of the package: source.go opens what SOURCE names; layers.go
// recognises compression and archives by magic; archive.go picks the disk
// in a tar, zip or OVA (ovf.go reads the descriptor); checksum.go verifies;
// sink.go writes sparse output; import.go drives them.
package imports

import (
	"errors"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/formats"
)

// Error classes; test with errors.Is. Image errors keep the formats
// classes (formats.ErrCorrupt, formats.ErrUnsupportedFormat, ...).
var (
	// ErrChecksum: the source does not match the checksum given.
	ErrChecksum = errs.New(errs.ErrCorrupt, "checksum mismatch")
	// ErrFetch: the source could not be fetched whole (an HTTP status
	// of 4xx or 5xx, a transfer cut short).
	ErrFetch = errors.New("fetching the source failed")
	// ErrArchive: the archive holds no disk, or several and no choice
	// was made (--disk N), or the choice names nothing.
	ErrArchive = errs.New(errs.ErrAmbiguous, "cannot choose the disk in the archive")
	// ErrNesting: more compression and archive layers than MaxLayers.
	ErrNesting = errs.New(errs.ErrUnsupported, "too many nested compression or archive layers")
	// ErrTooSmall: --size is smaller than the disk imported.
	ErrTooSmall = formats.ErrTooSmall
	// ErrUnsupported: a format or feature recognised and refused.
	ErrUnsupported = formats.ErrUnsupportedFormat
)
