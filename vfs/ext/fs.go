package ext

import (
	"fmt"
	"io"
	"sync"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Options tune Open.
type Options struct {
	// A journal that needs recovery is replayed into memory at Open, as
	// e2fsck would replay it: reads see the recovered filesystem, the
	// image is not written (a Writable open writes the replay home at its
	// first commit; see replay_write.go). When the journal cannot be
	// replayed safely, Open fails with an error wrapping ErrNeedsRecovery;
	// AllowDirtyJournal makes a read-only open read the unreplayed
	// filesystem instead (reads may then miss the newest metadata), and
	// Warn is told so.
	AllowDirtyJournal bool
	Warn              func(msg string) // may be nil
	// MaxReadFileSize caps what ReadFile loads into memory (default
	// DefaultMaxReadFileSize); larger files are read through OpenFile.
	MaxReadFileSize int64
	// Writable opens the filesystem for writing: r must then also be an
	// io.WriterAt (normally the same file or partition section). Open
	// refuses, before anything is written, a filesystem the engine cannot
	// write safely, naming the reason.
	Writable bool
	// CheckWritable makes a read-only open (a dry run) refuse what a
	// Writable open would, making the same checks at Open (features, MMP,
	// s_state, the journal replayed in memory, orphans) and writing
	// nothing.
	CheckWritable bool
	// Force writes even when the superblock says the filesystem has
	// errors or may be mounted (s_state, mmp), when the journal recorded
	// an error, or when orphan inodes await cleanup.
	Force bool
}

// DefaultMaxReadFileSize is ReadFile's default cap.
const DefaultMaxReadFileSize = 1 << 30

// FS is an open ext2/3/4 filesystem. It is safe for concurrent use:
// reads (Stat, ReadFile, ReadDir, File.ReadAt, …) run in parallel with
// each other, and each write operation (MakePath, AppendFile, Symlink,
// Grow, …) runs alone, after the reads in flight and before the next
// ones, so a reader sees a filesystem before or after a write, never
// during it (opMu; TestConcurrentReadWrite under -race).
type FS struct {
	opMu sync.RWMutex

	r    io.ReaderAt
	size int64
	opts Options
	sb   *layout.Superblock
	geo  geometry

	cache readCache // what was read from the image (readcache.go)

	wr writeState // the write engine's (writestate.go)
}

// geometry is what Open derives from the validated superblock.
type geometry struct {
	blockSize    int64
	logBlock     uint32 // log2(blockSize)
	clusterSize  int64
	blocksCount  uint64
	firstData    uint64
	groups       uint32
	bpg          uint32 // blocks per group
	ipg          uint32 // inodes per group
	inodeSize    int
	firstIno     uint32
	descSize     int
	descPerBlock uint32
	descBlocks   uint32 // blocks the descriptor table needs
	metaCsum     bool   // metadata_csum
	gdtCsum      bool   // gdt_csum (uninit_bg) without metadata_csum
	csumSeed     uint32 // seed of every metadata_csum checksum
	filetype     bool
	extents      bool
	hugeFile     bool
	largeDir     bool
	dirIndex     bool
	hashUnsigned bool
}

// Open reads the superblock of the ext2/3/4 filesystem held in the first
// size bytes of r and validates it. Nothing else is read until asked for.
func Open(r io.ReaderAt, size int64, opts *Options) (*FS, error) {
	f := &FS{r: r, size: size}
	if opts != nil {
		f.opts = *opts
	}
	if f.opts.MaxReadFileSize <= 0 {
		f.opts.MaxReadFileSize = DefaultMaxReadFileSize
	}
	if err := f.loadSuperblock(); err != nil {
		return nil, err
	}
	f.wr.openBlocks = f.sb.BlocksCount()
	f.cache = newReadCache()
	if f.opts.Writable || f.opts.CheckWritable {
		// Refusals, and the journal replay in memory, before anything else.
		if err := f.openWritable(); err != nil {
			return nil, err
		}
	}
	if err := f.checkJournalState(); err != nil {
		return nil, err
	}
	return f, nil
}

// sbCopy returns a copy of the decoded superblock (for tests; the
// layout structs are not API).
func (f *FS) sbCopy() layout.Superblock {
	defer f.rlock()()
	return *f.sb
}

// BlockSize returns the filesystem block size in bytes.
func (f *FS) BlockSize() int { return int(f.geo.blockSize) }

// readAt reads len(p) bytes at off, refusing anything outside the image,
// as the filesystem is: the image with what the checks before the first
// write left pending laid over it (a journal replayed in memory, the
// superblock's edits; replay_write.go).
func (f *FS) readAt(p []byte, off int64, what string, num uint64) error {
	if err := f.readDisk(p, off, what, num); err != nil {
		return err
	}
	if pd := f.wr.pend.Load(); pd != nil {
		return pd.overlay(p, off)
	}
	return nil
}

// readDisk reads len(p) bytes at off from the image alone.
func (f *FS) readDisk(p []byte, off int64, what string, num uint64) error {
	if off < 0 || off > f.size || int64(len(p)) > f.size-off {
		return corrupt(what, num, 0, off, "%d bytes at offset %#x lie outside the %d-byte image", len(p), off, f.size)
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("ext: reading %s %d at offset %#x: %w", what, num, off, err)
}

// validBlock reports whether n may hold data or metadata: past the first
// data block (which holds the superblock) and inside the filesystem.
func (f *FS) validBlock(n uint64) bool {
	return n > f.geo.firstData && n < f.geo.blocksCount
}

// validRange reports whether blocks [n, n+count) are all valid.
func (f *FS) validRange(n, count uint64) bool {
	return count > 0 && f.validBlock(n) && count <= f.geo.blocksCount-n
}

// block returns metadata block n through the cache. Callers must not
// modify the returned slice. On a writable FS, a block read for inode
// ino (a directory block, extent node, indirect block) is remembered as
// that inode's, so the write engine can refuse to write another inode's
// data over it.
func (f *FS) block(n uint64, what string, ino uint32) ([]byte, error) {
	if !f.validBlock(n) {
		return nil, corrupt(what, n, ino, -1, "block number out of range (filesystem has %d blocks)", f.geo.blocksCount)
	}
	if ino != 0 && f.opts.Writable {
		f.cache.noteOwner(n, ino, what)
	}
	if b, ok := f.cache.blocks.Get(n); ok {
		return b, nil
	}
	b := make([]byte, f.geo.blockSize)
	if err := f.readAt(b, int64(n)*f.geo.blockSize, what, n); err != nil {
		return nil, err
	}
	f.cache.blocks.Put(n, b)
	return b, nil
}

// warn passes msg to Options.Warn, if set.
func (f *FS) warn(msg string) {
	if f.opts.Warn != nil {
		f.opts.Warn(msg)
	}
}
