package xfs

import (
	"fmt"
	"io"
	"sort"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// fileData reads a regular file's content through its extent map: holes
// and unwritten extents read as zeros, nothing past the size is read.
type fileData struct {
	f    *FS
	in   *inode
	exts []layout.Extent
}

// openData maps the regular file in.
func (f *FS) openData(in *inode) (*fileData, error) {
	if in.core.Flags&layout.FlagRealtime != 0 {
		return nil, unsupported("inode %d keeps its data on the realtime device", in.ino)
	}
	exts, err := f.forkExtents(in, false)
	if err != nil {
		return nil, err
	}
	return &fileData{f: f, in: in, exts: exts}, nil
}

// ReadAt reads len(p) bytes of the file at off.
func (d *fileData) ReadAt(p []byte, off int64) (int, error) {
	size := d.in.size()
	if off < 0 {
		return 0, fmt.Errorf("xfs: negative offset %d", off)
	}
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	g := &d.f.geo
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		fb := uint64(pos >> g.blockLog)
		inBlock := pos & (g.blockSize - 1)
		x := findExtent(d.exts, fb)
		var run int64 // bytes this step covers
		if x < 0 {
			// A hole up to the next extent (or the end).
			next := int64(-1)
			if i := sort.Search(len(d.exts), func(i int) bool { return d.exts[i].StartOff > fb }); i < len(d.exts) {
				next = int64(d.exts[i].StartOff) << g.blockLog
			}
			run = int64(len(p) - done)
			if next >= 0 && next-pos < run {
				run = next - pos
			}
			clear(p[done : done+int(run)])
		} else {
			e := d.exts[x]
			end := int64(e.StartOff+uint64(e.Count)) << g.blockLog
			run = min(int64(len(p)-done), end-pos)
			if e.Unwritten {
				clear(p[done : done+int(run)])
			} else {
				disk := (g.fsbLinear(e.StartBlock)+int64(fb-e.StartOff))<<g.blockLog + inBlock
				w := where{what: "file data", ag: int64(e.StartBlock >> g.agBlkLog), block: int64(e.StartBlock), ino: d.in.ino, off: disk}
				if err := d.f.readAt(p[done:done+int(run)], disk, w); err != nil {
					return done, err
				}
			}
		}
		done += int(run)
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// readAll returns the whole content of the regular file in, refusing
// files larger than limit.
func (f *FS) readAll(in *inode, limit int64) ([]byte, error) {
	if in.size() > limit {
		return nil, unsupported("inode %d holds %d bytes, more than the %d ReadFile loads (use OpenFile)", in.ino, in.size(), limit)
	}
	d, err := f.openData(in)
	if err != nil {
		return nil, err
	}
	b := make([]byte, in.size())
	if _, err := d.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}
