package qcow2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Meta is a parsed, validated header with its extensions.
type Meta struct {
	Header
	ClusterSize     int64
	L2Entries       int64 // entries per L2 table
	ExtendedL2      bool
	RefcountBits    uint32
	BackingFile     string // as stored in the image (untrusted)
	BackingFormat   string // from the backing format extension, may be ""
	DataFile        string // external data file name extension, may be ""
	HasBitmaps      bool
	Bitmaps         BitmapsExt // valid when HasBitmaps
	ExtensionsEnd   int64      // first byte after the header extension area
	FeatureNames    map[[2]uint8]string
	UnknownIncompat IncompatFeature
}

// Feature names a set bit in error messages, from the image's own feature
// name table when it has one.
func (m *Meta) featureName(kind, bit uint8) string {
	if n, ok := m.FeatureNames[[2]uint8{kind, bit}]; ok {
		return n
	}
	return fmt.Sprintf("bit %d", bit)
}

// ParseHeader decodes and validates the header found in the first cluster
// of an image (buf holds at least the first min(fileSize, 2 MiB) bytes, or
// the whole first cluster). Every offset and table size is checked against
// fileSize before anything is allocated from it.
func ParseHeader(buf []byte, fileSize int64) (*Meta, error) {
	if len(buf) < HeaderV2Size {
		return nil, diskerr.Corrupt(0, "qcow2 header truncated (%d bytes)", len(buf))
	}
	var full [headerFull]byte
	m := &Meta{}
	if err := decodeFixed(buf, full[:], m); err != nil {
		return nil, err
	}
	steps := []func(*Meta, []byte, int64) error{
		checkVersion, checkCluster, checkFeatures, checkL1, checkRefcountTable,
		checkSnapshots, parseExtensions, parseBackingName,
	}
	for _, step := range steps {
		if err := step(m, buf, fileSize); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func decodeFixed(buf, full []byte, m *Meta) error {
	n := HeaderV2Size
	version := binary.BigEndian.Uint32(buf[4:8])
	if version >= 3 {
		if len(buf) < HeaderV3Size {
			return diskerr.Corrupt(0, "qcow2 v3 header truncated (%d bytes)", len(buf))
		}
		hl := int(binary.BigEndian.Uint32(buf[0x64:0x68]))
		n = min(max(hl, HeaderV3Size), headerFull, len(buf))
	}
	copy(full, buf[:n])
	if err := binary.Read(bytes.NewReader(full), binary.BigEndian, &m.Header); err != nil {
		return diskerr.At(0, "decode qcow2 header", err)
	}
	if m.Magic != Magic {
		return diskerr.Corrupt(0, "bad qcow2 magic %#x", m.Magic)
	}
	return nil
}

func checkVersion(m *Meta, _ []byte, _ int64) error {
	switch m.Version {
	case 2:
		m.RefcountOrder = 4
		m.HeaderLength = HeaderV2Size
	case 3:
		if m.HeaderLength < HeaderV3Size || m.HeaderLength%8 != 0 {
			return diskerr.Corrupt(0x64, "qcow2 header_length %d invalid (must be >= 104 and a multiple of 8)", m.HeaderLength)
		}
	default:
		return diskerr.Unsupported("qcow2 version %d", m.Version)
	}
	return nil
}

func checkCluster(m *Meta, buf []byte, _ int64) error {
	if m.ClusterBits < MinClusterBits || m.ClusterBits > MaxClusterBits {
		return diskerr.Corrupt(0x14, "qcow2 cluster_bits %d out of range %d..%d", m.ClusterBits, MinClusterBits, MaxClusterBits)
	}
	m.ClusterSize = int64(1) << m.ClusterBits
	if int64(m.HeaderLength) > m.ClusterSize {
		return diskerr.Corrupt(0x64, "qcow2 header_length %d exceeds the cluster size %d", m.HeaderLength, m.ClusterSize)
	}
	if m.RefcountOrder > 6 {
		return diskerr.Corrupt(0x60, "qcow2 refcount_order %d > 6", m.RefcountOrder)
	}
	m.RefcountBits = 1 << m.RefcountOrder
	return nil
}

func checkFeatures(m *Meta, _ []byte, _ int64) error {
	inc := m.IncompatibleFeatures
	m.UnknownIncompat = inc &^ incompatKnown
	if m.CryptMethod != CryptNone {
		return diskerr.Unsupported("qcow2 encryption (crypt_method %d) is refused", m.CryptMethod)
	}
	if inc&IncompatExternalData != 0 {
		return diskerr.Unsupported("qcow2 external data file is refused")
	}
	m.ExtendedL2 = inc&IncompatExtendedL2 != 0
	if m.ExtendedL2 && m.ClusterBits < MinClusterBitsExtL2 {
		return diskerr.Corrupt(0x14, "qcow2 extended L2 entries need cluster_bits >= %d, have %d", MinClusterBitsExtL2, m.ClusterBits)
	}
	if inc&IncompatCompression != 0 {
		if m.CompressionType != CompressionZstd {
			return diskerr.Unsupported("qcow2 compression_type %d", m.CompressionType)
		}
	} else if m.CompressionType != CompressionZlib {
		return diskerr.Corrupt(0x68, "qcow2 compression_type %d without the compression incompatible bit", m.CompressionType)
	}
	m.L2Entries = m.ClusterSize / 8
	if m.ExtendedL2 {
		m.L2Entries = m.ClusterSize / 16
	}
	return nil
}

// checkL1 bounds the active L1 table: it must cover the virtual size, fit
// qemu's 32 MiB limit and lie inside the file.
func checkL1(m *Meta, _ []byte, fileSize int64) error {
	if m.Size > 1<<62 {
		return diskerr.Corrupt(0x18, "qcow2 virtual size %d absurd", m.Size)
	}
	perL1 := uint64(m.ClusterSize) * uint64(m.L2Entries)
	need := (m.Size + perL1 - 1) / perL1
	if uint64(m.L1Size) < need {
		return diskerr.Corrupt(0x24, "qcow2 L1 table has %d entries, virtual size %d needs %d", m.L1Size, m.Size, need)
	}
	if int64(m.L1Size)*8 > MaxL1Bytes {
		return diskerr.Corrupt(0x24, "qcow2 L1 table of %d entries exceeds the 32 MiB limit", m.L1Size)
	}
	return checkArea("L1 table", 0x28, m.L1TableOffset, int64(m.L1Size)*8, m.ClusterSize, fileSize)
}

func checkRefcountTable(m *Meta, _ []byte, fileSize int64) error {
	if m.RefcountTableClusters == 0 {
		return diskerr.Corrupt(0x38, "qcow2 refcount table has no clusters")
	}
	n := int64(m.RefcountTableClusters) * m.ClusterSize
	if n > MaxRefcountTable {
		return diskerr.Corrupt(0x38, "qcow2 refcount table of %d clusters exceeds the 8 MiB limit", m.RefcountTableClusters)
	}
	return checkArea("refcount table", 0x30, m.RefcountTableOffset, n, m.ClusterSize, fileSize)
}

func checkSnapshots(m *Meta, _ []byte, fileSize int64) error {
	if m.NbSnapshots == 0 {
		return nil
	}
	if m.NbSnapshots > MaxSnapshots {
		return diskerr.Corrupt(0x3c, "qcow2 claims %d snapshots (limit %d)", m.NbSnapshots, MaxSnapshots)
	}
	return checkArea("snapshot table", 0x40, m.SnapshotsOffset, int64(m.NbSnapshots)*40, m.ClusterSize, fileSize)
}

// checkArea checks that [off, off+n) is cluster aligned and inside the file.
func checkArea(what string, field int64, off uint64, n, clusterSize, fileSize int64) error {
	if off%uint64(clusterSize) != 0 {
		return diskerr.Corrupt(field, "qcow2 %s offset %#x not cluster aligned", what, off)
	}
	if off == 0 && n > 0 {
		return diskerr.Corrupt(field, "qcow2 %s at offset 0 overlaps the header", what)
	}
	if off > uint64(fileSize) || uint64(n) > uint64(fileSize)-off {
		return diskerr.Corrupt(field, "qcow2 %s [%#x, +%d) extends past the end of the file (%d bytes)", what, off, n, fileSize)
	}
	return nil
}

// parseExtensions walks the header extension area, bounded by the end of
// the first cluster (or the backing file name, which follows it).
func parseExtensions(m *Meta, buf []byte, _ int64) error {
	end := min(int64(len(buf)), m.ClusterSize)
	if m.BackingFileOffset != 0 && int64(m.BackingFileOffset) < end {
		end = int64(m.BackingFileOffset)
	}
	off := int64(m.HeaderLength)
	for off+8 <= end {
		typ := binary.BigEndian.Uint32(buf[off:])
		n := int64(binary.BigEndian.Uint32(buf[off+4:]))
		if typ == ExtEnd {
			m.ExtensionsEnd = off + 8
			return nil
		}
		data := off + 8
		if n > end-data {
			return diskerr.Corrupt(off, "qcow2 header extension %#x of %d bytes overruns the header area", typ, n)
		}
		if err := m.extension(typ, buf[data:data+n], off); err != nil {
			return err
		}
		off = data + (n+7)&^7
	}
	m.ExtensionsEnd = off
	return nil
}

func (m *Meta) extension(typ uint32, d []byte, off int64) error {
	switch typ {
	case ExtBackingFormat:
		m.BackingFormat = string(d)
	case ExtDataFile:
		m.DataFile = string(d)
	case ExtBitmaps:
		if len(d) < 24 {
			return diskerr.Corrupt(off, "qcow2 bitmaps extension of %d bytes (need 24)", len(d))
		}
		m.HasBitmaps = true
		m.Bitmaps = BitmapsExt{
			NbBitmaps:       binary.BigEndian.Uint32(d[0:]),
			DirectorySize:   binary.BigEndian.Uint64(d[8:]),
			DirectoryOffset: binary.BigEndian.Uint64(d[16:]),
		}
	case ExtFeatureTable:
		m.FeatureNames = map[[2]uint8]string{}
		for i := 0; i+48 <= len(d); i += 48 {
			name := strings.TrimRight(string(d[i+2:i+48]), "\x00")
			m.FeatureNames[[2]uint8{d[i], d[i+1]}] = name
		}
	}
	return nil
}

// parseBackingName reads the backing file name, which must lie inside the
// first cluster and be at most 1023 bytes. Unknown incompatible features
// are refused here, after the feature table has named them.
func parseBackingName(m *Meta, buf []byte, fileSize int64) error {
	if m.UnknownIncompat != 0 {
		var names []string
		for b := uint8(0); b < 64; b++ {
			if m.UnknownIncompat>>b&1 != 0 {
				names = append(names, m.featureName(0, b))
			}
		}
		return diskerr.Unsupported("qcow2 unknown incompatible features: %s", strings.Join(names, ", "))
	}
	if m.BackingFileOffset == 0 {
		return nil
	}
	off, n := m.BackingFileOffset, uint64(m.BackingFileSize)
	if n == 0 || n > MaxBackingNameLen {
		return diskerr.Corrupt(0x10, "qcow2 backing file name length %d invalid (1..%d)", n, MaxBackingNameLen)
	}
	if off > uint64(m.ClusterSize) || n > uint64(m.ClusterSize)-off || off+n > uint64(len(buf)) || off+n > uint64(fileSize) {
		return diskerr.Corrupt(0x08, "qcow2 backing file name at %#x (+%d) outside the first cluster", off, n)
	}
	if off < uint64(m.HeaderLength) {
		return diskerr.Corrupt(0x08, "qcow2 backing file name at %#x overlaps the header", off)
	}
	m.BackingFile = string(buf[off : off+n])
	if strings.IndexByte(m.BackingFile, 0) >= 0 {
		return diskerr.Corrupt(int64(off), "qcow2 backing file name contains a NUL byte")
	}
	return nil
}
