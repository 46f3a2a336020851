package xfs

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/guestinject/guestinject/vfs"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// bufKind says what a metadata buffer holds, and so where commit stamps
// its v5 LSN and CRC32c.
type bufKind uint8

const (
	kindRaw        bufKind = iota // file data, or anything without a v5 header
	kindSuper                     // superblock sector
	kindAGF                       // AGF sector
	kindAGI                       // AGI sector
	kindAGFL                      // AGFL sector
	kindShortBtree                // a per-AG btree block (free space, inodes)
	kindLongBtree                 // a bmap btree block
	kindInode                     // one inode
	kindRemote                    // a remote symlink block (v5 header)
	kindDirData                   // directory data, block-form or free-index block (dir3_blk_hdr)
	kindDA                        // da btree block: directory leaf or node (da3_blkinfo)
)

// stampAt returns the LSN and CRC offsets of a kind in a v5 buffer, -1
// for a kind with none.
func (k bufKind) stampAt() (lsnOff, crcOff int) {
	switch k {
	case kindSuper:
		return 0xF0, layout.SuperblockCRCOffset
	case kindAGF:
		return 0xD0, layout.AGFCRCOffset
	case kindAGI:
		return 0x140, layout.AGICRCOffset
	case kindAGFL:
		return layout.AGFLLSNOffset, layout.AGFLCRCOffset
	case kindShortBtree:
		return 0x18, layout.ShortBlockCRCOffset
	case kindLongBtree:
		return 0x20, layout.LongBlockCRCOffset
	case kindInode:
		return 0x70, layout.InodeCRCOffset
	case kindRemote:
		return 0x30, layout.RemoteHdrCRCOffset
	case kindDirData:
		return 0x10, layout.Dir3DataHdrCRCOffset
	case kindDA:
		return 0x18, layout.DA3BlkinfoCRCOffset
	}
	return -1, -1
}

// wclass is a buffer's place in the commit order (writeorder.go).
type wclass uint8

const (
	classFresh wclass = iota // blocks allocated by this transaction, file data
	classAlloc               // free-space and inode btrees, AGFL, AGF, AGI
	classOwner               // inodes and bmap btree blocks
	className                // directory and attribute blocks
	classSuper               // the primary superblock
	numClasses
)

// txBuf is one buffer of a transaction: a private copy of len(data)
// bytes at byte offset off.
type txBuf struct {
	off   int64
	data  []byte
	kind  bufKind
	class wclass
	dirty bool
	fresh bool // allocated by this transaction: never read from disk
	seq   int  // order of first dirtying, for a stable write order
}

// txUnit is the granularity of the transaction's buffer index: the
// smallest inode; every other buffer is made of 512-byte sectors.
const txUnit = 256

// tx is a transaction: the buffers it read and changed, in memory until
// commit. One transaction is open at a time; it is not safe for
// concurrent use, and the FS's readers must not run while it is open.
type tx struct {
	f       *FS
	bufs    map[int64]*txBuf // by byte offset
	sectors map[int64]*txBuf // every txUnit a buffer covers
	nDirty  int
	frees   bool // the transaction returns space: commit in reverse class order
	done    bool
	allocs  map[uint32]*agAlloc  // AGs whose free space the transaction edits
	inos    map[uint32]*agInodes // AGs whose inode allocation state it edits
	bytes   int64                // bytes held in buffers
	undo    *opMark              // a batched operation's mark (batch.go), nil otherwise
	// The write ranks' rules (txorder.go): the finished operations'
	// roles, the open operation's, and the buffers it asked for.
	ops  []opRoles
	cur  opRoles
	seen map[int64]bool
}

// Errors of the write path.
var (
	// ErrReadOnlyFS: the FS was opened without a writer.
	// It wraps vfs.ErrReadOnly.
	ErrReadOnlyFS = fmt.Errorf("xfs: opened without a writer: %w", vfs.ErrReadOnly)
	// errTxDone: a finished transaction was used again (a bug).
	errTxDone = errors.New("xfs: transaction already committed or aborted")
)

// begin opens a transaction.
func (f *FS) begin() (*tx, error) {
	if f.w == nil {
		return nil, ErrReadOnlyFS
	}
	if f.tx != nil {
		return nil, errors.New("xfs: a transaction is already open")
	}
	t := &tx{f: f, bufs: map[int64]*txBuf{}, sectors: map[int64]*txBuf{}}
	f.tx = t
	return t, nil
}

// buf returns the transaction's copy of the n bytes at off, reading them
// on first use. A buffer overlapping another of the transaction at a
// different offset or size is refused: each structure has one buffer.
func (t *tx) buf(off int64, n int, kind bufKind, class wclass, w where) (*txBuf, error) {
	if t.done {
		return nil, errTxDone
	}
	if b, ok := t.bufs[off]; ok {
		if len(b.data) != n || b.kind != kind {
			return nil, fmt.Errorf("xfs: %s at %#x: buffer of %d bytes (kind %d) already held as %d bytes (kind %d)", w.what, off, n, kind, len(b.data), b.kind)
		}
		t.undo.save(b)
		t.role(b, class)
		return b, nil
	}
	if err := t.checkFree(off, n, w); err != nil {
		return nil, err
	}
	data := make([]byte, n)
	if err := t.f.readAt(data, off, w); err != nil {
		return nil, err
	}
	if _, crcOff := kind.stampAt(); t.f.geo.crc && crcOff >= 0 {
		sum := data
		if kind == kindSuper || kind == kindAGF || kind == kindAGI || kind == kindAGFL {
			sum = data[:t.f.geo.sectSize]
		}
		if got, want := layout.StoredChecksum(sum, crcOff), layout.Checksum(sum, crcOff); got != want {
			w.off = off
			return nil, w.badChecksum(got, want)
		}
	}
	b := t.add(&txBuf{off: off, data: data, kind: kind, class: class})
	t.role(b, class)
	return b, nil
}

// newBuf returns a zero-filled buffer for n bytes at off, a block the
// transaction allocated: it is never read, and is written first.
func (t *tx) newBuf(off int64, n int, kind bufKind, w where) (*txBuf, error) {
	if t.done {
		return nil, errTxDone
	}
	if b, ok := t.bufs[off]; ok {
		// A block the transaction freed and now allocates again: it
		// keeps its place in the write order (it was read from disk
		// as live metadata, or is fresh already).
		if len(b.data) != n {
			return nil, fmt.Errorf("xfs: %s at %#x: reallocated as %d bytes, held as %d", w.what, off, n, len(b.data))
		}
		t.undo.save(b)
		clear(b.data)
		b.kind = kind
		t.markDirty(b)
		return b, nil
	}
	if err := t.checkFree(off, n, w); err != nil {
		return nil, err
	}
	if off < 0 || off > t.f.size || int64(n) > t.f.size-off {
		return nil, w.corrupt("%d bytes at offset %#x lie outside the %d-byte filesystem", n, off, t.f.size)
	}
	b := t.add(&txBuf{off: off, data: make([]byte, n), kind: kind, class: classFresh, fresh: true})
	t.markDirty(b)
	return b, nil
}

// dataBlock returns the transaction's bytes of the n-byte file data
// block at off, and the buffer holding them: a slice of a larger data
// buffer the transaction wrote (an earlier operation of a batch), or a
// buffer of its own read from disk.
func (t *tx) dataBlock(off int64, n int, w where) ([]byte, *txBuf, error) {
	if b, ok := t.sectors[off&^(txUnit-1)]; ok && b.kind == kindRaw && b.off <= off && off+int64(n) <= b.off+int64(len(b.data)) {
		t.undo.save(b)
		return b.data[off-b.off : off-b.off+int64(n)], b, nil
	}
	b, err := t.buf(off, n, kindRaw, classFresh, w)
	if err != nil {
		return nil, nil, err
	}
	return b.data, b, nil
}

// checkFree refuses a buffer overlapping one the transaction holds.
func (t *tx) checkFree(off int64, n int, w where) error {
	if off%txUnit != 0 || n <= 0 || n%txUnit != 0 {
		return fmt.Errorf("xfs: %s: buffer of %d bytes at %#x is not aligned to %d bytes", w.what, n, off, txUnit)
	}
	for s := off; s < off+int64(n); s += txUnit {
		if o, ok := t.sectors[s]; ok {
			return fmt.Errorf("xfs: %s: %d bytes at %#x overlap the transaction's buffer of %d bytes at %#x", w.what, n, off, len(o.data), o.off)
		}
	}
	return nil
}

func (t *tx) add(b *txBuf) *txBuf {
	t.bufs[b.off] = b
	t.bytes += int64(len(b.data))
	for s := b.off; s < b.off+int64(len(b.data)); s += txUnit {
		t.sectors[s] = b
	}
	return b
}

// markDirty records that b changed and must be written on commit, and
// restamps it, so that the engine's readers (which verify CRCs) accept
// the uncommitted bytes: call it after every change.
func (t *tx) markDirty(b *txBuf) {
	if !b.dirty {
		b.dirty = true
		b.seq = t.nDirty
		t.nDirty++
	}
	t.stamp(b)
}

// overlay copies the transaction's bytes over p, which holds the disk's
// bytes at off; it reports whether any buffer overlapped.
func (t *tx) overlay(p []byte, off int64) bool {
	if len(t.sectors) == 0 || len(p) == 0 {
		return false
	}
	hit := false
	end := off + int64(len(p))
	for s := off &^ (txUnit - 1); s < end; s += txUnit {
		b, ok := t.sectors[s]
		if !ok {
			continue
		}
		lo, hi := max(s, off, b.off), min(s+txUnit, end, b.off+int64(len(b.data)))
		if lo < hi {
			copy(p[lo-off:hi-off], b.data[lo-b.off:hi-b.off])
			hit = true
		}
	}
	return hit
}

// copyHeld copies into p the bytes at off when one buffer of the
// transaction holds all of them, and reports whether it did.
func (t *tx) copyHeld(p []byte, off int64) bool {
	if len(t.sectors) == 0 || len(p) == 0 {
		return false
	}
	b, ok := t.sectors[off&^(txUnit-1)]
	if !ok || off < b.off || off+int64(len(p)) > b.off+int64(len(b.data)) {
		return false
	}
	copy(p, b.data[off-b.off:])
	return true
}

// covers reports whether any buffer of the transaction overlaps n bytes
// at off.
func (t *tx) covers(off int64, n int) bool {
	if len(t.sectors) == 0 {
		return false
	}
	for s := off &^ (txUnit - 1); s < off+int64(n); s += txUnit {
		if _, ok := t.sectors[s]; ok {
			return true
		}
	}
	return false
}

// abort drops the transaction; nothing was written.
func (t *tx) abort() {
	if t.done {
		return
	}
	t.done = true
	t.f.tx = nil
	t.bufs, t.sectors = nil, nil
}

// stamp sets the LSN and recomputes the CRC32c of a dirty v5 buffer.
// Fresh raw blocks and v4 buffers carry neither.
func (t *tx) stamp(b *txBuf) {
	if !t.f.geo.crc {
		return
	}
	lsnOff, crcOff := b.kind.stampAt()
	if crcOff < 0 {
		return
	}
	data := b.data
	if b.kind == kindSuper || b.kind == kindAGF || b.kind == kindAGI || b.kind == kindAGFL {
		data = data[:t.f.geo.sectSize] // each header's CRC covers its sector
	}
	binary.BigEndian.PutUint64(data[lsnOff:], t.f.log.LastLSN)
	binary.LittleEndian.PutUint32(data[crcOff:], layout.Checksum(data, crcOff))
}

// order returns the dirty buffers in commit order: by class (reversed
// classes 2-4 for a transaction that frees space), then by first
// dirtying.
func (t *tx) order() []*txBuf {
	var out []*txBuf
	for _, b := range t.bufs {
		if b.dirty {
			out = append(out, b)
		}
	}
	rank := func(c wclass) int {
		if t.frees && c != classFresh && c != classSuper {
			return int(className) - int(c) + int(classAlloc) // names, owners, then allocation state
		}
		return int(c)
	}
	slices.SortFunc(out, func(a, b *txBuf) int {
		if ra, rb := rank(a.class), rank(b.class); ra != rb {
			return ra - rb
		}
		return a.seq - b.seq
	})
	return out
}

// syncer is a device with an ordering barrier.
type syncer interface{ Sync() error }

// group is the barrier group of a class: a barrier separates groups, not
// classes. Fresh blocks and the allocation state marking them used may
// land in either order (both before anything points at them); the owners
// follow a barrier, and the names another; the superblock's counters go
// with the last group. A transaction that frees writes the names first
// (with its fresh blocks, which nothing on disk references), the owners
// that drop references after a barrier, and the allocation state that
// frees the space after another.
func (t *tx) group(c wclass) int {
	switch {
	case c == classOwner:
		return 1
	case !t.frees && (c == classFresh || c == classAlloc), t.frees && (c == classFresh || c == className):
		return 0
	}
	return 2
}

// commit stamps the dirty buffers and writes them in order, a barrier
// (Sync, when the device has one) between barrier groups; then the
// caches are dropped, as they may hold the bytes the transaction
// replaced. No barrier follows the last group: the next transaction's
// first group only writes blocks free on disk whatever part of this
// transaction's last group has landed (writeorder.go). A write error
// leaves the transaction finished and the filesystem possibly
// half-written, as any device error.
func (t *tx) commit() error {
	if t.done {
		return errTxDone
	}
	defer func() {
		t.done = true
		t.f.tx = nil
		t.f.blocks.Purge()
		t.f.inodes.Purge()
	}()
	var bufs []*txBuf
	var rank []int
	if t.frees {
		bufs = t.order()
		rank = make([]int, len(bufs))
		for i, b := range bufs {
			rank[i] = t.group(b.class)
		}
	} else {
		bufs, rank = t.rankOrder()
	}
	for i := 0; i < len(bufs); {
		j := i + 1
		for j < len(bufs) && rank[j] == rank[i] {
			j++
		}
		if i > 0 {
			if s, ok := t.f.w.(syncer); ok {
				if err := s.Sync(); err != nil {
					return fmt.Errorf("xfs: sync before writing class %d: %w", bufs[i].class, err)
				}
			}
		}
		if err := t.writeGroup(bufs[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writeGroup writes the buffers of one barrier group, which may land in
// any order: by offset, each run of adjacent buffers as one write.
func (t *tx) writeGroup(bufs []*txBuf) error {
	slices.SortFunc(bufs, func(a, b *txBuf) int { return cmp.Compare(a.off, b.off) })
	var run []byte
	for i := 0; i < len(bufs); {
		j, end := i+1, bufs[i].off+int64(len(bufs[i].data))
		for j < len(bufs) && bufs[j].off == end {
			end += int64(len(bufs[j].data))
			j++
		}
		data := bufs[i].data
		if j > i+1 {
			run = run[:0]
			for _, b := range bufs[i:j] {
				run = append(run, b.data...)
			}
			data = run
		}
		if _, err := t.f.w.WriteAt(data, bufs[i].off); err != nil {
			return fmt.Errorf("xfs: writing %d bytes at %#x: %w", len(data), bufs[i].off, err)
		}
		i = j
	}
	return nil
}
