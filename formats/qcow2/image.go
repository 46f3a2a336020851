package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/klauspost/compress/zstd"
)

// File is what an Image needs of the host file.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Backing is the disk an image falls back to for unallocated clusters.
type Backing interface {
	io.ReaderAt
	Size() int64
}

// Options controls Open.
type Options struct {
	ReadOnly bool
	// Backing must be given when the image names a backing file; the caller
	// resolves, vets and opens it (policy lives above this package).
	Backing Backing
	// Meta, when set, is the header ReadMeta already returned for f.
	Meta *Meta
	// Unordered skips the syncs that order metadata writes (data and
	// refcounts, then L2, then L1), keeping the one at the end of Flush.
	// Only for a file this process just created and nobody else uses:
	// after a crash such a file is discarded, not repaired, so the order
	// in which its metadata reached the disk does not matter.
	Unordered bool
}

// Image is an open qcow2 image: an io.ReaderAt and io.WriterAt over its
// virtual disk. It is safe for concurrent use (calls are serialised).
type Image struct {
	mu       sync.Mutex
	f        File
	meta     *Meta
	fileSize int64 // bytes of the host file known to hold data
	backing  Backing
	readOnly bool
	// unordered: Options.Unordered.
	unordered bool

	l1 [][]uint64 // chunks of the active L1 table, nil until read
	l2 *tableCache

	w  *writer  // nil until the first write (or CheckWrite) planned one
	mm *metaMap // where the metadata lies, built with w (metadata.go)
	// plan is what planWrite decided (the bitmaps to drop, if any);
	// ready says prepareWrite carried it out, so writes may go ahead.
	plan  *bitmapPlan
	ready bool
	// dropping: the bitmap clusters prepareWrite is about to free, while
	// the active L2 entries are checked against them.
	dropping *bitmapPlan

	// Metadata updates waiting for Flush (see flush.go).
	dirtyL2     map[int64]bool // L2 tables changed in the cache
	dirtyL1     map[int64]bool // L1 indices changed in memory
	pendingFree []int64        // clusters whose reference goes away
	unsynced    bool           // written since the last sync
	// The write barrier (flush.go): the pending changes to what the guest
	// reads all lie in L2 table batchL2 (0: none pending); fresh holds the
	// host clusters they point at, which the guest cannot see yet.
	batchL2 int64
	fresh   map[int64]bool
	scratch []byte // one cluster, for copy-on-write

	compVC  int64 // virtual cluster held in compBuf, -1 if none
	compBuf []byte
	zdec    *zstd.Decoder
}

// ReadMeta reads and validates the header of the qcow2 file f of the given
// size, without opening the image (for a caller deciding on backing files).
func ReadMeta(f io.ReaderAt, fileSize int64) (*Meta, error) {
	n := min(fileSize, 64<<10)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, diskerr.At(0, "read qcow2 header", err)
	}
	if len(buf) >= 24 {
		cb := binary.BigEndian.Uint32(buf[20:24])
		if cb > 16 && cb <= MaxClusterBits && fileSize > n {
			buf = make([]byte, min(fileSize, int64(1)<<cb))
			if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
				return nil, diskerr.At(0, "read qcow2 header cluster", err)
			}
		}
	}
	return ParseHeader(buf, fileSize)
}

// Open opens the qcow2 image in f (fileSize bytes long).
func Open(f File, fileSize int64, opts Options) (*Image, error) {
	m := opts.Meta
	if m == nil {
		var err error
		if m, err = ReadMeta(f, fileSize); err != nil {
			return nil, err
		}
	}
	if m.BackingFile != "" && opts.Backing == nil {
		return nil, &diskerr.Error{What: fmt.Sprintf("qcow2 backing file %q not supplied", m.BackingFile), Offset: -1, Err: diskerr.ErrBackingDenied}
	}
	img := &Image{f: f, meta: m, fileSize: fileSize, backing: opts.Backing, readOnly: opts.ReadOnly, unordered: opts.Unordered, compVC: -1}
	if err := img.loadL1(); err != nil {
		return nil, err
	}
	img.l2 = newTableCache(m.ClusterSize)
	img.dirtyL2, img.dirtyL1 = map[int64]bool{}, map[int64]bool{}
	img.l2.keep = func(off int64) bool { return img.dirtyL2[off] }
	return img, nil
}

// l1Chunk is how many L1 entries are read at a time: the L1 table is read
// lazily, so opening a huge image costs what the clusters touched cost.
const l1Chunk = 4096

func (img *Image) loadL1() error {
	img.l1 = make([][]uint64, (int64(img.meta.L1Size)+l1Chunk-1)/l1Chunk)
	return nil
}

// l1Entry returns active L1 entry i (i < L1Size), reading its chunk of the
// table on first use.
func (img *Image) l1Entry(i int64) (uint64, error) {
	c := i / l1Chunk
	if img.l1[c] == nil {
		first := c * l1Chunk
		n := min(int64(img.meta.L1Size)-first, l1Chunk)
		off := int64(img.meta.L1TableOffset) + first*8
		buf := make([]byte, n*8)
		if _, err := img.f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, diskerr.At(off, "read qcow2 L1 table", err)
		}
		chunk := make([]uint64, n)
		for k := range chunk {
			chunk[k] = binary.BigEndian.Uint64(buf[k*8:])
		}
		img.l1[c] = chunk
	}
	return img.l1[c][i%l1Chunk], nil
}

// Meta returns the parsed header.
func (img *Image) Meta() *Meta { return img.meta }

// Size is the virtual disk size.
func (img *Image) Size() int64 { return int64(img.meta.Size) }

// ReadAt reads the virtual disk.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	img.mu.Lock()
	defer img.mu.Unlock()
	if off < 0 {
		return 0, diskerr.At(off, "qcow2 read", diskerr.ErrOutOfRange)
	}
	size := img.Size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	if err := img.read(p, off); err != nil {
		return 0, err
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// read fills p from virtual offset off, cluster by cluster.
func (img *Image) read(p []byte, off int64) error {
	cs := img.meta.ClusterSize
	for len(p) > 0 {
		in := off & (cs - 1)
		n := min(int64(len(p)), cs-in)
		if err := img.readCluster(off>>img.meta.ClusterBits, in, p[:n]); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// Flush writes the pending metadata in crash-safe order and syncs the
// host file.
func (img *Image) Flush() error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.readOnly || !img.ready {
		return nil
	}
	if err := img.flushMeta(); err != nil {
		return err
	}
	return img.syncNow()
}

// Close flushes. It does not close the host file, which the caller owns.
func (img *Image) Close() error {
	err := img.Flush()
	if img.zdec != nil {
		img.zdec.Close()
	}
	return err
}

// tableCache keeps recently used clusters of metadata (L2 tables, refcount
// blocks), bounded to about 4 MiB and at least 4 tables.
type tableCache struct {
	max   int
	m     map[int64][]byte
	order []int64
	keep  func(off int64) bool // pinned (dirty) tables are never evicted
}

func newTableCache(clusterSize int64) *tableCache {
	return &tableCache{max: int(max(4, (4<<20)/clusterSize)), m: map[int64][]byte{}}
}

func (c *tableCache) get(off int64) []byte { return c.m[off] }

func (c *tableCache) put(off int64, b []byte) {
	if _, ok := c.m[off]; !ok {
		if len(c.order) >= c.max {
			c.evict()
		}
		c.order = append(c.order, off)
	}
	c.m[off] = b
}

// evict drops the oldest table that is not pinned.
func (c *tableCache) evict() {
	for i, o := range c.order {
		if c.keep == nil || !c.keep(o) {
			delete(c.m, o)
			c.order = append(c.order[:i], c.order[i+1:]...)
			return
		}
	}
}
