package partition

import (
	"fmt"
	"io"
)

// Section is a bounded window [start, start+size) of a disk. Reads past its
// end are short (io.EOF); a write that does not fit wholly inside it is
// refused before a byte is written, so nothing done through a Section can
// reach a neighbouring partition or the partition table.
type Section struct {
	r     io.ReaderAt
	w     io.WriterAt // nil when the disk cannot be written
	start int64
	size  int64
}

// NewSection returns the section of rw from byte start for size bytes. If
// rw also implements io.WriterAt, the section can be written. A negative
// start or size, or a window whose end overflows, gives an empty section
// that refuses every access.
func NewSection(rw io.ReaderAt, start, size int64) *Section {
	s := &Section{r: rw, start: start, size: size}
	if w, ok := rw.(io.WriterAt); ok {
		s.w = w
	}
	if start < 0 || size < 0 || start > (1<<63-1)-size {
		s.start, s.size = 0, 0
	}
	return s
}

// Size is the length of the section in bytes.
func (s *Section) Size() int64 { return s.size }

// Start is the byte offset of the section on the disk.
func (s *Section) Start() int64 { return s.start }

// ReadAt reads from the section at off. Like io.SectionReader it returns
// io.EOF with a short count at the end of the section.
func (s *Section) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, s.rangeErr("read", off, len(p))
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := p
	if rest := s.size - off; int64(len(p)) > rest {
		want = p[:rest]
	}
	n, err := s.r.ReadAt(want, s.start+off)
	if err == nil && len(want) < len(p) {
		err = io.EOF
	}
	return n, err
}

// WriteAt writes p at off inside the section. A write that would start
// before the section or end after it is refused whole (ErrOutOfRange) and
// writes nothing; a section over a read-only disk returns ErrReadOnly.
func (s *Section) WriteAt(p []byte, off int64) (int, error) {
	if s.w == nil {
		return 0, &Error{Where: "section", LBA: -1, Offset: s.start, Msg: "write", Err: ErrReadOnly}
	}
	if off < 0 || off > s.size || int64(len(p)) > s.size-off {
		return 0, s.rangeErr("write", off, len(p))
	}
	return s.w.WriteAt(p, s.start+off)
}

func (s *Section) rangeErr(op string, off int64, n int) error {
	return &Error{Where: "section", LBA: -1, Offset: s.start,
		Msg: fmt.Sprintf("%s of %d bytes at %d outside the %d-byte section", op, n, off, s.size), Err: ErrOutOfRange}
}
