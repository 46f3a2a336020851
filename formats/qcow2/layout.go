// Package qcow2 reads and writes qcow2 images (versions 2 and 3) in place.
//
// This file is layout only: the on-disk structures and their bit fields,
// with no I/O. All numbers are big-endian on disk. Field names follow the
// qcow2 specification (qemu docs/interop/qcow2.txt).
package qcow2

// Magic is "QFI\xfb", the first four bytes of every qcow2 file.
const Magic = 0x514649fb

// Header is the fixed part of the image header. Version 2 headers end at
// 0x48 (72 bytes); version 3 headers are HeaderLength bytes long, at least
// 0x68 (104). Fields a short header lacks decode as zero.
type Header struct {
	Magic                 uint32           // 0x00
	Version               uint32           // 0x04
	BackingFileOffset     uint64           // 0x08
	BackingFileSize       uint32           // 0x10
	ClusterBits           uint32           // 0x14
	Size                  uint64           // 0x18 virtual disk size in bytes
	CryptMethod           uint32           // 0x20
	L1Size                uint32           // 0x24 entries in the active L1 table
	L1TableOffset         uint64           // 0x28
	RefcountTableOffset   uint64           // 0x30
	RefcountTableClusters uint32           // 0x38
	NbSnapshots           uint32           // 0x3c
	SnapshotsOffset       uint64           // 0x40
	IncompatibleFeatures  IncompatFeature  // 0x48 (v3)
	CompatibleFeatures    CompatFeature    // 0x50 (v3)
	AutoclearFeatures     AutoclearFeature // 0x58 (v3)
	RefcountOrder         uint32           // 0x60 (v3) refcount_bits = 1 << order
	HeaderLength          uint32           // 0x64 (v3)
	CompressionType       uint8            // 0x68 (v3, optional)
	Padding               [7]byte          // 0x69
}

// Header sizes and field offsets used by in-place updates.
const (
	HeaderV2Size = 72
	HeaderV3Size = 104
	headerFull   = 112 // sizeof(Header)

	offRefcountTable = 0x30 // refcount_table_offset, then refcount_table_clusters
	offIncompat      = 0x48
	offAutoclear     = 0x58
)

// IncompatFeature is the incompatible_features bit set.
type IncompatFeature uint64

const (
	IncompatDirty        IncompatFeature = 1 << 0
	IncompatCorrupt      IncompatFeature = 1 << 1
	IncompatExternalData IncompatFeature = 1 << 2
	IncompatCompression  IncompatFeature = 1 << 3
	IncompatExtendedL2   IncompatFeature = 1 << 4
	incompatKnown                        = IncompatDirty | IncompatCorrupt | IncompatExternalData | IncompatCompression | IncompatExtendedL2
)

// CompatFeature is the compatible_features bit set.
type CompatFeature uint64

const CompatLazyRefcounts CompatFeature = 1 << 0

// AutoclearFeature is the autoclear_features bit set. A writer that does
// not maintain a feature must clear its bit before writing.
type AutoclearFeature uint64

const (
	AutoclearBitmaps AutoclearFeature = 1 << 0
	AutoclearRawData AutoclearFeature = 1 << 1
)

// Compression types (header byte 0x68).
const (
	CompressionZlib = 0
	CompressionZstd = 1
)

// Crypt methods.
const (
	CryptNone = 0
	CryptAES  = 1
	CryptLUKS = 2
)

// Header extension types.
const (
	ExtEnd           = 0x00000000
	ExtBackingFormat = 0xe2792aca
	ExtFeatureTable  = 0x6803f857
	ExtBitmaps       = 0x23852875
	ExtEncryption    = 0x0537be77
	ExtDataFile      = 0x44415441
)

// ExtHeader precedes each header extension's data, which is padded to 8.
type ExtHeader struct {
	Type   uint32 // 0x00
	Length uint32 // 0x04
}

// BitmapsExt is the data of the bitmaps header extension.
type BitmapsExt struct {
	NbBitmaps       uint32 // 0x00
	Reserved        uint32 // 0x04
	DirectorySize   uint64 // 0x08
	DirectoryOffset uint64 // 0x10
}

// BitmapDirEntry is the fixed part of a bitmap directory entry; extra data
// and the name follow, padded to 8.
type BitmapDirEntry struct {
	TableOffset     uint64 // 0x00
	TableSize       uint32 // 0x08 entries
	Flags           uint32 // 0x0c
	Type            uint8  // 0x10
	GranularityBits uint8  // 0x11
	NameSize        uint16 // 0x12
	ExtraDataSize   uint32 // 0x14
}

// FeatureNameEntry is one 48-byte row of the feature name table extension.
type FeatureNameEntry struct {
	Type uint8    // 0x00 0 incompatible, 1 compatible, 2 autoclear
	Bit  uint8    // 0x01
	Name [46]byte // 0x02
}

// SnapshotHeader is the fixed part of a snapshot table entry; extra data,
// the id and the name follow, padded to 8.
type SnapshotHeader struct {
	L1TableOffset uint64 // 0x00
	L1Size        uint32 // 0x08
	IDSize        uint16 // 0x0c
	NameSize      uint16 // 0x0e
	DateSec       uint32 // 0x10
	DateNsec      uint32 // 0x14
	VMClockNsec   uint64 // 0x18
	VMStateSize   uint32 // 0x20
	ExtraDataSize uint32 // 0x24
}

// Limits: qemu's implementation limits, which we share so that an image we
// write stays openable by qemu, and a hostile header cannot make us allocate
// more than these.
const (
	MinClusterBits      = 9
	MaxClusterBits      = 21
	MinClusterBitsExtL2 = 14
	MaxL1Bytes          = 32 << 20
	MaxRefcountTable    = 8 << 20
	MaxBackingNameLen   = 1023
	MaxSnapshots        = 65536
	Subclusters         = 32
)

// L1Entry is one active L1 table entry.
type L1Entry uint64

const (
	l1OffsetMask   = 0x00fffffffffffe00 // bits 9-55
	l1ReservedMask = 0x7f000000000001ff // bits 0-8 and 56-62
	FlagCopied     = uint64(1) << 63
	FlagCompressed = uint64(1) << 62
	flagZero       = uint64(1) << 0
	l2OffsetMask   = 0x00fffffffffffe00
)

// L2Offset is the L2 table's file offset (0: not allocated).
func (e L1Entry) L2Offset() int64 { return int64(uint64(e) & l1OffsetMask) }

// Copied reports refcount exactly one (accurate only in the active table).
func (e L1Entry) Copied() bool { return uint64(e)&FlagCopied != 0 }

// L2Entry is the first (standard) word of an L2 table entry.
type L2Entry uint64

// Compressed reports a compressed cluster descriptor.
func (e L2Entry) Compressed() bool { return uint64(e)&FlagCompressed != 0 }

// Copied reports a standard cluster with refcount exactly one.
func (e L2Entry) Copied() bool { return uint64(e)&FlagCopied != 0 }

// Zero reports the "reads as zeros" bit of a standard descriptor (v3,
// without extended L2 entries).
func (e L2Entry) Zero() bool { return uint64(e)&flagZero != 0 }

// HostOffset is a standard descriptor's host cluster offset (0: none).
func (e L2Entry) HostOffset() int64 { return int64(uint64(e) & l2OffsetMask) }

// CompressedRange decodes a compressed descriptor for a given cluster_bits:
// the host byte offset and the number of 512-byte sectors spanned, counting
// the one holding the offset.
func (e L2Entry) CompressedRange(clusterBits uint32) (off int64, sectors int64) {
	x := 62 - (clusterBits - 8)
	off = int64(uint64(e) & (uint64(1)<<x - 1))
	sectors = int64((uint64(e)>>x)&(uint64(1)<<(62-x)-1)) + 1
	return off, sectors
}

// SubclusterBitmap is the second word of an extended L2 entry: bits 0-31
// say allocated, bits 32-63 say reads-as-zero, one bit per subcluster.
type SubclusterBitmap uint64

// Allocated reports whether subcluster i is allocated.
func (b SubclusterBitmap) Allocated(i int) bool { return b>>uint(i)&1 != 0 }

// Zero reports whether subcluster i reads as zeros.
func (b SubclusterBitmap) Zero(i int) bool { return b>>uint(32+i)&1 != 0 }

// AllAllocated is the bitmap of a fully allocated cluster.
const AllAllocated SubclusterBitmap = 0xffffffff
