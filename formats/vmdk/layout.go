// Package vmdk reads VMware VMDK disks read-only: monolithicSparse,
// streamOptimized (compressed grains, markers, the footer header),
// monolithicFlat and twoGbMaxExtent{Sparse,Flat} with their text
// descriptor. Extent files are opened through a caller-supplied opener,
// and only by plain names inside the descriptor's directory: never an
// absolute path or one with a ".." component.
//
// layout.go holds the on-disk structures (little-endian) only;
// descriptor.go parses the text descriptor, sparse.go maps a sparse
// extent's grains, disk.go joins the extents into one virtual disk.
package vmdk

import "encoding/binary"

// SectorSize is VMDK's unit for every size and offset.
const SectorSize = 512

// SparseMagic is "KDMV" read as a little-endian uint32.
const SparseMagic = 0x564d444b

// GDAtEnd in a header's GDOffset says the real header is the footer.
const GDAtEnd = 0xffffffffffffffff

// SparseFlags are the header's flags.
type SparseFlags uint32

const (
	FlagValidNewline   SparseFlags = 1 << 0
	FlagRedundantGT    SparseFlags = 1 << 1
	FlagZeroGrainGTE   SparseFlags = 1 << 2 // a grain table entry of 1 is a zeroed grain
	FlagCompressed     SparseFlags = 1 << 16
	FlagMarkers        SparseFlags = 1 << 17
	knownSparseFlags               = FlagValidNewline | FlagRedundantGT | FlagZeroGrainGTE | FlagCompressed | FlagMarkers
	CompressionDeflate uint16      = 1
)

// SparseHeader is the 512-byte header of a hosted sparse extent.
type SparseHeader struct {
	Magic              uint32      // 0x00
	Version            uint32      // 0x04
	Flags              SparseFlags // 0x08
	Capacity           uint64      // 0x0c sectors
	GrainSize          uint64      // 0x14 sectors
	DescriptorOffset   uint64      // 0x1c sectors
	DescriptorSize     uint64      // 0x24 sectors
	NumGTEsPerGT       uint32      // 0x2c
	RGDOffset          uint64      // 0x30 sectors
	GDOffset           uint64      // 0x38 sectors
	OverHead           uint64      // 0x40 sectors
	UncleanShutdown    uint8       // 0x48
	SingleEndLineChar  uint8       // 0x49
	NonEndLineChar     uint8       // 0x4a
	DoubleEndLineChar1 uint8       // 0x4b
	DoubleEndLineChar2 uint8       // 0x4c
	CompressAlgorithm  uint16      // 0x4d
	Pad                [433]uint8  // 0x4f
}

// HeaderSize is the encoded size of SparseHeader.
const HeaderSize = 512

// DecodeHeader decodes b (HeaderSize bytes).
func DecodeHeader(b []byte) SparseHeader {
	var h SparseHeader
	if _, err := binary.Decode(b[:HeaderSize], binary.LittleEndian, &h); err != nil {
		panic(err) // fixed-size struct over a buffer of its size
	}
	return h
}

// Marker types of a streamOptimized extent (a marker's Size is 0).
const (
	MarkerEOS    = 0
	MarkerGT     = 1
	MarkerGD     = 2
	MarkerFooter = 3
)

// Marker is the start of a metadata marker sector.
type Marker struct {
	Value uint64 // 0x00 sectors of metadata following
	Size  uint32 // 0x08 0 for a marker (else it is a grain marker)
	Type  uint32 // 0x0c
}

// GrainMarker precedes a compressed grain.
type GrainMarker struct {
	LBA  uint64 // 0x00 the grain's first virtual sector
	Size uint32 // 0x08 compressed bytes that follow
}

// GrainMarkerSize is the encoded size of GrainMarker.
const GrainMarkerSize = 12

// footerOffsetFromEnd: a streamOptimized file ends with a footer marker,
// the footer (a header copy) and an end-of-stream marker, one sector each.
const footerOffsetFromEnd = 2 * SectorSize
