// Package formats opens disk image files as virtual disks: it detects the
// container (qcow2, raw; vmdk, vhd, vhdx and vdi opened read-only; iso,
// qed, ... recognised and refused), resolves qcow2 backing chains under a backing-file policy, takes
// qemu-compatible locks, and creates qcow2 overlays. It knows no filesystems.
//
// Only regular files and block devices are opened, as images and as
// backing files; a FIFO, socket, character device or directory is refused
// (ErrUnsupported, "not a regular file or block device") before open(2)
// could block on it or trigger a device's side effects.
package formats

import (
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Disk is an open virtual disk.
type Disk interface {
	io.ReaderAt
	io.WriterAt
	Size() int64 // virtual size in bytes
	Flush() error
	Close() error
}

// Error classes (see package diskerr); test with errors.Is.
var (
	ErrUnsupportedFormat = diskerr.ErrUnsupportedFormat
	ErrUnsupported       = diskerr.ErrUnsupported
	ErrCorrupt           = diskerr.ErrCorrupt
	ErrInUse             = diskerr.ErrInUse
	ErrBackingDenied     = diskerr.ErrBackingDenied
	ErrBackingChain      = diskerr.ErrBackingChain
	ErrReadOnly          = diskerr.ErrReadOnly
	ErrDirty             = diskerr.ErrDirty
	ErrTooSmall          = diskerr.ErrTooSmall
	ErrOutOfRange        = diskerr.ErrOutOfRange
)

// Error is the typed error carrying a path, a structure and an offset.
type Error = diskerr.Error

// BackingPolicy decides which backing files an image may name.
type BackingPolicy int

const (
	// BackingDefault allows relative backing paths that resolve (after
	// symlinks) inside the image's directory or below it; absolute paths
	// and paths escaping the directory are denied.
	BackingDefault BackingPolicy = iota
	// BackingAllow opens whatever path the image names, as long as it is
	// a regular file or a block device (see openImagePath).
	BackingAllow
	// BackingDeny refuses every image that has a backing file.
	BackingDeny
)

// DefaultMaxDepth bounds backing chains.
const DefaultMaxDepth = 16

// Options controls Open.
type Options struct {
	Format   string // "", "raw" or "qcow2"; "" detects by magic
	ReadOnly bool
	Backing  BackingPolicy
	MaxDepth int  // backing chain depth limit; 0 means DefaultMaxDepth
	NoLock   bool // skip the qemu-compatible file locks
	// Fresh says the image file was created by this process moments ago
	// (CreateOverlay) and nothing else uses it: a crash would leave a file
	// to discard, not an image to keep, so the syncs that order qcow2
	// metadata writes are skipped. Close still makes everything durable.
	Fresh bool
}

// BackingInfo describes one backing file of the chain.
type BackingInfo struct {
	Name        string // as named by the image above it (untrusted)
	Path        string // resolved path that was opened
	Format      string
	VirtualSize int64
}

// Info describes an open image.
type Info struct {
	Path        string
	Format      string
	VirtualSize int64
	// AllocatedBytes is what the file takes on the host (its blocks, from
	// fstat of the descriptor that was opened); -1 where unknown.
	AllocatedBytes int64
	ClusterSize    int    // qcow2 only
	Version        int    // qcow2 only
	RefcountBits   int    // qcow2 only
	Compression    string // qcow2: "zlib" or "zstd"
	ExtendedL2     bool
	LazyRefcounts  bool
	Dirty          bool
	Corrupt        bool
	Bitmaps        bool // persistent bitmaps (cleared as stale on first write)
	Snapshots      int
	BackingChain   []BackingInfo // nearest backing file first
	// Detail describes a read-only format's layout (vmdk, vhd, vhdx, vdi):
	// "vmdk streamOptimized, 1 extent(s), ..."; "" otherwise.
	Detail string
}

// Features lists the notable qcow2 features of the image for display
// ("lazy_refcounts", "extended_l2", "compression=zstd", "dirty", ...).
func (i *Info) Features() []string {
	var out []string
	add := func(on bool, name string) {
		if on {
			out = append(out, name)
		}
	}
	add(i.Compression == "zstd", "compression=zstd")
	add(i.ExtendedL2, "extended_l2")
	add(i.LazyRefcounts, "lazy_refcounts")
	add(i.Bitmaps, "bitmaps")
	add(i.Snapshots > 0, "snapshots")
	add(i.Dirty, "dirty")
	add(i.Corrupt, "corrupt")
	return out
}
