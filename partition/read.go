package partition

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Options tune Read.
type Options struct {
	// SectorSize forces the logical sector size (512 or 4096). Zero
	// detects it: a GPT header at byte 512 or 4096 decides; for an MBR,
	// whose entries carry no unit, 4096 is chosen only when filesystems
	// are found at the 4096-byte offsets and not at the 512-byte ones.
	SectorSize int
}

// Read reads the partition table of a disk of size bytes. A disk with no
// table gives Scheme "none": with one pseudo-partition (Number 0) covering
// the disk if Identify finds a filesystem there, else no partitions.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	return ReadOptions(r, size, Options{})
}

// ReadOptions is Read with options.
func ReadOptions(r io.ReaderAt, size int64, o Options) (*Table, error) {
	if size < 0 {
		return nil, &Error{Where: "disk", LBA: -1, Offset: -1, Msg: fmt.Sprintf("negative size %d", size), Err: ErrOutOfRange}
	}
	if o.SectorSize != 0 && o.SectorSize != 512 && o.SectorSize != 4096 {
		return nil, &Error{Where: "options", LBA: -1, Offset: -1, Msg: fmt.Sprintf("sector size %d (want 512 or 4096)", o.SectorSize), Err: ErrUnsupported}
	}
	s := &scan{r: r, size: size, t: &Table{DiskSize: size, SectorSize: 512}}
	if o.SectorSize != 0 {
		s.t.SectorSize = o.SectorSize
	}
	if err := s.detect(o); err != nil {
		return nil, err
	}
	s.checkOverlaps()
	s.t.buildIndex()
	s.t.closeWarnings()
	return s.t, nil
}

// scan carries the disk and the table being filled while Read runs.
type scan struct {
	r    io.ReaderAt
	size int64
	t    *Table
}

// read returns n bytes at off, refusing (ErrCorrupt) a range that is not
// inside the disk: every offset reaching here came from on-disk data.
func (s *scan) read(where string, off int64, n int) ([]byte, error) {
	if off < 0 || int64(n) > s.size || off > s.size-int64(n) {
		return nil, &Error{Where: where, LBA: -1, Offset: off,
			Msg: fmt.Sprintf("%d bytes lie outside the %d-byte disk", n, s.size), Err: ErrCorrupt}
	}
	buf := make([]byte, n)
	got, err := s.r.ReadAt(buf, off)
	if got == n {
		return buf, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, ioError(where, off, err)
}

// detect decides the scheme and fills the table.
func (s *scan) detect(o Options) error {
	if s.size < mbrSectorSize {
		return s.whole()
	}
	b, err := s.read("mbr", 0, mbrSectorSize)
	if err != nil {
		return err
	}
	var m mbrSector
	if err := decode(b, &m); err != nil {
		return err
	}
	mbrOK := validMBR(&m)
	pmbr := mbrOK && hasProtective(&m)
	gptSeen, err := s.gptSeen()
	if err != nil {
		return err
	}
	switch {
	case pmbr || (gptSeen && (!mbrOK || !anyUsed(&m))):
		if !pmbr {
			s.t.warnf("GPT header found but LBA 0 holds no protective MBR")
		}
		s.t.Hybrid = pmbr && isHybrid(&m)
		return s.readGPT(o)
	case mbrOK && anyUsed(&m) && !looksLikeBootSector(b):
		if gptSeen {
			s.t.warnf("GPT header found but the MBR has no protective 0xEE entry; the MBR is used")
		}
		return s.readMBR(&m, o)
	}
	return s.whole()
}

// gptSeen tells whether a GPT header signature sits at LBA 1 for 512- or
// 4096-byte sectors. A read failure is returned, not taken for "no".
func (s *scan) gptSeen() (bool, error) {
	for _, off := range []int64{512, 4096} {
		ok, err := s.gptSignatureAt(off)
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// gptSignatureAt tells whether "EFI PART" is at byte off; past the disk
// end it is not.
func (s *scan) gptSignatureAt(off int64) (bool, error) {
	b, err := s.read("gpt header", off, len(gptSignature))
	if isCorrupt(err) {
		return false, nil
	}
	return err == nil && bytes.Equal(b, gptSignature[:]), err
}

// whole fills a table with no partition scheme: one pseudo-partition over
// the disk when a filesystem is recognised on it.
func (s *scan) whole() error {
	s.t.Scheme = SchemeNone
	sig, err := Identify(s.r, s.size)
	if err != nil {
		return err
	}
	if sig.Kind != "" {
		s.t.Partitions = append(s.t.Partitions, Partition{Number: 0, Start: 0, Size: s.size, TypeName: "Whole disk (" + sig.Kind + ")"})
	}
	return nil
}

// isCorrupt tells a content failure (which may be recovered from, e.g. by
// the backup GPT) from an I/O failure (which is returned as is).
func isCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }

// checkBounds records a warning for a partition that does not lie inside
// the disk. The partition is still reported (report, don't trust); Open
// refuses it.
func (s *scan) checkBounds(p Partition) {
	switch {
	case p.Start >= s.size:
		s.t.warnf("partition %d starts at byte %d, beyond the end of the %d-byte disk", p.Number, p.Start, s.size)
	case p.Size > s.size-p.Start:
		s.t.warnf("partition %d (bytes %d-%d) extends beyond the end of the %d-byte disk", p.Number, p.Start, p.End(), s.size)
	}
}

// maxOverlapWarnings bounds the warnings one hostile table can produce.
const maxOverlapWarnings = 16

// checkOverlaps warns about data partitions that share bytes.
func (s *scan) checkOverlaps() {
	var ps []Partition
	for _, p := range s.t.Partitions {
		if !p.Extended && p.Size > 0 {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Start < ps[j].Start })
	warned := 0
	for i := 1; i < len(ps) && warned < maxOverlapWarnings; i++ {
		// ps[i-1] is replaced by the one reaching furthest, so a long
		// partition is compared with every later one.
		if ps[i].Start < ps[i-1].End() {
			s.t.warnf("partitions %d and %d overlap", ps[i-1].Number, ps[i].Number)
			warned++
			if ps[i-1].End() > ps[i].End() {
				ps[i] = ps[i-1]
			}
		}
	}
}
