package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"

	"github.com/guestinject/guestinject/errs"
)

// ErrCannotGrow: the partition cannot be extended to the end of the disk
// (another partition lies after it, the table is a kind Grow does not
// rewrite, the disk is smaller than the table says). Nothing was written.
var ErrCannotGrow = errs.New(errs.ErrUnsupported, "partition cannot grow")

// growFudge is the least growth worth a rewrite, as cloud-utils' growpart
// judges it (GROWPART_FUDGE, 1 MiB): less is reported as no change.
const growFudge = 1 << 20

// gptSecondSize is the space growpart leaves at the end of the disk for a
// backup GPT (header and a 128-entry array, in 512-byte sectors), on MBR
// disks too, so that they can be converted to GPT later.
const gptSecondSize = 33

// mbrMaxEnd is the last LBA an MBR entry can reach, as growpart caps it.
const mbrMaxEnd = 1 << 32

// Growth describes extending one partition to the end of the disk.
type Growth struct {
	Number  int
	Start   int64 // bytes
	OldSize int64 // bytes
	NewSize int64 // bytes; equal to OldSize when there is nothing to gain
	// Why says, when NewSize == OldSize, why nothing changes.
	Why string
}

// Changed reports whether the partition grows.
func (g Growth) Changed() bool { return g.NewSize > g.OldSize }

// ReadWriterAt is a disk Grow can rewrite.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// PlanGrow works out how far partition number can grow: to the end of the
// disk the table was read from (less the backup GPT's place, and the 33
// sectors growpart leaves on an MBR disk), when no partition lies after
// it. It refuses (ErrCannotGrow, saying what is in the way) a partition
// that is not the last one, an extended partition, a hybrid MBR and a GPT
// read from its backup. Growth of less than 1 MiB is no change.
func (t *Table) PlanGrow(number int) (Growth, error) {
	p, err := t.Partition(number)
	if err != nil {
		return Growth{}, err
	}
	g := Growth{Number: number, Start: p.Start, OldSize: p.Size, NewSize: p.Size}
	refuse := func(format string, args ...any) (Growth, error) {
		return g, &Error{Where: fmt.Sprintf("partition %d", number), LBA: -1, Offset: p.Start, Msg: fmt.Sprintf(format, args...), Err: ErrCannotGrow}
	}
	switch {
	case t.Scheme == SchemeNone:
		return refuse("the disk has no partition table")
	case p.Extended:
		return refuse("it is an extended partition; name the logical partition to grow")
	case t.Hybrid:
		return refuse("the disk has a hybrid MBR, whose entries would also have to change")
	case p.End() > t.DiskSize:
		return refuse("it already ends past the end of the %d-byte disk", t.DiskSize)
	}
	if after := t.after(p); len(after) > 0 {
		return refuse("%s; it would have to move first", after)
	}
	ss := int64(t.SectorSize)
	lbas := t.DiskSize / ss
	maxEnd := lbas - gptSecondSize - 1 // inclusive, in sectors
	if t.Scheme == SchemeMBR {
		maxEnd = min(maxEnd, mbrMaxEnd*512/ss)
		maxEnd = min(maxEnd, p.Start/ss+0xFFFFFFFF-1)
		if p.Logical {
			maxEnd = min(maxEnd, t.extendedOf(p).Start/ss+0xFFFFFFFF-1)
		}
	} else {
		hdrEnd, err := t.gptLastUsable()
		if err != nil {
			return g, err
		}
		maxEnd = min(maxEnd, hdrEnd)
	}
	end := p.End()/ss - 1
	switch {
	case maxEnd < end:
		return refuse("it ends at LBA %d, past the last usable LBA %d of the disk (shrinking is not supported)", end, maxEnd)
	case (maxEnd-end)*ss < growFudge:
		g.Why = fmt.Sprintf("only %d bytes free after it (less than 1 MiB)", (maxEnd-end)*ss)
		return g, nil
	}
	g.NewSize = (maxEnd + 1 - p.Start/ss) * ss
	return g, nil
}

// growIndex answers PlanGrow and SpaceAfter for any partition without a
// scan of the table (inspect asks for each of up to 32768 partitions).
type growIndex struct {
	n     int
	order []int // partitions with a size, by start
	top   []int // the (up to) three partitions reaching furthest, furthest first
}

func (t *Table) growIx() *growIndex {
	if t.gix != nil && t.gix.n == len(t.Partitions) {
		return t.gix
	}
	ix := &growIndex{n: len(t.Partitions)}
	ps := t.Partitions
	for i, q := range ps {
		if q.Size <= 0 {
			continue
		}
		ix.order = append(ix.order, i)
		ix.top = append(ix.top, i)
		sort.SliceStable(ix.top, func(a, b int) bool { return ps[ix.top[a]].End() > ps[ix.top[b]].End() })
		if len(ix.top) > 3 {
			ix.top = ix.top[:3]
		}
	}
	sort.SliceStable(ix.order, func(a, b int) bool { return ps[ix.order[a]].Start < ps[ix.order[b]].Start })
	t.gix = ix
	return ix
}

// counts tells whether q counts as lying after p: any partition but p and,
// for a logical p, the extended partition holding it.
func countsAfter(p, q Partition) bool {
	return q.Number != p.Number && !(q.Extended && p.Logical && q.Start <= p.Start && p.End() <= q.End())
}

// after describes the partitions lying after p, for PlanGrow's refusal;
// empty when p is the last.
func (t *Table) after(p Partition) string {
	ix, ps := t.growIx(), t.Partitions
	last := true
	for _, i := range ix.top {
		if countsAfter(p, ps[i]) {
			last = ps[i].End() <= p.End()
			break
		}
	}
	if last {
		return ""
	}
	k := sort.Search(len(ix.order), func(k int) bool { return ps[ix.order[k]].Start >= p.End() })
	var in []Partition
	for ; k < len(ix.order); k++ {
		if q := ps[ix.order[k]]; countsAfter(p, q) {
			in = append(in, q)
		}
		if len(in) == 4 {
			break
		}
	}
	if len(in) == 0 { // only partitions overlapping p reach past it
		for _, i := range ix.top {
			if q := ps[i]; countsAfter(p, q) && q.End() > p.End() {
				in = append(in, q)
				break
			}
		}
	}
	var b bytes.Buffer
	for i, q := range in {
		if i == 3 {
			b.WriteString(" and more")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		name := q.TypeName
		if name == "" {
			name = q.Type
		}
		fmt.Fprintf(&b, "partition %d (%s, bytes %d-%d) lies after it", q.Number, name, q.Start, q.End())
	}
	return b.String()
}

// extendedOf is the extended partition holding logical partition p.
func (t *Table) extendedOf(p Partition) Partition {
	for _, q := range t.Partitions {
		if q.Extended && q.Start <= p.Start && p.End() <= q.End() {
			return q
		}
	}
	return Partition{}
}

// gptLastUsable is the last usable LBA once the backup GPT sits at the end
// of the disk: before its entry array and header.
func (t *Table) gptLastUsable() (int64, error) {
	h, err := t.primaryGPTHeader()
	if err != nil {
		return 0, err
	}
	lbas := uint64(t.DiskSize / int64(t.SectorSize))
	sectors := (uint64(h.NumEntries)*uint64(h.EntrySize) + uint64(t.SectorSize) - 1) / uint64(t.SectorSize)
	if lbas < sectors+3 {
		return 0, &Error{Where: "gpt", LBA: -1, Offset: -1, Msg: "disk too small for a backup GPT", Err: ErrCannotGrow}
	}
	return int64(lbas - 2 - sectors), nil
}

// primaryGPTHeader is the stored header; it is set by Read only when the
// primary GPT was valid.
func (t *Table) primaryGPTHeader() (*gptHeader, error) {
	if t.gptPrimary == nil {
		return nil, &Error{Where: "gpt primary header", LBA: 1, Offset: int64(t.SectorSize), Err: ErrCannotGrow,
			Msg: "the table was read from the backup GPT; repair the primary first (sgdisk -e or gdisk)"}
	}
	return t.gptPrimary, nil
}

// FreeAfter is the space after partition number that growing it could
// use: up to the next partition or the end of the usable disk; 0 when
// another partition ends after it or the table cannot be grown.
func (t *Table) FreeAfter(number int) int64 {
	g, err := t.PlanGrow(number)
	if err != nil {
		return 0
	}
	return g.NewSize - g.OldSize
}

// SpaceAfter is the unpartitioned space after partition number: up to the
// next partition's start, or to where growpart would end a partition on
// this disk (its last 33 sectors kept for a backup GPT); 0 when none.
func (t *Table) SpaceAfter(number int) int64 {
	p, err := t.Partition(number)
	if err != nil || t.Scheme == SchemeNone || p.Size <= 0 {
		return 0
	}
	limit := (t.DiskSize/int64(t.SectorSize) - gptSecondSize) * int64(t.SectorSize)
	ix, ps := t.growIx(), t.Partitions
	k := sort.Search(len(ix.order), func(k int) bool { return ps[ix.order[k]].Start >= p.End() })
	for ; k < len(ix.order); k++ {
		if q := ps[ix.order[k]]; countsAfter(p, q) {
			limit = min(limit, q.Start)
			break
		}
	}
	return max(limit-p.End(), 0)
}

// Grow extends partition number as PlanGrow planned, writing the table
// through disk (the disk the table was read from, now DiskSize bytes), and
// returns the table read again. A GPT gets its backup header and entry
// array moved to the last sectors, both CRCs recomputed, the primary's
// last usable and backup LBAs updated and the protective MBR entry
// stretched; an MBR the primary entry, or the extended partition and the
// EBR of its last logical one. Nothing is written when the plan refuses
// or there is nothing to gain.
func (t *Table) Grow(disk ReadWriterAt, number int) (Growth, *Table, error) {
	g, err := t.PlanGrow(number)
	if err != nil || !g.Changed() {
		return g, t, err
	}
	p, _ := t.Partition(number)
	switch t.Scheme {
	case SchemeGPT:
		err = t.growGPT(disk, p, g)
	case SchemeMBR:
		err = t.growMBR(disk, p, g)
	}
	if err != nil {
		return g, t, err
	}
	nt, err := ReadOptions(disk, t.DiskSize, Options{SectorSize: t.SectorSize})
	if err != nil {
		return g, t, fmt.Errorf("reading the grown table: %w", err)
	}
	return g, nt, nil
}

// growGPT rewrites both GPT copies with partition p ending where g says.
func (t *Table) growGPT(disk ReadWriterAt, p Partition, g Growth) error {
	ss := t.SectorSize
	s := &scan{r: disk, size: t.DiskSize, t: &Table{}}
	prim, err := s.loadGPT(ss, 1, "gpt primary")
	if err != nil {
		return err
	}
	hdrSector, err := s.read("gpt primary header", int64(ss), ss)
	if err != nil {
		return err
	}
	h := prim.hdr
	es := int(h.EntrySize)
	i := p.Number - 1
	if i < 0 || i >= int(h.NumEntries) {
		return &Error{Where: "gpt primary entries", LBA: -1, Offset: -1, Msg: fmt.Sprintf("no entry %d", p.Number), Err: ErrCorrupt}
	}
	lbas := uint64(t.DiskSize / int64(ss))
	sectors := (uint64(len(prim.entries)) + uint64(ss) - 1) / uint64(ss)
	oldAlt := h.AlternateLBA
	entries := append([]byte(nil), prim.entries...)
	binary.LittleEndian.PutUint64(entries[i*es+0x28:], uint64((g.Start+g.NewSize)/int64(ss)-1))
	h.EntriesCRC = crc32.ChecksumIEEE(entries)
	h.LastUsable = lbas - 2 - sectors
	h.AlternateLBA = lbas - 1
	primHdr := encodeHeader(hdrSector, &h)

	b := h
	b.MyLBA, b.AlternateLBA, b.EntriesLBA = lbas-1, 1, lbas-1-sectors
	backHdr := encodeHeader(hdrSector, &b)

	arr := make([]byte, sectors*uint64(ss))
	copy(arr, entries)
	w := &writer{d: disk}
	// The backup first, the primary last: a crash in between leaves a
	// valid primary describing the old layout.
	w.at("gpt backup entries", arr, int64(b.EntriesLBA)*int64(ss))
	w.at("gpt backup header", backHdr, int64(b.MyLBA)*int64(ss))
	w.at("gpt primary entries", arr[:len(entries)], int64(h.EntriesLBA)*int64(ss))
	w.at("gpt primary header", primHdr, int64(ss))
	if oldAlt != lbas-1 && oldAlt > prim.hdr.LastUsable && oldAlt < lbas-1-sectors {
		// The old backup header now lies inside the grown partition:
		// clear it, so no tool takes it for a table.
		w.at("old gpt backup header", make([]byte, ss), int64(oldAlt)*int64(ss))
	}
	if w.err == nil {
		w.err = t.stretchProtective(disk, lbas)
	}
	return w.err
}

// encodeHeader returns the header sector sector with h's fields and its
// CRC recomputed (bytes past the 92 defined ones are kept).
func encodeHeader(sector []byte, h *gptHeader) []byte {
	out := append([]byte(nil), sector...)
	h.HeaderCRC = 0
	if _, err := binary.Encode(out, binary.LittleEndian, h); err != nil {
		panic(err) // out is a whole sector, longer than the header
	}
	h.HeaderCRC = headerCRC(out[:h.HeaderSize])
	binary.LittleEndian.PutUint32(out[0x10:], h.HeaderCRC)
	return out
}

// stretchProtective makes the protective MBR entry cover the grown disk.
func (t *Table) stretchProtective(disk ReadWriterAt, lbas uint64) error {
	s := &scan{r: disk, size: t.DiskSize, t: &Table{}}
	b, err := s.read("mbr", 0, mbrSectorSize)
	if err != nil {
		return err
	}
	var m mbrSector
	if err := decode(b, &m); err != nil {
		return err
	}
	for i, e := range m.Entries {
		if e.Type != mbrTypeGPTProtect || e.LBAFirst != 1 {
			continue
		}
		n := uint32(min(lbas-1, 0xFFFFFFFF))
		if e.Sectors == n {
			return nil
		}
		off := 0x1BE + 16*i
		binary.LittleEndian.PutUint32(b[off+0x0C:], n)
		copy(b[off+5:off+8], chs(uint64(n)))
		w := &writer{d: disk}
		w.at("protective mbr", b, 0)
		return w.err
	}
	return nil
}

// growMBR rewrites the MBR entry of a primary partition, or the extended
// partition's entry and the EBR of its last logical partition.
func (t *Table) growMBR(disk ReadWriterAt, p Partition, g Growth) error {
	ss := int64(t.SectorSize)
	s := &scan{r: disk, size: t.DiskSize, t: &Table{}}
	mbr, err := s.read("mbr", 0, mbrSectorSize)
	if err != nil {
		return err
	}
	var m mbrSector
	if err := decode(mbr, &m); err != nil {
		return err
	}
	end := uint64((g.Start+g.NewSize)/ss) - 1 // inclusive LBA
	setEntry := func(sector []byte, i int, base uint64) {
		off := 0x1BE + 16*i
		first := uint64(binary.LittleEndian.Uint32(sector[off+8:]))
		binary.LittleEndian.PutUint32(sector[off+0x0C:], uint32(end+1-base-first))
		copy(sector[off+5:off+8], chs(end))
	}
	target := p
	if p.Logical {
		target = t.extendedOf(p)
	}
	prim := -1
	for i, e := range m.Entries {
		if e.used() && int64(e.LBAFirst)*ss == target.Start && int64(e.Sectors)*ss == target.Size {
			prim = i
			break
		}
	}
	if prim < 0 {
		return &Error{Where: "mbr", LBA: 0, Offset: 0, Msg: fmt.Sprintf("no entry holds partition %d", target.Number), Err: ErrCorrupt}
	}
	w := &writer{d: disk}
	if p.Logical {
		ebrLBA, ebr, err := s.findEBR(m.Entries[prim], p, int(ss))
		if err != nil {
			return err
		}
		setEntry(ebr, 0, ebrLBA)
		// The logical partition first: it stays inside the old extended
		// partition only once that has grown, but a crash between the
		// two writes leaves an EBR Linux still reads.
		setEntry(mbr, prim, 0)
		w.at("mbr", mbr, 0)
		w.at("ebr", ebr, int64(ebrLBA)*ss)
		return w.err
	}
	setEntry(mbr, prim, 0)
	w.at("mbr", mbr, 0)
	return w.err
}

// findEBR walks the EBR chain of extended partition ext to the EBR whose
// first entry is logical partition p, and returns its LBA and sector.
func (s *scan) findEBR(ext mbrEntry, p Partition, ss int) (uint64, []byte, error) {
	start := uint64(ext.LBAFirst)
	cur := start
	for range maxLogical {
		b, err := s.read("ebr", int64(cur)*int64(ss), mbrSectorSize)
		if err != nil {
			return 0, nil, err
		}
		var m mbrSector
		if err := decode(b, &m); err != nil {
			return 0, nil, err
		}
		if e := m.Entries[0]; e.used() && int64(cur+uint64(e.LBAFirst))*int64(ss) == p.Start {
			return cur, b, nil
		}
		link := m.Entries[1]
		if !link.used() {
			break
		}
		cur = start + uint64(link.LBAFirst)
	}
	return 0, nil, &Error{Where: "ebr", LBA: -1, Offset: p.Start, Msg: fmt.Sprintf("no EBR holds partition %d", p.Number), Err: ErrCorrupt}
}

// chs encodes the CHS address of lba as fdisk does (255 heads, 63
// sectors), or 1023/254/63 past what CHS can address.
func chs(lba uint64) []byte {
	const heads, spt = 255, 63
	c, h, s := lba/(heads*spt), (lba/spt)%heads, lba%spt+1
	if c > 1023 {
		c, h, s = 1023, 254, 63
	}
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

// writer keeps the first write error.
type writer struct {
	d   io.WriterAt
	err error
}

func (w *writer) at(what string, b []byte, off int64) {
	if w.err != nil {
		return
	}
	if n, err := w.d.WriteAt(b, off); err != nil || n != len(b) {
		if err == nil {
			err = io.ErrShortWrite
		}
		w.err = &Error{Where: what, LBA: -1, Offset: off, Msg: "write failed", Err: err}
	}
}
