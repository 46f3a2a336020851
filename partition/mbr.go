package partition

import (
	"fmt"
)

// maxLogical bounds the logical partitions read from one EBR chain (Linux
// itself stops at a few dozen); with the visited set it guarantees that a
// looping or endless chain ends.
const maxLogical = 128

// validMBR tells whether sector 0 looks like an MBR: the 0x55AA signature
// and, as Linux requires, every status byte 0x00 or 0x80 (a FAT or NTFS
// boot sector has code there instead).
func validMBR(m *mbrSector) bool {
	if m.Signature != mbrSignature {
		return false
	}
	for _, e := range m.Entries {
		if e.Status != 0 && e.Status != 0x80 {
			return false
		}
	}
	return true
}

func hasProtective(m *mbrSector) bool {
	for _, e := range m.Entries {
		if e.used() && e.Type == mbrTypeGPTProtect {
			return true
		}
	}
	return false
}

// isHybrid: a protective entry plus other partitions.
func isHybrid(m *mbrSector) bool {
	for _, e := range m.Entries {
		if e.used() && e.Type != mbrTypeGPTProtect {
			return true
		}
	}
	return false
}

func anyUsed(m *mbrSector) bool {
	for _, e := range m.Entries {
		if e.used() {
			return true
		}
	}
	return false
}

// looksLikeBootSector tells a FAT or NTFS boot sector on the whole disk
// from an MBR whose status bytes happen to be valid.
func looksLikeBootSector(b []byte) bool {
	return isNTFS(b) || isFAT(b)
}

// readMBR fills the table from an MBR and the EBR chains of its extended
// partitions.
func (s *scan) readMBR(m *mbrSector, o Options) error {
	t := s.t
	t.Scheme = SchemeMBR
	t.DiskGUID = fmt.Sprintf("0x%08x", m.DiskSig)
	t.SectorSize = o.SectorSize
	if t.SectorSize == 0 {
		t.SectorSize = s.guessMBRSectorSize(m)
	}
	t.reserve(0, mbrSectorSize, "MBR")
	next := 5
	for i, e := range m.Entries {
		if !e.used() {
			continue
		}
		p := mbrPartition(e, i+1, 0, t.SectorSize)
		t.Partitions = append(t.Partitions, p)
		s.checkBounds(p)
	}
	// Logical partitions follow the primaries, as Linux numbers them.
	for _, e := range m.Entries {
		if e.used() && isExtended(e.Type) {
			if err := s.walkEBR(e, &next); err != nil {
				return err
			}
		}
	}
	return nil
}

// mbrPartition converts an entry whose LBAs count from base.
func mbrPartition(e mbrEntry, number int, base uint64, ss int) Partition {
	start := (base + uint64(e.LBAFirst)) * uint64(ss)
	return Partition{
		Number:   number,
		Start:    int64(start), // < 2^34 sectors * 4096: no overflow
		Size:     int64(e.Sectors) * int64(ss),
		Type:     fmt.Sprintf("0x%02x", e.Type),
		TypeName: mbrTypeName(e.Type),
		Bootable: e.Status == 0x80,
		Extended: isExtended(e.Type),
	}
}

// walkEBR follows the chain of extended boot records of one extended
// partition. In each EBR the first entry is a logical partition, relative
// to that EBR; the second links to the next EBR, relative to the start of
// the extended partition. A link that leaves the extended partition, a
// loop, or more than maxLogical records is ErrCorrupt.
func (s *scan) walkEBR(ext mbrEntry, next *int) error {
	ss := s.t.SectorSize
	extStart := uint64(ext.LBAFirst)
	extEnd := extStart + uint64(ext.Sectors)
	visited := map[uint64]bool{extStart: true}
	for cur := extStart; ; {
		link, done, err := s.readEBR(cur, next)
		if err != nil || done {
			return err
		}
		nxt := extStart + uint64(link.LBAFirst)
		switch {
		case nxt >= extEnd:
			return corrupt("ebr", int64(cur), ss, "link to LBA %d lies outside the extended partition (LBA %d-%d)", nxt, extStart, extEnd-1)
		case visited[nxt]:
			return corrupt("ebr", int64(cur), ss, "link to LBA %d loops back to an EBR already read", nxt)
		case len(visited) >= maxLogical:
			return corrupt("ebr", int64(cur), ss, "more than %d extended boot records in the chain", maxLogical)
		}
		visited[nxt] = true
		cur = nxt
	}
}

// readEBR reads the EBR at lba, adds its logical partition and returns the
// link entry; done reports the end of the chain.
func (s *scan) readEBR(lba uint64, next *int) (link mbrEntry, done bool, err error) {
	ss := s.t.SectorSize
	off := int64(lba) * int64(ss)
	b, err := s.read("ebr", off, mbrSectorSize)
	if isCorrupt(err) {
		s.t.warnf("EBR at LBA %d lies beyond the end of the disk; logical partitions after it are not read", lba)
		return link, true, nil
	}
	if err != nil {
		return link, true, err
	}
	var m mbrSector
	if err := decode(b, &m); err != nil {
		return link, true, err
	}
	if m.Signature != mbrSignature {
		s.t.warnf("EBR at LBA %d has no 0x55AA signature; logical partitions after it are not read", lba)
		return link, true, nil
	}
	s.t.reserve(off, off+mbrSectorSize, "EBR at LBA %d", lba)
	if e := m.Entries[0]; e.used() && !isExtended(e.Type) {
		p := mbrPartition(e, *next, lba, ss)
		p.Logical = true
		*next++
		s.t.Partitions = append(s.t.Partitions, p)
		s.checkBounds(p)
	}
	link = m.Entries[1]
	if !link.used() {
		return link, true, nil
	}
	if !isExtended(link.Type) {
		s.t.warnf("EBR at LBA %d links with type 0x%02x, not an extended type; chain ends", lba, link.Type)
		return link, true, nil
	}
	return link, false, nil
}

// guessMBRSectorSize picks 4096 only when the partitions' contents say so:
// more filesystem signatures (or EBRs) at the 4096-byte offsets than at the
// 512-byte ones.
func (s *scan) guessMBRSectorSize(m *mbrSector) int {
	if s.mbrScore(m, 4096) > s.mbrScore(m, 512) {
		s.t.warnf("MBR read with 4096-byte sectors: filesystems were found at those offsets")
		return 4096
	}
	return 512
}

// mbrScore counts the partitions whose contents are recognised when the
// MBR is read with ss-byte sectors; -1 if a partition would then end past
// the disk.
func (s *scan) mbrScore(m *mbrSector, ss int64) int {
	score := 0
	for _, e := range m.Entries {
		if !e.used() {
			continue
		}
		start := int64(e.LBAFirst) * ss
		if start+int64(e.Sectors)*ss > s.size {
			return -1
		}
		if isExtended(e.Type) {
			if b, err := s.read("ebr", start, mbrSectorSize); err == nil && [2]byte(b[510:512]) == mbrSignature {
				score++
			}
			continue
		}
		size := min(int64(e.Sectors)*ss, s.size-start)
		if sig, err := Identify(NewSection(s.r, start, size), size); err == nil && sig.Kind != "" {
			score++
		}
	}
	return score
}
