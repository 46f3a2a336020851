// Package partition reads MBR (with the EBR chain of logical partitions)
// and GPT partition tables from any io.ReaderAt, recognises filesystems and
// other signatures at the start of a partition (Identify), and gives a
// partition as a bounded Section of the disk that a write can never leave.
//
// Every number read from the disk is bounded before it is used: an EBR
// chain is walked with a visited set and at most 128 records and may not
// leave its extended partition; a GPT header must pass its CRC, name its own
// LBA, and claim an entry array of 128-4096-byte entries, at most 4 MiB,
// inside the disk and clear of the header, before a byte of that array is
// allocated. A corrupt primary GPT falls back to the backup at the last LBA
// (with a warning); an I/O error never does. Oddities that leave the table
// usable (a partition past the disk end, a backup GPT out of place, a
// hybrid MBR) are reported in Table.Warnings, and Table.Open refuses to
// open a partition that does not fit in the disk.
//
// Why not go-diskfs: the module depends on github.com/diskfs/go-diskfs
// v1.9.4, whose partition/gpt reader was examined and not used here. It
// allocates the entry array as NumEntries*EntrySize straight from the
// header (a CRC-valid header claiming 2^32 entries asks for terabytes, and
// on 32-bit int the product wraps), steps through the array by an
// unchecked EntrySize, decodes only 128-byte entries, needs a seekable
// backend.File rather than an io.ReaderAt, and does not check that an
// entry's last LBA follows its first. Validating the header first is not
// enough to make it safe, because a primary that is CRC-valid but hostile
// would still be handed to it, and it cannot be told to use the backup
// instead; the validation needed is most of a parser anyway. Its MBR reader
// sees primaries only. Hence this small, bounded parser of our own.
//
// Layout (layout.go, layout_gpt.go) is kept apart from the parsing
// mechanism (mbr.go, gpt.go, read.go) and from signature sniffing
// (identify.go, identify_probes.go).
package partition
