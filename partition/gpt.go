package partition

import (
	"fmt"
	"hash/crc32"
	"unicode/utf16"
)

// Bounds on what a GPT header may claim before anything is allocated from
// it. Real tables use 128 entries of 128 bytes (16 KiB).
const (
	gptMaxEntrySize  = 4096
	gptMaxArrayBytes = 4 << 20
)

// gptCopy is one validated header with its entry array.
type gptCopy struct {
	hdr     gptHeader
	entries []byte
}

// readGPT reads the GPT, trying the sector sizes in order: the one whose
// LBA 1 holds a header first. A corrupt primary falls back to the backup;
// an I/O error is returned at once.
func (s *scan) readGPT(o Options) error {
	sizes := []int{512, 4096}
	if o.SectorSize != 0 {
		sizes = []int{o.SectorSize}
	} else if at512, err := s.gptSignatureAt(512); err != nil {
		return err
	} else if !at512 {
		sizes = []int{4096, 512}
	}
	var first error
	for _, ss := range sizes {
		c, warn, err := s.gptAt(ss)
		if err == nil {
			s.t.Warnings = append(s.t.Warnings, warn...)
			return s.fillGPT(c, ss)
		}
		if !isCorrupt(err) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// gptAt reads the primary GPT for sector size ss, or the backup when the
// primary is corrupt.
func (s *scan) gptAt(ss int) (*gptCopy, []string, error) {
	prim, perr := s.loadGPT(ss, 1, "gpt primary")
	if perr == nil {
		return prim, s.checkBackup(prim, ss), nil
	}
	if !isCorrupt(perr) {
		return nil, nil, perr
	}
	var berr error
	for _, lba := range s.backupCandidates(ss) {
		back, err := s.loadGPT(ss, lba, "gpt backup")
		if err == nil {
			return back, []string{fmt.Sprintf("primary GPT corrupt, used the backup at LBA %d: %v", lba, perr)}, nil
		}
		if !isCorrupt(err) {
			return nil, nil, err
		}
		berr = err
	}
	if berr == nil {
		return nil, nil, perr
	}
	return nil, nil, &Error{Where: "gpt", LBA: -1, Offset: -1, Err: ErrCorrupt,
		Msg: fmt.Sprintf("%d-byte sectors: primary and backup both invalid: %v; %v", ss, perr, berr)}
}

// backupCandidates lists where the backup header may be: the last LBA, and
// the LBA a CRC-valid primary header names (a disk grown since it was
// partitioned keeps its backup at the old end).
func (s *scan) backupCandidates(ss int) []uint64 {
	lbas := uint64(s.size / int64(ss))
	if lbas < 3 {
		return nil
	}
	out := []uint64{lbas - 1}
	if hdr, err := s.loadHeader(ss, 1, "gpt primary"); err == nil && hdr.AlternateLBA > 1 && hdr.AlternateLBA < lbas-1 {
		out = append(out, hdr.AlternateLBA)
	}
	return out
}

// checkBackup looks at the backup header a valid primary points to and
// returns warnings about it; it never fails the read.
func (s *scan) checkBackup(prim *gptCopy, ss int) []string {
	lbas := uint64(s.size / int64(ss))
	alt := prim.hdr.AlternateLBA
	var warn []string
	if alt != lbas-1 {
		warn = append(warn, fmt.Sprintf("backup GPT header expected at the last LBA %d, primary names LBA %d (disk resized?)", lbas-1, alt))
	}
	if alt >= lbas {
		return warn
	}
	hdr, err := s.loadHeader(ss, alt, "gpt backup")
	if err != nil {
		return append(warn, fmt.Sprintf("backup GPT unusable: %v", err))
	}
	if hdr.EntriesCRC != prim.hdr.EntriesCRC || hdr.NumEntries != prim.hdr.NumEntries {
		warn = append(warn, "backup GPT entries differ from the primary's")
	}
	return warn
}

// loadGPT reads and validates the header at lba and its entry array.
func (s *scan) loadGPT(ss int, lba uint64, where string) (*gptCopy, error) {
	hdr, err := s.loadHeader(ss, lba, where)
	if err != nil {
		return nil, err
	}
	n := int(hdr.NumEntries) * int(hdr.EntrySize) // bounded by validHeader
	off := int64(hdr.EntriesLBA) * int64(ss)
	b, err := s.read(where+" entries", off, n)
	if err != nil {
		return nil, err
	}
	if got := crc32.ChecksumIEEE(b); got != hdr.EntriesCRC {
		return nil, corrupt(where+" entries", int64(hdr.EntriesLBA), ss, "entry array CRC32 is %#08x, header says %#08x", got, hdr.EntriesCRC)
	}
	return &gptCopy{hdr: hdr, entries: b}, nil
}

// loadHeader reads the header sector at lba and validates it.
func (s *scan) loadHeader(ss int, lba uint64, where string) (gptHeader, error) {
	var hdr gptHeader
	if lba >= uint64(s.size/int64(ss)) {
		return hdr, corrupt(where+" header", int64(min(lba, 1<<62)), ss, "beyond the end of the disk")
	}
	b, err := s.read(where+" header", int64(lba)*int64(ss), ss)
	if err != nil {
		return hdr, err
	}
	if err := decode(b, &hdr); err != nil {
		return hdr, err
	}
	return hdr, s.validHeader(&hdr, b, lba, ss, where+" header")
}

// validHeader checks everything a header claims before it is used: the
// CRC, its own position, and an entry array of bounded size inside the
// disk and clear of the header.
func (s *scan) validHeader(h *gptHeader, b []byte, lba uint64, ss int, where string) error {
	bad := func(format string, args ...any) error { return corrupt(where, int64(lba), ss, format, args...) }
	if h.Signature != gptSignature {
		return bad("no \"EFI PART\" signature")
	}
	if h.Revision>>16 != 1 {
		return bad("revision %#08x is not 1.x", h.Revision)
	}
	if h.HeaderSize < gptHeaderSize || h.HeaderSize > uint32(ss) {
		return bad("header size %d outside %d-%d", h.HeaderSize, gptHeaderSize, ss)
	}
	if got := headerCRC(b[:h.HeaderSize]); got != h.HeaderCRC {
		return bad("header CRC32 is %#08x, header says %#08x", got, h.HeaderCRC)
	}
	if h.MyLBA != lba {
		return bad("header says it is at LBA %d", h.MyLBA)
	}
	return s.validArray(h, lba, ss, bad)
}

func (s *scan) validArray(h *gptHeader, lba uint64, ss int, bad func(string, ...any) error) error {
	es, n := uint64(h.EntrySize), uint64(h.NumEntries)
	if es < gptEntryMinSize || es > gptMaxEntrySize || es%8 != 0 {
		return bad("entry size %d is not a multiple of 8 in %d-%d", es, gptEntryMinSize, gptMaxEntrySize)
	}
	if n*es > gptMaxArrayBytes { // n < 2^32, es <= 4096: no overflow
		return bad("%d entries of %d bytes exceed the %d-byte limit", n, es, gptMaxArrayBytes)
	}
	lbas := uint64(s.size / int64(ss))
	sectors := (n*es + uint64(ss) - 1) / uint64(ss)
	if h.EntriesLBA < 1 || h.EntriesLBA >= lbas || sectors > lbas-h.EntriesLBA {
		return bad("entry array at LBA %d (%d sectors) is not inside the disk", h.EntriesLBA, sectors)
	}
	if lba >= h.EntriesLBA && lba < h.EntriesLBA+sectors {
		return bad("entry array at LBA %d (%d sectors) covers the header", h.EntriesLBA, sectors)
	}
	if h.FirstUsable > h.LastUsable+1 {
		return bad("first usable LBA %d is after last usable LBA %d", h.FirstUsable, h.LastUsable)
	}
	return nil
}

// headerCRC is the CRC32 of a header with its CRC field taken as zero.
func headerCRC(b []byte) uint32 {
	c := crc32.ChecksumIEEE(b[:0x10])
	c = crc32.Update(c, crc32.IEEETable, []byte{0, 0, 0, 0})
	return crc32.Update(c, crc32.IEEETable, b[0x14:])
}

// fillGPT turns a validated copy into the table's partitions.
func (s *scan) fillGPT(c *gptCopy, ss int) error {
	t := s.t
	t.Scheme, t.SectorSize = SchemeGPT, ss
	t.DiskGUID = guidString(c.hdr.DiskGUID)
	if c.hdr.MyLBA == 1 {
		h := c.hdr
		t.gptPrimary = &h
	}
	lbas := uint64(s.size / int64(ss))
	s.reserveGPT(c, ss, lbas)
	if c.hdr.LastUsable >= lbas {
		t.warnf("GPT last usable LBA %d is beyond the disk's last LBA %d (disk shrunk?)", c.hdr.LastUsable, lbas-1)
	}
	es := int(c.hdr.EntrySize)
	for i := 0; i < int(c.hdr.NumEntries); i++ {
		var e gptEntry
		if err := decode(c.entries[i*es:], &e); err != nil {
			return err
		}
		if e.TypeGUID == ([16]byte{}) {
			continue
		}
		if p, ok := s.gptPartition(&c.hdr, &e, i+1, ss); ok {
			t.Partitions = append(t.Partitions, p)
			s.checkBounds(p)
		}
	}
	return nil
}

// gptPartition converts one used entry; ok is false (with a warning) for an
// entry whose LBAs cannot describe a partition.
func (s *scan) gptPartition(h *gptHeader, e *gptEntry, number, ss int) (Partition, bool) {
	maxLBA := uint64(1<<63-1) / uint64(ss)
	if e.FirstLBA > e.LastLBA || e.LastLBA >= maxLBA {
		s.t.warnf("GPT entry %d: LBAs %d-%d describe no partition; ignored", number, e.FirstLBA, e.LastLBA)
		return Partition{}, false
	}
	if e.FirstLBA < h.FirstUsable || e.LastLBA > h.LastUsable {
		s.t.warnf("GPT entry %d: LBAs %d-%d lie outside the usable LBAs %d-%d", number, e.FirstLBA, e.LastLBA, h.FirstUsable, h.LastUsable)
	}
	typ := guidString(e.TypeGUID)
	return Partition{
		Number:   number,
		Start:    int64(e.FirstLBA) * int64(ss),
		Size:     int64(e.LastLBA-e.FirstLBA+1) * int64(ss),
		Type:     typ,
		TypeName: gptTypeName(typ),
		Name:     gptName(e.Name),
		GUID:     guidString(e.UniqueGUID),
		Bootable: e.Attributes.bootable(),
	}, true
}

// gptName decodes a NUL-padded UTF-16LE name.
func gptName(n [36]uint16) string {
	end := 0
	for end < len(n) && n[end] != 0 {
		end++
	}
	return string(utf16.Decode(n[:end]))
}

// reserveGPT records the GPT's own bytes: everything before the first
// usable LBA and after the last (protective MBR, both headers and, where
// they normally sit, both entry arrays), and the array of the copy used
// wherever it is. The header fields were bounded by validHeader; the
// usable range is clamped to the disk.
func (s *scan) reserveGPT(c *gptCopy, ss int, lbas uint64) {
	sz := int64(ss)
	first := min(c.hdr.FirstUsable, lbas)
	last := min(c.hdr.LastUsable, lbas-1)
	s.t.reserve(0, max(int64(first), 2)*sz, "GPT before the first usable LBA")
	if last+1 < lbas {
		s.t.reserve(int64(last+1)*sz, int64(lbas)*sz, "GPT after the last usable LBA")
	}
	arr := int64(c.hdr.EntriesLBA) * sz
	s.t.reserve(arr, arr+int64(len(c.entries)), "GPT entry array")
}
