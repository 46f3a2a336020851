package xfs

import (
	"fmt"
	"github.com/guestinject/guestinject/internal/cache"
	"io"
	"sync"
	"time"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// Options tune Open.
type Options struct {
	// AllowDirtyLog opens a filesystem whose log needs recovery, or whose
	// log state cannot be told (an external log); reads may then miss the
	// newest metadata, and Warn is told so. Without it such an open fails
	// with an error wrapping ErrNeedsRecovery.
	AllowDirtyLog bool
	Warn          func(msg string) // may be nil
	// MaxReadFileSize caps what ReadFile loads into memory (default
	// DefaultMaxReadFileSize); larger files are read through OpenFile.
	MaxReadFileSize int64
	// Now stamps the times of what the write operations change
	// (time.Now when nil).
	Now func() time.Time
	// Batch (a writable open): the write operations add to one open
	// transaction, each still all-or-nothing, and Flush commits them
	// together: one transaction's barriers for the lot (batch.go). A
	// caller that batches must Flush before the device's writes count.
	Batch bool
}

// DefaultMaxReadFileSize is ReadFile's default cap.
const DefaultMaxReadFileSize = 1 << 30

// Cache sizes: small and fixed, whatever the filesystem's size.
const (
	blockCacheEntries = 64
	inodeCacheEntries = 256
)

// FS is an open XFS filesystem, read-only. It is safe for concurrent reads.
type FS struct {
	// opMu: reads (Stat, ReadFile, File.ReadAt, …) run in parallel with
	// each other; each write operation (and Flush, Grow) runs alone, so a
	// reader never sees a transaction half built (TestConcurrentReadWrite).
	opMu sync.RWMutex
	r    io.ReaderAt
	size int64
	opts Options
	sb   *layout.Superblock
	geo  geometry
	log  LogState

	blocks *cache.LRU[bufKey, []byte] // metadata buffers
	inodes *cache.LRU[uint64, *inode]

	// The write path (writable.go, tx.go): nil w for a read-only FS; tx
	// is the open transaction, whose buffers reads see.
	w  io.WriterAt
	tx *tx
}

// Open reads the superblock of the XFS filesystem held in the first size
// bytes of r, validates it, and tells from the log whether the filesystem
// was cleanly unmounted. Nothing else is read until asked for.
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
	f.blocks = cache.NewLRU[bufKey, []byte](blockCacheEntries)
	f.inodes = cache.NewLRU[uint64, *inode](inodeCacheEntries)
	if err := f.checkLog(); err != nil {
		return nil, err
	}
	return f, nil
}

// BlockSize returns the filesystem block size in bytes.
func (f *FS) BlockSize() int { return int(f.geo.blockSize) }

// Label returns the filesystem label.
func (f *FS) Label() string { return f.sb.Label() }

// UUID returns the user-visible filesystem UUID.
func (f *FS) UUID() [16]byte { return f.sb.UUID }

// Log reports what Open found in the log.
func (f *FS) Log() LogState { return f.log }

// bufKey names a cached buffer: its byte offset and length.
type bufKey struct {
	off int64
	n   int
}

// readAt reads exactly len(p) bytes at off, which must lie inside the
// section; w names what is read for the error.
func (f *FS) readAt(p []byte, off int64, w where) error {
	if off < 0 || off > f.size || int64(len(p)) > f.size-off {
		w.off = off
		return w.corrupt("%d bytes at offset %#x lie outside the %d-byte filesystem", len(p), off, f.size)
	}
	if f.tx != nil && f.tx.copyHeld(p, off) {
		return nil // one buffer of the transaction holds every byte
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		if f.tx != nil {
			f.tx.overlay(p, off)
		}
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("xfs: reading %s at offset %#x: %w", w.what, off, err)
}

// cached returns n bytes at off through the block cache. Callers must not
// modify the slice.
func (f *FS) cached(off int64, n int, w where) ([]byte, error) {
	if f.tx != nil && f.tx.covers(off, n) {
		b := make([]byte, n) // the transaction's bytes: not cached
		return b, f.readAt(b, off, w)
	}
	key := bufKey{off, n}
	if b, ok := f.blocks.Get(key); ok {
		return b, nil
	}
	b := make([]byte, n)
	if err := f.readAt(b, off, w); err != nil {
		return nil, err
	}
	f.blocks.Put(key, b)
	return b, nil
}

func (f *FS) warn(format string, args ...any) {
	if f.opts.Warn != nil {
		f.opts.Warn(fmt.Sprintf(format, args...))
	}
}
