package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/internal/cache"
)

// Bounds on a sparse extent's header.
const (
	MaxGrainSectors = 128 << 11 // 128 MiB grains (qemu's limit)
	MaxGTEsPerGT    = 512       // qemu's limit
	// MaxGDBytes bounds the grain directories held in memory, summed
	// over every sparse extent of a disk (a descriptor may name 4096).
	MaxGDBytes = 16 << 20
	// gtCacheBytes bounds the grain tables cached, shared out among a
	// disk's sparse extents (at least 4 tables each).
	gtCacheBytes = 512 << 10
)

// budget is what a disk's extents may still hold in memory.
type budget struct {
	gd      int64 // grain directory bytes left
	extents int   // sparse extents the disk has (for the grain table cache)
}

// sparse is one hosted sparse extent: grain directory → grain tables →
// grains, plain or deflate-compressed behind a grain marker.
type sparse struct {
	r        io.ReaderAt
	fileSize int64
	h        SparseHeader
	grain    int64 // bytes
	gd       []uint32
	gts      *cache.LRU[uint32, []uint32]

	mu       sync.Mutex // guards the last inflated grain
	zGrain   int64      // its file offset; -1 for none
	zData    []byte
	capacity int64 // bytes
}

// readSparseHeader reads the header at 0 and, for a streamOptimized
// extent whose header says the directory is at the end, the footer.
func readSparseHeader(r io.ReaderAt, fileSize int64) (SparseHeader, error) {
	var b [HeaderSize]byte
	if fileSize < HeaderSize {
		return SparseHeader{}, diskerr.Corrupt(0, "VMDK sparse extent of %d bytes", fileSize)
	}
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return SparseHeader{}, diskerr.At(0, "read VMDK header", err)
	}
	h := DecodeHeader(b[:])
	if h.Magic != SparseMagic {
		return h, diskerr.Corrupt(0, "VMDK sparse magic %#x", h.Magic)
	}
	if h.GDOffset != GDAtEnd {
		return h, nil
	}
	off := fileSize - footerOffsetFromEnd
	if off < HeaderSize {
		return h, diskerr.Corrupt(0, "VMDK directory at the end, but no room for a footer in %d bytes", fileSize)
	}
	if _, err := r.ReadAt(b[:], off); err != nil {
		return h, diskerr.At(off, "read VMDK footer", err)
	}
	f := DecodeHeader(b[:])
	if f.Magic != SparseMagic || f.GDOffset == GDAtEnd {
		return h, diskerr.Corrupt(off, "VMDK footer (magic %#x, directory at %#x)", f.Magic, f.GDOffset)
	}
	return f, nil
}

func openSparse(r io.ReaderAt, fileSize int64, b *budget) (*sparse, error) {
	h, err := readSparseHeader(r, fileSize)
	if err != nil {
		return nil, err
	}
	if err := checkHeader(&h, fileSize); err != nil {
		return nil, err
	}
	s := &sparse{r: r, fileSize: fileSize, h: h, grain: int64(h.GrainSize) * SectorSize, zGrain: -1,
		capacity: int64(h.Capacity) * SectorSize}
	s.gts = cache.NewLRU[uint32, []uint32](max(4, int(gtCacheBytes/(int64(h.NumGTEsPerGT)*4))/max(1, b.extents)))
	perGD := int64(h.NumGTEsPerGT) * int64(h.GrainSize) // sectors one table maps
	n := (int64(h.Capacity) + perGD - 1) / perGD
	gdOff := int64(h.GDOffset) * SectorSize
	if n*4 > b.gd {
		return nil, diskerr.Unsupported("VMDK grain directories of more than %d bytes in all (this one: %d entries)", MaxGDBytes, n)
	}
	b.gd -= n * 4
	if h.GDOffset > uint64(fileSize)/SectorSize || n*4 > fileSize-gdOff {
		return nil, diskerr.Corrupt(0x38, "VMDK grain directory at %#x (%d entries) beyond the %d-byte file", gdOff, n, fileSize)
	}
	raw := make([]byte, n*4)
	if _, err := r.ReadAt(raw, gdOff); err != nil {
		return nil, diskerr.At(gdOff, "read VMDK grain directory", err)
	}
	s.gd = make([]uint32, n)
	for i := range s.gd {
		s.gd[i] = binary.LittleEndian.Uint32(raw[i*4:])
	}
	return s, nil
}

// checkHeader bounds every header field the mapping uses.
func checkHeader(h *SparseHeader, fileSize int64) error {
	switch {
	case h.Version == 0:
		return diskerr.Corrupt(0x04, "VMDK sparse version 0")
	case h.Version > 3:
		return diskerr.Unsupported("VMDK sparse version %d", h.Version)
	case h.Flags&^knownSparseFlags != 0:
		return diskerr.Unsupported("VMDK sparse flags %#x", uint32(h.Flags&^knownSparseFlags))
	case h.GrainSize == 0 || h.GrainSize > MaxGrainSectors || h.GrainSize&(h.GrainSize-1) != 0:
		return diskerr.Corrupt(0x14, "VMDK grain size %d sectors", h.GrainSize)
	case h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > MaxGTEsPerGT:
		return diskerr.Corrupt(0x2c, "VMDK %d entries per grain table", h.NumGTEsPerGT)
	case h.Capacity > 1<<53/SectorSize:
		return diskerr.Corrupt(0x0c, "VMDK capacity %d sectors", h.Capacity)
	case h.Flags&FlagCompressed != 0 && h.CompressAlgorithm != CompressionDeflate:
		return diskerr.Unsupported("VMDK compression algorithm %d", h.CompressAlgorithm)
	case h.Flags&FlagCompressed != 0 && h.Flags&FlagMarkers == 0:
		return diskerr.Unsupported("VMDK compressed grains without grain markers")
	}
	return nil
}

func (s *sparse) size() int64 { return s.capacity }

// readAt fills p from extent offset off, within one grain.
func (s *sparse) readAt(p []byte, off int64) (int, error) {
	g, in := off/s.grain, off%s.grain
	p = p[:min(int64(len(p)), s.grain-in)]
	e, err := s.grainEntry(g)
	if err != nil {
		return 0, err
	}
	if e == 0 || (e == 1 && s.h.Flags&FlagZeroGrainGTE != 0) {
		clear(p)
		return len(p), nil
	}
	at := int64(e) * SectorSize
	if at >= s.fileSize {
		return 0, diskerr.Corrupt(at, "VMDK grain %d beyond the %d-byte file", g, s.fileSize)
	}
	if s.h.Flags&FlagCompressed != 0 {
		return s.readCompressed(p, at, in, g)
	}
	n, err := s.r.ReadAt(p, at+in)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, diskerr.At(at+in, "read VMDK grain", err)
	}
	clear(p[n:]) // a grain cut by the end of the file reads as zeros
	return len(p), nil
}

// grainEntry returns the grain table entry of grain g.
func (s *sparse) grainEntry(g int64) (uint32, error) {
	per := int64(s.h.NumGTEsPerGT)
	gdi := g / per
	if gdi >= int64(len(s.gd)) {
		return 0, diskerr.At(g*s.grain, "VMDK read", diskerr.ErrOutOfRange)
	}
	gtSector := s.gd[gdi]
	if gtSector == 0 {
		return 0, nil
	}
	gt, ok := s.gts.Get(gtSector)
	if !ok {
		off := int64(gtSector) * SectorSize
		if off > s.fileSize-per*4 {
			return 0, diskerr.Corrupt(int64(s.h.GDOffset)*SectorSize+gdi*4, "VMDK grain directory entry %d: table at %#x beyond the %d-byte file", gdi, off, s.fileSize)
		}
		raw := make([]byte, per*4)
		if _, err := s.r.ReadAt(raw, off); err != nil {
			return 0, diskerr.At(off, "read VMDK grain table", err)
		}
		gt = make([]uint32, per)
		for i := range gt {
			gt[i] = binary.LittleEndian.Uint32(raw[i*4:])
		}
		s.gts.Put(gtSector, gt)
	}
	return gt[g%per], nil
}

// readCompressed inflates the grain whose marker is at at (keeping the
// last one: streams read grains in order) and copies from in.
func (s *sparse) readCompressed(p []byte, at, in, g int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.zGrain != at {
		if err := s.inflate(at, g); err != nil {
			s.zGrain = -1
			return 0, err
		}
		s.zGrain = at
	}
	return copy(p, s.zData[in:]), nil
}

func (s *sparse) inflate(at, g int64) error {
	var mb [GrainMarkerSize]byte
	if at > s.fileSize-GrainMarkerSize {
		return diskerr.Corrupt(at, "VMDK grain marker of grain %d beyond the file", g)
	}
	if _, err := s.r.ReadAt(mb[:], at); err != nil {
		return diskerr.At(at, "read VMDK grain marker", err)
	}
	size := int64(binary.LittleEndian.Uint32(mb[8:]))
	if size == 0 || size > s.fileSize-at-GrainMarkerSize || size > 2*s.grain+4096 {
		return diskerr.Corrupt(at, "VMDK compressed grain %d of %d bytes", g, size)
	}
	src := make([]byte, size)
	if _, err := s.r.ReadAt(src, at+GrainMarkerSize); err != nil {
		return diskerr.At(at, "read VMDK compressed grain", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return diskerr.Corrupt(at, "VMDK compressed grain %d: %v", g, err)
	}
	if cap(s.zData) < int(s.grain) {
		s.zData = make([]byte, s.grain)
	}
	s.zData = s.zData[:s.grain]
	n, err := io.ReadFull(zr, s.zData)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return diskerr.Corrupt(at, "VMDK compressed grain %d: %v", g, err)
	}
	clear(s.zData[n:]) // a short last grain
	if n == len(s.zData) {
		var one [1]byte
		if k, _ := zr.Read(one[:]); k != 0 {
			return diskerr.Corrupt(at, "VMDK compressed grain %d inflates beyond %d bytes", g, s.grain)
		}
	}
	return nil
}

func (s *sparse) describe() string {
	kind := "sparse"
	if s.h.Flags&FlagCompressed != 0 {
		kind = "stream-optimized"
	}
	return fmt.Sprintf("%s, %d-byte grains", kind, s.grain)
}
