package partition

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Signature names what Identify found at the start of a partition.
type Signature struct {
	// Kind is "ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "ntfs",
	// "swap", "lvm2", "iso9660" or "luks"; "" when nothing is recognised.
	Kind  string
	Label string
	UUID  string
}

// Identify sniffs the start of a partition of size bytes for a filesystem,
// swap, LVM or LUKS signature. It reads a few small blocks (the furthest is
// the btrfs superblock at 64 KiB), never the whole partition. An I/O error
// is returned; an unrecognised partition is a zero Signature and no error.
func Identify(r io.ReaderAt, size int64) (Signature, error) {
	p := &probe{r: r, size: size}
	// Most probes look into the first 4 KiB: one read serves them all (a
	// 32768-partition GPT is identified with one read per partition, not
	// eight).
	if size > 0 {
		p.head = p.at(0, int(min(size, probeHeadSize)))
	}
	for _, f := range probers {
		sig, ok := f(p)
		if p.err != nil {
			return Signature{}, p.err
		}
		if ok {
			return sig, nil
		}
	}
	return Signature{}, nil
}

// probers are tried in order; the ones whose magic sits at offset 0 or in
// the first sectors come before those that also tolerate a boot sector.
var probers = []func(*probe) (Signature, bool){
	probeLUKS, probeLVM2, probeXFS, probeExt, probeBtrfs, probeISO9660, probeNTFS, probeVFAT, probeSwap,
}

// probeHeadSize is how much of the partition's start Identify reads at
// once for the probes looking there.
const probeHeadSize = 4096

// probe reads small pieces of a partition, remembering the first I/O error.
type probe struct {
	r    io.ReaderAt
	size int64
	head []byte // the partition's first bytes, read once
	err  error
}

// at returns n bytes at off, or nil when they lie past the partition end
// or a read failed (then p.err is set).
func (p *probe) at(off int64, n int) []byte {
	if p.err != nil || off < 0 || off > p.size-int64(n) {
		return nil
	}
	if off+int64(n) <= int64(len(p.head)) {
		return p.head[off : off+int64(n) : off+int64(n)]
	}
	b := make([]byte, n)
	got, err := p.r.ReadAt(b, off)
	if got == n {
		return b
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	p.err = &Error{Where: "identify", LBA: -1, Offset: off, Msg: "read failed", Err: err}
	return nil
}

// cstring trims a fixed-size, NUL or space padded label.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " ")
}

// uuidString formats 16 bytes in big-endian 8-4-4-4-12 lower-case form, as
// blkid prints filesystem UUIDs.
func uuidString(u []byte) string {
	if bytes.Equal(u, make([]byte, 16)) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
