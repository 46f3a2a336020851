// Package lvm reads LVM2 volume groups: the label and metadata areas of
// a physical volume, the text metadata naming the logical volumes, and a
// Volume that maps a linear or striped logical volume onto its physical
// volumes as an io.ReaderAt and io.WriterAt, so the filesystem engines
// use it as they use a partition. Thin, RAID, mirror, cache, snapshot and
// other segment types are described and refused. Everything read from
// disk is untrusted: sizes, offsets and counts are bounded, the text
// parser bounded in depth and size.
package lvm

import (
	"bytes"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/errs"
)

// Errors of the package; test with errors.Is. Each wraps one errs class
// (ErrNotPV: errs.ErrUnsupported, ErrMissingPV: errs.ErrNotFound).
var (
	// ErrNotPV: no LVM2 label in the first sectors.
	ErrNotPV = errs.New(errs.ErrUnsupported, "not an LVM2 physical volume")
	// ErrCorrupt: a structure or the metadata text is inconsistent.
	ErrCorrupt = errs.New(errs.ErrCorrupt, "corrupt LVM2 metadata")
	// ErrUnsupported: a logical volume whose segment type this package
	// does not map (thin, RAID, mirror, cache, snapshot…).
	ErrUnsupported = errs.New(errs.ErrUnsupported, "unsupported LVM2 logical volume")
	// ErrNotFound: no such logical volume.
	ErrNotFound = errs.New(errs.ErrNotFound, "no such logical volume")
	// ErrMissingPV: a physical volume the logical volume uses was not given.
	ErrMissingPV = errs.New(errs.ErrNotFound, "physical volume missing")
)

// Limits on what is read from disk.
const (
	maxAreas       = 16       // data or metadata areas listed in a PV header
	maxMetadata    = 16 << 20 // bytes of metadata text
	maxMetadataRaw = 8        // raw locations looked at in an area header
)

// PV is a physical volume's label and current metadata text.
type PV struct {
	UUID       string // 32 characters, without the dashes
	DeviceSize uint64 // as the PV header records it
	Data       []diskArea
	Metadata   []byte // the text of the first metadata area ("" if none)
}

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

// ReadPV reads the label, PV header and current metadata of the physical
// volume in the first size bytes of r. A device without the label gives
// ErrNotPV.
func ReadPV(r io.ReaderAt, size int64) (*PV, error) {
	if size < labelScan*sectorSize {
		return nil, ErrNotPV
	}
	head := make([]byte, labelScan*sectorSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("lvm: reading the label sectors: %w", err)
	}
	for s := 0; s < labelScan; s++ {
		lab := head[s*sectorSize : (s+1)*sectorSize]
		if string(lab[:8]) != labelID {
			continue
		}
		if string(lab[0x18:0x20]) != labelType {
			return nil, fmt.Errorf("%w: label in sector %d has type %q, want %q", ErrUnsupported, s, lab[0x18:0x20], labelType)
		}
		if got := le.Uint64(lab[0x08:]); got != uint64(s) {
			return nil, corrupt("label in sector %d says it is in sector %d", s, got)
		}
		if got, want := le.Uint32(lab[0x10:]), lvmCRC(lab[labelCRCFrom:]); got != want {
			return nil, corrupt("label in sector %d: checksum %#x, computed %#x", s, got, want)
		}
		off := le.Uint32(lab[0x14:])
		if off < 0x20 || off >= sectorSize {
			return nil, corrupt("label in sector %d: PV header at offset %d", s, off)
		}
		return readPVHeader(r, size, lab[off:])
	}
	return nil, ErrNotPV
}

// readPVHeader decodes the PV header in h (the rest of the label sector)
// and reads the first metadata area's text.
func readPVHeader(r io.ReaderAt, size int64, h []byte) (*PV, error) {
	if len(h) < pvUUIDLen+8+16 {
		return nil, corrupt("PV header truncated")
	}
	pv := &PV{UUID: string(h[:pvUUIDLen]), DeviceSize: le.Uint64(h[pvUUIDLen:])}
	rest := h[pvUUIDLen+8:]
	lists := [2][]diskArea{}
	for i := range lists {
		for {
			if len(rest) < 16 {
				return nil, corrupt("PV header: area list %d runs past the label sector", i)
			}
			a := diskArea{le.Uint64(rest), le.Uint64(rest[8:])}
			rest = rest[16:]
			if a.Offset == 0 && a.Size == 0 {
				break
			}
			if len(lists[i]) == maxAreas {
				return nil, corrupt("PV header: more than %d areas", maxAreas)
			}
			if a.Offset >= uint64(size) || a.Size > uint64(size)-a.Offset {
				if !(i == 0 && a.Size == 0 && a.Offset < uint64(size)) { // a data area of size 0 runs to the device end
					return nil, corrupt("PV header: area %d+%d lies outside the %d-byte device", a.Offset, a.Size, size)
				}
			}
			lists[i] = append(lists[i], a)
		}
	}
	pv.Data = lists[0]
	for _, m := range lists[1] {
		text, err := readMetadata(r, m)
		if err != nil {
			return nil, err
		}
		if text != nil {
			pv.Metadata = text
			break
		}
	}
	return pv, nil
}

// readMetadata returns the current text of metadata area m, nil when the
// area holds none.
func readMetadata(r io.ReaderAt, m diskArea) ([]byte, error) {
	if m.Size < 2*mdaHeaderSize {
		return nil, corrupt("metadata area at %d: %d bytes, too small", m.Offset, m.Size)
	}
	h := make([]byte, mdaHeaderSize)
	if _, err := r.ReadAt(h, int64(m.Offset)); err != nil {
		return nil, fmt.Errorf("lvm: reading the metadata area header at %d: %w", m.Offset, err)
	}
	switch {
	case string(h[4:20]) != mdaMagic:
		return nil, corrupt("metadata area at %d: bad magic", m.Offset)
	case le.Uint32(h[0:]) != lvmCRC(h[mdaCRCFrom:]):
		return nil, corrupt("metadata area at %d: header checksum %#x, computed %#x", m.Offset, le.Uint32(h[0:]), lvmCRC(h[mdaCRCFrom:]))
	case le.Uint32(h[0x14:]) != mdaVersion:
		return nil, fmt.Errorf("%w: metadata area at %d: version %d", ErrUnsupported, m.Offset, le.Uint32(h[0x14:]))
	case le.Uint64(h[0x18:]) != m.Offset || le.Uint64(h[0x20:]) != m.Size:
		return nil, corrupt("metadata area at %d: header says %d+%d", m.Offset, le.Uint64(h[0x18:]), le.Uint64(h[0x20:]))
	}
	for i := 0; i < maxMetadataRaw && 0x28+(i+1)*rawLocnSize <= mdaHeaderSize; i++ {
		b := h[0x28+i*rawLocnSize:]
		l := rawLocn{le.Uint64(b), le.Uint64(b[8:]), le.Uint32(b[16:]), le.Uint32(b[20:])}
		if l.Offset == 0 && l.Size == 0 {
			return nil, nil
		}
		if l.Flags&rawLocnIgnored != 0 {
			continue
		}
		return readText(r, m, l)
	}
	return nil, nil
}

// readText reads raw location l of area m, following the wrap of the
// circular buffer, and checks its checksum.
func readText(r io.ReaderAt, m diskArea, l rawLocn) ([]byte, error) {
	ring := m.Size - mdaHeaderSize
	if l.Size == 0 || l.Size > maxMetadata || l.Size > ring || l.Offset < mdaHeaderSize || l.Offset >= m.Size {
		return nil, corrupt("metadata at %d+%d of the %d-byte area at %d", l.Offset, l.Size, m.Size, m.Offset)
	}
	text := make([]byte, l.Size)
	first := min(l.Size, m.Size-l.Offset)
	if _, err := r.ReadAt(text[:first], int64(m.Offset+l.Offset)); err != nil {
		return nil, fmt.Errorf("lvm: reading metadata at %d: %w", m.Offset+l.Offset, err)
	}
	if first < l.Size {
		if _, err := r.ReadAt(text[first:], int64(m.Offset+mdaHeaderSize)); err != nil {
			return nil, fmt.Errorf("lvm: reading wrapped metadata at %d: %w", m.Offset+mdaHeaderSize, err)
		}
	}
	if got := lvmCRC(text); got != l.CRC {
		return nil, corrupt("metadata text at %d: checksum %#x, recorded %#x", m.Offset+l.Offset, got, l.CRC)
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	return text, nil
}
