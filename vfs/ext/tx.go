package ext

import (
	"fmt"
	"io"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// blockKind says what a block written by a transaction holds; it orders
// the writes at commit (see writeorder.go): lower kinds reach the disk
// first.
type blockKind int

const (
	// kindData: file content (and slow symlink targets).
	kindData blockKind = iota
	// kindExtent: extent tree nodes below the inode's root.
	kindExtent
	// kindIndirect: ext2/ext3 indirect blocks.
	kindIndirect
	// kindXattr: extended attribute blocks.
	kindXattr
	// kindInodeTable: inode table blocks (inodes are encoded into them
	// at commit; callers use tx.inode/tx.dirtyInode, not this kind).
	kindInodeTable
	// kindDir: directory blocks (leaves, htree roots and nodes). Their
	// checksums are ext-dir's: set them before commit, or register a
	// sealer with tx.onSeal.
	kindDir
	// kindBitmap: block and inode bitmaps (the transaction's own).
	kindBitmap
	// kindGDT: group descriptor blocks (the transaction's own).
	kindGDT
	numKinds
)

var kindNames = [numKinds]string{"data block", "extent node", "indirect block", "xattr block",
	"inode table block", "directory block", "bitmap block", "group descriptor block"}

func (k blockKind) String() string {
	if k >= 0 && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("block kind %d", int(k))
}

// txBlock is one block a transaction will write.
type txBlock struct {
	num  uint64
	kind blockKind
	buf  []byte
	seal func(b []byte) // called on buf at commit, before writing (checksums)
}

// tx collects one vfs operation's changes in memory and writes them in the
// crash-safe order (data, extent and indirect blocks, xattr blocks, inode
// table blocks, directory blocks, bitmaps, group descriptors, superblock),
// or nothing at all if the operation fails before commit.
//
// Use:
//
//	t, err := f.begin()
//	if err != nil { return err }
//	defer t.abort()           // a no-op once committed
//	... t.inode / t.allocInode / t.mapBlock / t.metaBlock / t.newBlock ...
//	return t.commit()
//
// Every buffer a tx hands out belongs to the tx: modify it in place; it is
// written at commit. Blocks freed by a tx are not reused by the same tx,
// so nothing it writes can land on a block the on-disk metadata still
// references. A tx is not safe for concurrent use; writes to one FS are
// serialised (begin takes a lock that commit/abort release).
type tx struct {
	f            *FS
	w            io.WriterAt
	now          time.Time
	blocks       map[uint64]*txBlock
	inodes       txInodes
	space        txSpace
	files        map[uint32]*fileMap // extent maps being changed
	written      int64               // bytes written, for s_kbytes_written
	setLargeFile bool                // a file passed 2 GiB: set large_file
	closed       bool
}

// txInodes is a transaction's inodes: its own copy of each inode it read
// (t.inode) or allocated (t.allocInode), which it changes in place and
// reads back, and which of them to encode and write at commit (set by
// t.dirtyInode). Like the rest of the tx, only the goroutine running the
// transaction touches it, while the tx holds FS.wr.mu.
type txInodes struct {
	copies map[uint32]*inode // the tx's copies
	dirty  map[uint32]bool   // inodes to encode at commit
}

// txSpace is a transaction's allocation bookkeeping: its view of the
// block groups it touched (their descriptors and bitmaps), the metadata
// runs it computed per group for the write checks, the blocks and inodes
// it allocated and freed, and what that does to the superblock's free
// counts. Frees are queued (freed, ifreed) and applied to the bitmaps
// at commit (applyFrees, applyInodeFrees), so the tx does not reuse
// what it frees. Like the rest of the tx, only the goroutine running the
// transaction touches it, while the tx holds FS.wr.mu.
type txSpace struct {
	groups    map[uint32]*txGroup
	meta      map[uint32][]metaRun // metadata runs per group (writecheck.go)
	freed     []blockRun           // blocks to free at commit
	released  []blockRun           // blocks freed at commit (applyFrees), for refreshCaches
	allocated []blockRun           // blocks allocated (allocIn), for the journaled commit's fresh set
	ifreed    []uint32             // inodes to free at commit
	born      map[uint32]bool      // inodes allocated (freshInode): on disk they were free

	blocksDelta int64 // change in the superblock's free block count
	inodesDelta int64 // change in the superblock's free inode count
}

// recordAlloc records blocks [start, start+n) taken from the bitmaps
// (allocIn): n fewer free blocks, and a run for the journaled commit's
// fresh set.
func (s *txSpace) recordAlloc(start, n uint64) {
	s.blocksDelta -= int64(n) // the superblock counts blocks
	s.allocated = append(s.allocated, blockRun{start, n})
}

// recordFree queues blocks [start, start+n) to be freed at commit,
// merged into the last queued run when they follow it.
func (s *txSpace) recordFree(start, n uint64) {
	if k := len(s.freed); k > 0 && s.freed[k-1].start+s.freed[k-1].n == start {
		s.freed[k-1].n += n
		return
	}
	s.freed = append(s.freed, blockRun{start, n})
}

// recordBorn records that inode ino was allocated (freshInode): on disk
// it was free.
func (s *txSpace) recordBorn(ino uint32) {
	if s.born == nil {
		s.born = map[uint32]bool{}
	}
	s.born[ino] = true
}

// recordInodeFree queues inode ino to be freed at commit.
func (s *txSpace) recordInodeFree(ino uint32) { s.ifreed = append(s.ifreed, ino) }

// blockRun is a run of physical blocks.
type blockRun struct{ start, n uint64 }

// begin starts a transaction. It fails with an error wrapping
// vfs.ErrReadOnly unless the FS was opened with Options.Writable over an
// io.WriterAt, and with the reason when the filesystem cannot be written
// safely (see checkWritable).
func (f *FS) begin() (*tx, error) {
	w, ok := f.r.(io.WriterAt)
	if !f.opts.Writable || !ok {
		return nil, fmt.Errorf("ext: opened read-only: %w", vfs.ErrReadOnly)
	}
	f.wr.mu.Lock()
	if err := f.checkWritable(); err != nil {
		f.wr.mu.Unlock()
		return nil, err
	}
	return &tx{
		f: f, w: w, now: time.Now(),
		blocks: map[uint64]*txBlock{}, inodes: txInodes{copies: map[uint32]*inode{}, dirty: map[uint32]bool{}},
		space: txSpace{groups: map[uint32]*txGroup{}}, files: map[uint32]*fileMap{},
	}, nil
}

// abort drops everything the transaction collected; nothing was written.
// It is safe to call after commit (it then does nothing).
func (t *tx) abort() {
	if t.closed {
		return
	}
	t.closed = true
	t.f.wr.mu.Unlock()
}

// metaBlock returns the transaction's copy of block n to modify in place;
// kind orders its write. Asking twice for the same block returns the same
// buffer. Data blocks are read past the cache.
func (t *tx) metaBlock(n uint64, kind blockKind) ([]byte, error) {
	if b, ok := t.blocks[n]; ok {
		if b.kind != kind {
			return nil, fmt.Errorf("ext: internal error: block %d used as %s and %s in one transaction", n, b.kind, kind)
		}
		return b.buf, nil
	}
	if !t.f.validBlock(n) {
		return nil, corrupt(kind.String(), n, 0, -1, "block number out of range (filesystem has %d blocks)", t.f.geo.blocksCount)
	}
	buf := make([]byte, t.f.geo.blockSize)
	if kind == kindData {
		if err := t.f.readAt(buf, int64(n)*t.f.geo.blockSize, kind.String(), n); err != nil {
			return nil, err
		}
	} else {
		b, err := t.f.block(n, kind.String(), 0)
		if err != nil {
			return nil, err
		}
		copy(buf, b)
	}
	t.blocks[n] = &txBlock{num: n, kind: kind, buf: buf}
	return buf, nil
}

// newBlock returns a zeroed buffer for block n, which the transaction has
// just allocated (mapBlock with isNew, or allocBlocks): its old content is
// never read.
func (t *tx) newBlock(n uint64, kind blockKind) []byte {
	buf := make([]byte, t.f.geo.blockSize)
	t.blocks[n] = &txBlock{num: n, kind: kind, buf: buf}
	return buf
}

// onSeal registers fn to run on block n's buffer at commit, after every
// change and before the write: the place to compute a block checksum
// (directory dirent tails and dx tails). Block n must have been obtained
// from metaBlock or newBlock.
func (t *tx) onSeal(n uint64, fn func(b []byte)) error {
	b, ok := t.blocks[n]
	if !ok {
		return fmt.Errorf("ext: internal error: sealing block %d the transaction does not hold", n)
	}
	b.seal = fn
	return nil
}

// forget drops block n from the transaction (it was freed again).
func (t *tx) forget(n uint64) { delete(t.blocks, n) }

// inode returns the transaction's mutable copy of inode ino (validated as
// the read side does). Record changes with dirtyInode.
func (t *tx) inode(ino uint32) (*inode, error) {
	if in, ok := t.inodes.copies[ino]; ok {
		return in, nil
	}
	in, err := t.f.inode(ino)
	if err != nil {
		return nil, err
	}
	c := in.clone()
	t.inodes.copies[ino] = c
	return c, nil
}

// dirtyInode marks in (a copy from t.inode or t.allocInode) to be encoded,
// checksummed and written at commit. Changes go into in.raw (the fields)
// and in.size (kept in step with raw by setSize); in.rec past the extended
// fields holds in-inode xattrs and is written as it stands.
func (t *tx) dirtyInode(in *inode) {
	in.raw.Encode(in.rec) // keep rec (read by iblock and the xattr code) in step
	t.inodes.copies[in.num] = in
	t.inodes.dirty[in.num] = true
}

// clone deep-copies an inode.
func (in *inode) clone() *inode {
	raw := *in.raw
	c := *in
	c.raw = &raw
	c.rec = append([]byte(nil), in.rec...)
	return &c
}

// touch sets the inode's ctime and mtime to the transaction's time.
func (t *tx) touch(in *inode) {
	t.setTimes(in, false, true, true, false)
	t.dirtyInode(in)
}

// Features this engine writes correctly (beyond what it reads).
const (
	writableROCompat = layout.ROCompatSparseSuper | layout.ROCompatLargeFile |
		layout.ROCompatHugeFile | layout.ROCompatGdtCsum | layout.ROCompatDirNlink |
		layout.ROCompatExtraIsize | layout.ROCompatMetadataCsum | layout.ROCompatProject |
		layout.ROCompatBtreeDir | layout.ROCompatVerity | layout.ROCompatQuota |
		layout.ROCompatBigalloc
	refusedCompat = layout.CompatExcludeBitmap | layout.CompatExcludeInode | layout.CompatLazyBG
)

// checkWriteFeatures names the first feature that makes writes unsafe.
func checkWriteFeatures(sb *layout.Superblock) error {
	ro := sb.FeatureROCompat
	if bad := ro &^ writableROCompat; bad != 0 {
		return fmt.Errorf("%w: writing a filesystem with ro_compat feature %s (%s)",
			ErrUnsupportedFeature, bad, whyRefused(bad))
	}
	if ro.Has(layout.ROCompatQuota) && sb.FeatureIncompat.Has(layout.IncompatEAInode) {
		return fmt.Errorf("%w: writing a filesystem with quota and ea_inode (the inodes and space EA inodes charge to their users are not tracked)", ErrUnsupportedFeature)
	}
	if ro.Has(layout.ROCompatBigalloc) && !sb.FeatureIncompat.Has(layout.IncompatExtents) {
		return fmt.Errorf("%w: writing a bigalloc filesystem without extents (files cannot be mapped by clusters)", ErrUnsupportedFeature)
	}
	if bad := sb.FeatureCompat & refusedCompat; bad != 0 {
		return fmt.Errorf("%w: writing a filesystem with compat feature %s", ErrUnsupportedFeature, bad)
	}
	if u := sb.FeatureCompat.Unknown(); u != 0 {
		return fmt.Errorf("%w: writing a filesystem with unknown compat feature bits %#x", ErrUnsupportedFeature, uint32(u))
	}
	return nil
}

// whyRefused explains the refused ro_compat features users meet.
func whyRefused(f layout.ROCompatFeature) string {
	switch {
	case f.Has(layout.ROCompatOrphanPresent):
		return "orphan inodes must be processed first"
	}
	return "not supported for writing"
}
