package vmdk

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Opener opens an extent file named by a descriptor. The name has passed
// CheckExtentName; the opener resolves it inside the descriptor's
// directory (and should refuse anything else again, e.g. with os.Root).
type Opener func(name string) (r io.ReaderAt, size int64, err error)

// Disk is an open VMDK: an io.ReaderAt over its virtual disk.
type Disk struct {
	desc    *Descriptor
	parts   []part
	size    int64
	summary string
}

// part is one extent placed at start in the virtual disk.
type part struct {
	start, n int64
	ext      extent
}

// extent reads bytes of one extent; readAt returns at least one byte or
// an error, and never reads past the extent's own structure.
type extent interface {
	readAt(p []byte, off int64) (int, error)
}

// Open opens the VMDK file r of fileSize bytes: a sparse extent with an
// embedded descriptor (monolithicSparse, streamOptimized) or a text
// descriptor naming extent files, which open resolves. open may be nil
// when only self-contained files are acceptable.
func Open(r io.ReaderAt, fileSize int64, open Opener) (*Disk, error) {
	var head [4]byte
	if fileSize < 4 {
		return nil, diskerr.Corrupt(0, "VMDK of %d bytes", fileSize)
	}
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, diskerr.At(0, "read VMDK head", err)
	}
	switch string(head[:]) {
	case "KDMV":
		return openMonolithic(r, fileSize)
	case "COWD":
		return nil, diskerr.Unsupported("VMDK ESX sparse (COWD) extents")
	}
	if fileSize > MaxDescriptorBytes {
		return nil, diskerr.Unsupported("VMDK text descriptor of %d bytes (max %d)", fileSize, MaxDescriptorBytes)
	}
	b := make([]byte, fileSize)
	if _, err := r.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, diskerr.At(0, "read VMDK descriptor", err)
	}
	d, err := ParseDescriptor(b, 0)
	if err != nil {
		return nil, err
	}
	return openDescribed(d, open)
}

// openMonolithic opens a sparse extent that is the whole disk.
func openMonolithic(r io.ReaderAt, fileSize int64) (*Disk, error) {
	s, err := openSparse(r, fileSize, &budget{gd: MaxGDBytes, extents: 1})
	if err != nil {
		return nil, err
	}
	d := &Descriptor{}
	if s.h.DescriptorOffset != 0 && s.h.DescriptorSize != 0 {
		off, n := int64(s.h.DescriptorOffset)*SectorSize, int64(s.h.DescriptorSize)*SectorSize
		if s.h.DescriptorSize > MaxDescriptorBytes/SectorSize || s.h.DescriptorOffset > uint64(fileSize) || n > fileSize-off {
			return nil, diskerr.Corrupt(0x1c, "VMDK embedded descriptor at %#x (%d bytes) in a %d-byte file", off, n, fileSize)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil, diskerr.At(off, "read VMDK embedded descriptor", err)
		}
		if d, err = ParseDescriptor(b, off); err != nil {
			return nil, err
		}
	}
	if d.HasParent() {
		return nil, diskerr.Unsupported("VMDK with a parent disk (parentCID %s; convert it with 'qemu-img convert')", d.ParentCID)
	}
	if len(d.Extents) > 1 {
		return nil, diskerr.Unsupported("VMDK sparse file whose embedded descriptor names %d extents", len(d.Extents))
	}
	return &Disk{desc: d, parts: []part{{0, s.size(), s}}, size: s.size(), summary: s.describe()}, nil
}

// openDescribed opens each extent a text descriptor names.
func openDescribed(d *Descriptor, open Opener) (*Disk, error) {
	if d.HasParent() {
		return nil, diskerr.Unsupported("VMDK with a parent disk (parentCID %s; convert it with 'qemu-img convert')", d.ParentCID)
	}
	if len(d.Extents) == 0 {
		return nil, diskerr.Corrupt(0, "VMDK descriptor (createType %q) names no extent", d.CreateType)
	}
	disk := &Disk{desc: d, summary: d.CreateType}
	b := &budget{gd: MaxGDBytes}
	for _, e := range d.Extents {
		if e.Type == ExtentSparse {
			b.extents++
		}
	}
	for _, e := range d.Extents {
		x, err := openExtent(e, open, b)
		if err != nil {
			return nil, diskerr.At(-1, fmt.Sprintf("VMDK descriptor line %d (extent %q)", e.Line, e.File), err)
		}
		n := e.Sectors * SectorSize
		if disk.size > 1<<62-n {
			return nil, diskerr.Corrupt(-1, "VMDK extents add up beyond 2^62 bytes")
		}
		disk.parts = append(disk.parts, part{disk.size, n, x})
		disk.size += n
	}
	return disk, nil
}

func openExtent(e Extent, open Opener, b *budget) (extent, error) {
	if e.Access == "NOACCESS" {
		return nil, diskerr.Unsupported("NOACCESS extent")
	}
	switch e.Type {
	case ExtentZero:
		return zeroExtent{}, nil
	case ExtentFlat, ExtentVMFS, ExtentSparse:
	default:
		return nil, diskerr.Unsupported("extent type %s", e.Type)
	}
	if err := CheckExtentName(e.File); err != nil {
		return nil, err
	}
	if open == nil {
		return nil, diskerr.Unsupported("extent files cannot be opened here")
	}
	r, size, err := open(e.File)
	if err != nil {
		return nil, err
	}
	if e.Type != ExtentSparse {
		return &flat{r: r, fileSize: size, base: e.Offset * SectorSize}, nil
	}
	s, err := openSparse(r, size, b)
	if err != nil {
		return nil, diskerr.WithPath(e.File, err)
	}
	if s.size() < e.Sectors*SectorSize {
		return nil, diskerr.Corrupt(-1, "sparse extent %q holds %d bytes, the descriptor gives it %d", e.File, s.size(), e.Sectors*SectorSize)
	}
	return s, nil
}

type zeroExtent struct{}

func (zeroExtent) readAt(p []byte, _ int64) (int, error) { clear(p); return len(p), nil }

// flat is a flat extent: bytes from base of its file; past the file's
// end it reads zeros.
type flat struct {
	r        io.ReaderAt
	fileSize int64
	base     int64
}

func (f *flat) readAt(p []byte, off int64) (int, error) {
	at := f.base + off
	if at >= f.fileSize || at < 0 {
		clear(p)
		return len(p), nil
	}
	q := p[:min(int64(len(p)), f.fileSize-at)]
	n, err := f.r.ReadAt(q, at)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, diskerr.At(at, "read VMDK flat extent", err)
	}
	clear(p[n:])
	return len(p), nil
}

// Size is the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// CreateType is the descriptor's createType ("" when there is none).
func (d *Disk) CreateType() string { return d.desc.CreateType }

// Describe says what the disk is, for messages and inspect.
func (d *Disk) Describe() string {
	return fmt.Sprintf("vmdk %s, %d extent(s), %d bytes", d.summary, len(d.parts), d.size)
}

// ReadAt reads the virtual disk.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, diskerr.At(off, "VMDK read", diskerr.ErrOutOfRange)
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(want), d.size-off)]
	i := sort.Search(len(d.parts), func(i int) bool { return d.parts[i].start+d.parts[i].n > off })
	done := 0
	for done < len(p) && i < len(d.parts) {
		pt := d.parts[i]
		at := off + int64(done)
		if at >= pt.start+pt.n {
			i++
			continue
		}
		q := p[done:min(len(p), done+int(min(int64(len(p)-done), pt.start+pt.n-at)))]
		n, err := pt.ext.readAt(q, at-pt.start)
		done += n
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, diskerr.At(at, "VMDK read made no progress", io.ErrUnexpectedEOF)
		}
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}
