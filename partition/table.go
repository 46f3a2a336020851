package partition

import (
	"fmt"
	"io"
	"sort"
)

// Scheme names the kind of partition table found on a disk.
type Scheme string

// The schemes Read reports.
const (
	SchemeMBR  Scheme = "mbr"
	SchemeGPT  Scheme = "gpt"
	SchemeNone Scheme = "none" // no table: empty, or one filesystem on the whole disk
)

// Partition is one entry of a partition table, in bytes.
type Partition struct {
	// Number as Linux numbers it: MBR primaries 1-4, logicals 5 and up,
	// GPT entry index + 1; 0 for the whole-disk pseudo-partition.
	Number   int
	Start    int64  // byte offset on the disk
	Size     int64  // bytes
	Type     string // MBR type byte ("0x83") or GPT type GUID (upper case)
	TypeName string // "Linux", "Linux filesystem", "EFI System", "Extended", ...
	Name     string // GPT partition name
	GUID     string // GPT unique partition GUID
	Bootable bool   // MBR active flag or GPT legacy BIOS bootable attribute
	Logical  bool   // an MBR logical partition (inside an extended one)
	Extended bool   // an MBR extended partition (a container, not a filesystem)
}

// End is the byte offset just past the partition.
func (p Partition) End() int64 { return p.Start + p.Size }

// Table is what Read found on a disk.
type Table struct {
	Scheme     Scheme
	SectorSize int    // logical sector size the table was read with: 512 or 4096
	DiskGUID   string // GPT disk GUID, or the MBR disk identifier as "0x1234abcd"
	DiskSize   int64  // size of the disk Read was given, in bytes
	Partitions []Partition
	// Warnings lists oddities that did not stop reading, e.g. "primary
	// GPT header corrupt, used backup" or a partition past the disk end.
	Warnings []string
	// Hybrid is set for a GPT disk whose MBR holds other partitions beside
	// the protective 0xEE entry; the GPT is what Read reports.
	Hybrid bool

	// reserved lists the bytes the table itself occupies (MBR, EBRs, GPT
	// headers and entry arrays); Open refuses a partition overlapping them.
	reserved []span
	// index is built by Read once the partitions are known, so that
	// Partition and Open cost the same for the 1st and the 32768th entry.
	index *tableIndex
	// dropped counts the warnings past maxWarnings.
	dropped int
	// gptPrimary is the primary GPT header, when it was valid (Grow
	// rewrites from it).
	gptPrimary *gptHeader
	// gix indexes the partitions for growth questions (grow.go).
	gix *growIndex
}

// tableIndex answers Partition and Open's overlap check without scanning
// every partition: a GPT may hold 32768 of them, and a scan per Open made
// opening them all quadratic.
type tableIndex struct {
	n     int         // len(Partitions) when built
	at    map[int]int // partition number -> index of its first entry
	clash []int       // per entry: the number of a partition sharing bytes with it, or -1
}

// buildIndex indexes the partitions by number and finds, in one pass over
// them sorted by start, each data partition that shares bytes with another.
func (t *Table) buildIndex() {
	ix := &tableIndex{n: len(t.Partitions), at: make(map[int]int, len(t.Partitions)), clash: make([]int, len(t.Partitions))}
	var order []int // data partitions: not extended, not empty
	for i, p := range t.Partitions {
		if _, dup := ix.at[p.Number]; !dup {
			ix.at[p.Number] = i
		}
		ix.clash[i] = -1
		if !p.Extended && p.Size > 0 {
			order = append(order, i)
		}
	}
	ps := t.Partitions
	sort.SliceStable(order, func(a, b int) bool { return ps[order[a]].Start < ps[order[b]].Start })
	// In start order, partition i shares bytes with another exactly when
	// one before it reaches past its start (the furthest reaching one is
	// kept), or the next one starts before its end.
	reach, reacher := int64(0), -1
	for k, i := range order {
		p := ps[i]
		switch {
		case reacher >= 0 && reach > p.Start:
			ix.clash[i] = ps[reacher].Number
		case k+1 < len(order) && ps[order[k+1]].Start < p.End():
			ix.clash[i] = ps[order[k+1]].Number
		}
		if reacher < 0 || p.End() > reach {
			reach, reacher = p.End(), i
		}
	}
	t.index = ix
}

// lookup returns the index of partition number through the index, or -1
// when there is none or the table was changed since it was built (then
// the callers scan, as for a Table not made by Read).
func (t *Table) lookup(number int) int {
	ix := t.index
	if ix == nil || ix.n != len(t.Partitions) {
		return -1
	}
	i, ok := ix.at[number]
	if !ok || t.Partitions[i].Number != number {
		return -1
	}
	return i
}

// span is a byte range [start, end) holding partition table metadata.
type span struct {
	start, end int64
	what       string
}

func (t *Table) reserve(start, end int64, format string, args ...any) {
	t.reserved = append(t.reserved, span{start, end, fmt.Sprintf(format, args...)})
}

// Partition returns the partition with the given number.
func (t *Table) Partition(number int) (Partition, error) {
	if i := t.lookup(number); i >= 0 {
		return t.Partitions[i], nil
	}
	for _, p := range t.Partitions {
		if p.Number == number {
			return p, nil
		}
	}
	return Partition{}, notFound(number)
}

func notFound(number int) error {
	return &Error{Where: "table", LBA: -1, Offset: -1, Msg: fmt.Sprintf("partition %d", number), Err: ErrNotFound}
}

// Open returns the section of disk holding partition number. It refuses an
// extended partition (a container of EBRs), a partition that does not lie
// wholly inside the disk (ErrOutOfRange), and one that overlaps the
// partition table or another partition (ErrCorrupt), so a write through
// the section can reach nothing but the partition's own bytes.
func (t *Table) Open(disk io.ReaderAt, number int) (*Section, error) {
	p, err := t.Partition(number)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("partition %d", number)
	if p.Extended {
		return nil, &Error{Where: where, LBA: -1, Offset: p.Start, Msg: "extended partition holds EBRs, not a filesystem", Err: ErrUnsupported}
	}
	if p.Start < 0 || p.Size <= 0 || p.Start > t.DiskSize || p.Size > t.DiskSize-p.Start {
		return nil, &Error{Where: where, LBA: -1, Offset: p.Start,
			Msg: fmt.Sprintf("%d bytes at offset %d do not fit in the %d-byte disk", p.Size, p.Start, t.DiskSize), Err: ErrOutOfRange}
	}
	if err := t.checkClear(p); err != nil {
		return nil, err
	}
	return NewSection(disk, p.Start, p.Size), nil
}

// checkClear refuses a partition that shares bytes with the partition
// table or with another partition: writing through it would corrupt them.
func (t *Table) checkClear(p Partition) error {
	where := fmt.Sprintf("partition %d", p.Number)
	for _, r := range t.reserved {
		if p.Start < r.end && r.start < p.End() {
			return &Error{Where: where, LBA: -1, Offset: p.Start,
				Msg: fmt.Sprintf("overlaps the %s at bytes %d-%d", r.what, r.start, r.end), Err: ErrCorrupt}
		}
	}
	if i := t.lookup(p.Number); i >= 0 && t.Partitions[i] == p {
		if q := t.index.clash[i]; q >= 0 {
			return &Error{Where: where, LBA: -1, Offset: p.Start, Msg: fmt.Sprintf("overlaps partition %d", q), Err: ErrCorrupt}
		}
		return nil
	}
	for _, q := range t.Partitions {
		if q.Number != p.Number && !q.Extended && q.Size > 0 && p.Start < q.End() && q.Start < p.End() {
			return &Error{Where: where, LBA: -1, Offset: p.Start,
				Msg: fmt.Sprintf("overlaps partition %d", q.Number), Err: ErrCorrupt}
		}
	}
	return nil
}

// maxWarnings bounds the warnings one table carries: a hostile GPT can
// give each of its 32768 entries a reason for one. The first maxWarnings
// are kept and a last one counts the rest.
const maxWarnings = 64

func (t *Table) warnf(format string, args ...any) {
	if len(t.Warnings) < maxWarnings {
		t.Warnings = append(t.Warnings, fmt.Sprintf(format, args...))
		return
	}
	t.dropped++
}

// closeWarnings adds the count of the warnings warnf dropped.
func (t *Table) closeWarnings() {
	if t.dropped > 0 {
		t.Warnings = append(t.Warnings, fmt.Sprintf("and %d more warnings", t.dropped))
	}
}
