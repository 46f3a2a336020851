package formats

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/formats/qcow2"
)

// Image is an open image file with its backing chain. It implements Disk.
type Image struct {
	info   Info
	top    Disk
	layers []Disk     // every backing layer, closed by Close
	files  []*os.File // the image and every backing file, closed by Close
}

// Info describes the image.
func (img *Image) Info() *Info { return &img.info }

func (img *Image) Size() int64                              { return img.top.Size() }
func (img *Image) ReadAt(p []byte, off int64) (int, error)  { return img.top.ReadAt(p, off) }
func (img *Image) WriteAt(p []byte, off int64) (int, error) { return img.top.WriteAt(p, off) }
func (img *Image) Flush() error                             { return img.top.Flush() }

// WriteChecker is served by disks that can judge a write before making it
// (qcow2: a write that would land on the image's own metadata).
type WriteChecker interface {
	CheckWrite(off, n int64) error
}

// CheckWrite reports whether a write of n bytes at off would be refused,
// writing nothing: the range must lie in the disk, and a qcow2 top layer
// judges the clusters it maps.
func (img *Image) CheckWrite(off, n int64) error {
	if c, ok := img.top.(WriteChecker); ok {
		return c.CheckWrite(off, n)
	}
	if off < 0 || n < 0 || off > img.Size() || n > img.Size()-off {
		return diskerr.At(off, fmt.Sprintf("write of %d bytes", n), diskerr.ErrOutOfRange)
	}
	return nil
}

// Close flushes the image, releases the locks explicitly (a process
// forked meanwhile may still share the files; see unlockImage) and closes
// every file of the chain.
func (img *Image) Close() error {
	var err error
	if img.top != nil {
		err = img.top.Close()
	}
	for _, l := range img.layers {
		l.Close()
	}
	img.layers = nil
	for _, f := range img.files {
		if e := unlockImage(f); err == nil {
			err = diskerr.WithPath(f.Name(), e)
		}
		if e := f.Close(); err == nil {
			err = e
		}
	}
	img.files = nil
	return err
}

// Open opens the image at path under opts.
func Open(path string, opts Options) (*Image, error) {
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	img := &Image{}
	top, info, err := img.openLayer(location{Path: path}, opts.Format, opts.ReadOnly, opts, 0)
	if err != nil {
		img.Close()
		return nil, err
	}
	img.top, img.info = top, *info
	return img, nil
}

// qcow2Disk adapts *qcow2.Image (which does not own its file) to Disk.
type qcow2Disk struct{ *qcow2.Image }

// openLayer opens one file of the chain and, recursively, its backing file.
func (img *Image) openLayer(loc location, format string, readOnly bool, opts Options, depth int) (Disk, *Info, error) {
	path := loc.Path
	f, size, err := img.openFile(loc, readOnly, opts)
	if err != nil {
		return nil, nil, err
	}
	if format == "" {
		if format, err = Detect(f, size); err != nil {
			return nil, nil, diskerr.WithPath(path, err)
		}
	}
	info := &Info{Path: path, Format: format, VirtualSize: size, AllocatedBytes: -1}
	if fi, err := f.Stat(); err == nil {
		info.AllocatedBytes = allocatedBytes(fi)
	}
	switch format {
	case FormatRaw:
		return &rawDisk{f: f, size: size, readOnly: readOnly}, info, nil
	case FormatQcow2:
		d, err := img.openQcow2(f, size, path, readOnly, opts, depth, info)
		return d, info, err
	case FormatVMDK, FormatVHD, FormatVHDX, FormatVDI:
		if depth > 0 {
			break // a qcow2's backing file is raw or qcow2 (backingFormat)
		}
		d, err := openForeign(f, size, path, format, readOnly, info)
		return d, info, err
	}
	return nil, nil, unsupported(path, format)
}

func (img *Image) openQcow2(f *os.File, size int64, path string, readOnly bool, opts Options, depth int, info *Info) (Disk, error) {
	meta, err := qcow2.ReadMeta(f, size)
	if err != nil {
		return nil, diskerr.WithPath(path, err)
	}
	fillQcow2Info(info, meta)
	var backing Disk
	if meta.BackingFile != "" {
		if depth+1 > opts.MaxDepth {
			return nil, &diskerr.Error{Path: path, What: fmt.Sprintf("backing chain deeper than %d", opts.MaxDepth), Offset: -1, Err: ErrBackingChain}
		}
		bloc, err := resolveBacking(path, meta.BackingFile, opts.Backing)
		if err != nil {
			return nil, err
		}
		bpath := bloc.Path
		bfmt, err := backingFormat(path, meta.BackingFormat)
		if err != nil {
			return nil, err
		}
		var binfo *Info
		backing, binfo, err = img.openLayer(bloc, bfmt, true, opts, depth+1)
		if err != nil {
			return nil, err
		}
		img.layers = append(img.layers, backing)
		info.BackingChain = append([]BackingInfo{{Name: meta.BackingFile, Path: bpath, Format: binfo.Format, VirtualSize: binfo.VirtualSize}}, binfo.BackingChain...)
	}
	q, err := qcow2.Open(f, size, qcow2.Options{ReadOnly: readOnly, Backing: backing, Meta: meta, Unordered: opts.Fresh && !readOnly})
	if err != nil {
		return nil, diskerr.WithPath(path, err)
	}
	return qcow2Disk{q}, nil
}

func fillQcow2Info(info *Info, m *qcow2.Meta) {
	info.VirtualSize = int64(m.Size)
	info.ClusterSize = int(m.ClusterSize)
	info.Version = int(m.Version)
	info.RefcountBits = int(m.RefcountBits)
	info.Compression = "zlib"
	if m.CompressionType == qcow2.CompressionZstd {
		info.Compression = "zstd"
	}
	info.ExtendedL2 = m.ExtendedL2
	info.LazyRefcounts = m.CompatibleFeatures&qcow2.CompatLazyRefcounts != 0
	info.Dirty = m.IncompatibleFeatures&qcow2.IncompatDirty != 0
	info.Corrupt = m.IncompatibleFeatures&qcow2.IncompatCorrupt != 0
	info.Bitmaps = m.HasBitmaps && m.AutoclearFeatures&qcow2.AutoclearBitmaps != 0
	info.Snapshots = int(m.NbSnapshots)
}

// backingFormat maps the backing format extension to a format we open;
// "" means detect by magic (as qemu does).
func backingFormat(path, name string) (string, error) {
	switch name {
	case "", FormatRaw, FormatQcow2:
		return name, nil
	case "file", "host_device":
		return FormatRaw, nil
	}
	return "", unsupported(path+" (backing file)", name)
}

// openFile opens one file of the chain (see openImagePath), refuses a
// loop, and locks it.
func (img *Image) openFile(loc location, readOnly bool, opts Options) (*os.File, int64, error) {
	path := loc.Path
	f, fi, err := openImagePath(loc, !readOnly)
	if err != nil {
		return nil, 0, err
	}
	for _, o := range img.files {
		if ofi, err := o.Stat(); err == nil && os.SameFile(fi, ofi) {
			f.Close()
			return nil, 0, &diskerr.Error{Path: path, What: "backing chain loops back to an image already in the chain", Offset: -1, Err: ErrBackingChain}
		}
	}
	img.files = append(img.files, f)
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, err
	}
	if !opts.NoLock {
		if err := lockImage(f, !readOnly); err != nil {
			return nil, 0, diskerr.WithPath(path, err)
		}
	}
	return f, size, nil
}

var protocolName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`) })

// ResolveBacking applies the backing policy to the backing name stored in
// the image at imagePath and returns the path to open.
func ResolveBacking(imagePath, name string, policy BackingPolicy) (string, error) {
	loc, err := resolveBacking(imagePath, name, policy)
	return loc.Path, err
}

// location is where one file of the chain is opened: Path; or, for a
// backing file under the default policy, Rel beneath the image's directory
// Dir (symlinks resolved) through an os.Root, so that a path component
// swapped for a symlink between the policy's check and the open cannot
// lead outside that directory.
type location struct{ Path, Dir, Rel string }

func resolveBacking(imagePath, name string, policy BackingPolicy) (location, error) {
	deny := func(why string) error {
		return &diskerr.Error{Path: imagePath, What: fmt.Sprintf("backing file %q %s", name, why), Offset: -1, Err: ErrBackingDenied}
	}
	if policy == BackingDeny {
		return location{}, deny("not opened: backing files are denied")
	}
	if strings.HasPrefix(name, "json:") || protocolName().MatchString(name) {
		return location{}, &diskerr.Error{Path: imagePath, What: fmt.Sprintf("backing file %q uses a protocol", name), Offset: -1, Err: ErrUnsupported}
	}
	dir := filepath.Dir(imagePath)
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, name)
	}
	if policy == BackingAllow {
		return location{Path: p}, nil
	}
	if filepath.IsAbs(name) {
		return location{}, deny("is an absolute path (allow it with the backing policy 'allow')")
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return location{}, fmt.Errorf("%s: backing file %q: %w", imagePath, name, err)
	}
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return location{}, err
	}
	rel, err := filepath.Rel(rdir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return location{}, deny("resolves outside the image's directory (allow it with the backing policy 'allow')")
	}
	return location{Path: real, Dir: rdir, Rel: rel}, nil
}
