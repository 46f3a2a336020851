package ext

import (
	"io"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// fileData reads the content of an inode: through its block mapper, or
// from its inline data.
type fileData struct {
	f      *FS
	in     *inode
	m      mapper
	inline []byte // stored content of an inline-data inode (zeros follow, up to the size)
}

// openData prepares reading in's content.
func (f *FS) openData(in *inode) (*fileData, error) {
	if in.flag(layout.FlagEncrypt) {
		return nil, unsupported("inode %d is encrypted", in.num)
	}
	d := &fileData{f: f, in: in}
	if in.flag(layout.FlagInlineData) {
		b, err := f.inlineContent(in)
		if err != nil {
			return nil, err
		}
		d.inline = b
		return d, nil
	}
	m, err := f.mapperFor(in)
	if err != nil {
		return nil, err
	}
	d.m = m
	return d, nil
}

// ReadAt reads the file's bytes at off; holes and uninitialised extents
// read as zeros.
func (d *fileData) ReadAt(p []byte, off int64) (int, error) {
	size := d.in.size
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	if d.m == nil {
		return d.readInline(p, off, want)
	}
	done := 0
	for done < len(p) {
		n, err := d.readRun(p[done:], off+int64(done))
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, eofIf(done < want)
}

// readInline fills p (already cut to the size) from the stored inline
// bytes at off, then zeros.
func (d *fileData) readInline(p []byte, off int64, want int) (int, error) {
	n := 0
	if off < int64(len(d.inline)) {
		n = copy(p, d.inline[off:])
	}
	clear(p[n:])
	return len(p), eofIf(len(p) < want)
}

func eofIf(short bool) error {
	if short {
		return io.EOF
	}
	return nil
}

// readRun fills the start of p from the run holding offset off.
func (d *fileData) readRun(p []byte, off int64) (int, error) {
	bs := d.f.geo.blockSize
	lblk := uint64(off / bs)
	if lblk >= maxLblk {
		return 0, corrupt("inode", uint64(d.in.num), 0, -1, "size %d is beyond what ext can address", d.in.size)
	}
	r, err := d.m.mapBlock(lblk)
	if err != nil {
		return 0, err
	}
	inner := off % bs
	avail := int64(r.n)*bs - inner
	n := len(p)
	if int64(n) > avail {
		n = int(avail)
	}
	if r.zero {
		clear(p[:n])
		return n, nil
	}
	err = d.f.readAt(p[:n], int64(r.pblk)*bs+inner, "data block", r.pblk)
	return n, err
}

// readAll returns the whole content of in (at most max bytes).
func (f *FS) readAll(in *inode, max int64) ([]byte, error) {
	if in.size > max {
		return nil, unsupported("inode %d holds %d bytes, more than the %d ReadFile loads (use OpenFile)", in.num, in.size, max)
	}
	d, err := f.openData(in)
	if err != nil {
		return nil, err
	}
	b := make([]byte, in.size)
	n, err := d.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b[:n], nil
}
