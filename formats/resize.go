package formats

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/formats/qcow2"
)

// Resized is a grown image and what undoes the growth: the bytes the
// resize overwrote inside the old file, with what it wrote there, and the
// old file length.
type Resized struct {
	Path             string
	Format           string
	OldSize, NewSize int64 // virtual sizes
	oldLen, newLen   int64 // host file lengths
	opts             Options
	undo             []span // in write order
}

// span is one write inside the old file: the bytes before and after it.
type span struct {
	off           int64
	before, after []byte
}

// undoLog is the host file as the resize sees it: every write that lands
// inside the old length is recorded, with the bytes it replaced.
type undoLog struct {
	f      *os.File
	oldLen int64
	spans  []span
}

func (u *undoLog) ReadAt(p []byte, off int64) (int, error) { return u.f.ReadAt(p, off) }
func (u *undoLog) Sync() error                             { return u.f.Sync() }
func (u *undoLog) WriteAt(p []byte, off int64) (int, error) {
	if off < u.oldLen {
		n := min(int64(len(p)), u.oldLen-off)
		before := make([]byte, n)
		if _, err := u.f.ReadAt(before, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		u.spans = append(u.spans, span{off: off, before: before, after: bytes.Clone(p[:n])})
	}
	return u.f.WriteAt(p, off)
}

// Grow resizes the image at path (its top layer only; backing files are
// never written) to a virtual size of size bytes, rounded up to whole
// sectors, as qemu-img resize does: a raw file is extended (sparse), a
// qcow2 header and L1 table are updated (qcow2.Image.Grow). Shrinking is
// refused with ErrTooSmall, and so is everything the writer refuses. With
// check set nothing is written: the image is only opened and the request
// judged. The caller undoes the growth with Undo when what follows fails.
func Grow(path string, size int64, opts Options, check bool) (*Resized, error) {
	size = (size + 511) &^ 511
	opts.ReadOnly = check
	img, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	info := img.Info()
	r := &Resized{Path: path, Format: info.Format, OldSize: info.VirtualSize, NewSize: size, opts: opts}
	if size < info.VirtualSize {
		return nil, &diskerr.Error{Path: path, What: fmt.Sprintf("resize to %d bytes, below the virtual size %d (shrinking is refused)", size, info.VirtualSize), Offset: -1, Err: ErrTooSmall}
	}
	f := img.files[0]
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &diskerr.Error{Path: path, What: "resize of a block device is refused", Offset: -1, Err: ErrUnsupported}
	}
	r.oldLen = fi.Size()
	if info.Format == FormatQcow2 && info.Snapshots > 0 {
		return nil, &diskerr.Error{Path: path, What: fmt.Sprintf("resize of a qcow2 with %d internal snapshots is refused", info.Snapshots), Offset: -1, Err: ErrUnsupported}
	}
	if info.Format == FormatQcow2 && info.Bitmaps {
		return nil, &diskerr.Error{Path: path, What: "resize of a qcow2 with persistent bitmaps is refused", Offset: -1, Err: ErrUnsupported}
	}
	if info.Format == FormatQcow2 && (info.Dirty || info.Corrupt) {
		return nil, &diskerr.Error{Path: path, What: "resize of a qcow2 marked dirty or corrupt is refused (qemu-img check -r first)", Offset: -1, Err: ErrDirty}
	}
	if info.Format == FormatQcow2 {
		perL1 := int64(info.ClusterSize) * int64(info.ClusterSize) / 8
		if info.ExtendedL2 {
			perL1 /= 2
		}
		if need := (size + perL1 - 1) / perL1; need*8 > qcow2.MaxL1Bytes {
			return nil, &diskerr.Error{Path: path, What: fmt.Sprintf("resize to %d bytes needs an L1 table of %d entries, over the 32 MiB limit", size, need), Offset: -1, Err: diskerr.ErrNoSpace}
		}
	}
	if check || size == info.VirtualSize {
		r.newLen = r.oldLen
		return r, nil
	}
	switch info.Format {
	case FormatRaw:
		if err := f.Truncate(size); err != nil {
			return nil, diskerr.WithPath(path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, diskerr.WithPath(path, err)
		}
		r.newLen = size
		return r, nil
	case FormatQcow2:
		return r, r.growQcow2(img, f)
	}
	return nil, unsupported(path, info.Format)
}

func (r *Resized) growQcow2(img *Image, f *os.File) error {
	var backing qcow2.Backing
	if len(img.layers) > 0 {
		backing = img.layers[0]
	}
	log := &undoLog{f: f, oldLen: r.oldLen}
	q, err := qcow2.Open(log, r.oldLen, qcow2.Options{Backing: backing})
	if err == nil {
		err = q.Grow(r.NewSize)
	}
	r.undo = log.spans
	if err != nil {
		if len(log.spans) > 0 || fileLen(f) != r.oldLen {
			err = errors.Join(err, r.restore(f))
		}
		return diskerr.WithPath(r.Path, err)
	}
	r.newLen = fileLen(f)
	for i := range r.undo { // what Undo expects to find: the final bytes
		if _, err := f.ReadAt(r.undo[i].after, r.undo[i].off); err != nil && !errors.Is(err, io.EOF) {
			return diskerr.WithPath(r.Path, err)
		}
	}
	return nil
}

func fileLen(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return -1
	}
	return fi.Size()
}

// Undo puts the image back as it was before Grow, byte for byte: the
// overwritten bytes are written back in reverse order, each synced (so a
// crash mid-way leaves one of the states Grow itself passed through), and
// the file is truncated to its old length. It refuses when the image is no
// longer what Grow left (another writer, or a write that was not undone).
func (r *Resized) Undo() error {
	if r.newLen == r.oldLen && len(r.undo) == 0 {
		return nil
	}
	o := r.opts
	o.ReadOnly = false
	img, err := Open(r.Path, o)
	if err != nil {
		return err
	}
	defer img.Close()
	f := img.files[0]
	if n := fileLen(f); n != r.newLen {
		return &diskerr.Error{Path: r.Path, What: fmt.Sprintf("undo of the resize: the file is %d bytes, the resize left %d; not undone", n, r.newLen), Offset: -1, Err: ErrCorrupt}
	}
	for _, s := range r.undo {
		now := make([]byte, len(s.after))
		if _, err := f.ReadAt(now, s.off); err != nil && !errors.Is(err, io.EOF) {
			return diskerr.WithPath(r.Path, err)
		}
		if !bytes.Equal(now, s.after) {
			return &diskerr.Error{Path: r.Path, What: "undo of the resize: the image changed since; not undone", Offset: s.off, Err: ErrCorrupt}
		}
	}
	return r.restore(f)
}

// restore writes the recorded bytes back and truncates to the old length.
func (r *Resized) restore(f *os.File) error {
	for i := len(r.undo) - 1; i >= 0; i-- {
		s := r.undo[i]
		if _, err := f.WriteAt(s.before, s.off); err != nil {
			return diskerr.WithPath(r.Path, err)
		}
		if err := f.Sync(); err != nil {
			return diskerr.WithPath(r.Path, err)
		}
	}
	if err := f.Truncate(r.oldLen); err != nil {
		return diskerr.WithPath(r.Path, err)
	}
	if err := f.Sync(); err != nil {
		return diskerr.WithPath(r.Path, err)
	}
	r.undo, r.newLen = nil, r.oldLen
	return nil
}
