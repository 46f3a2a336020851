package layout

import (
	"fmt"
	"math/bits"
	"strings"
)

// VersionBits are the feature bits in the high 12 bits of sb_versionnum.
type VersionBits uint16

// Version bits, with the names xfsprogs 6.1 gives them.
const (
	VersionAttr     VersionBits = 0x0010
	VersionNlink    VersionBits = 0x0020
	VersionQuota    VersionBits = 0x0040
	VersionAlign    VersionBits = 0x0080
	VersionDAlign   VersionBits = 0x0100
	VersionShared   VersionBits = 0x0200
	VersionLogV2    VersionBits = 0x0400
	VersionSector   VersionBits = 0x0800
	VersionExtFlg   VersionBits = 0x1000
	VersionDirV2    VersionBits = 0x2000
	VersionBorg     VersionBits = 0x4000 // ASCII case-insensitive directories
	VersionMoreBits VersionBits = 0x8000 // Features2 is valid
)

// Features2 is sb_features2.
type Features2 uint32

// Features2 bits.
const (
	Features2Reserved1   Features2 = 0x0001
	Features2LazySBCount Features2 = 0x0002
	Features2Reserved4   Features2 = 0x0004
	Features2Attr2       Features2 = 0x0008
	Features2Parent      Features2 = 0x0010
	Features2ProjID32    Features2 = 0x0080
	Features2CRC         Features2 = 0x0100
	Features2Ftype       Features2 = 0x0200
)

// Compat is sb_features_compat (none defined).
type Compat uint32

// ROCompat is sb_features_ro_compat: safe to read without understanding.
type ROCompat uint32

// Read-only compatible features.
const (
	ROCompatFinobt   ROCompat = 0x1
	ROCompatRmapbt   ROCompat = 0x2
	ROCompatReflink  ROCompat = 0x4
	ROCompatInobtCnt ROCompat = 0x8
)

// Incompat is sb_features_incompat: a reader must understand every bit set.
type Incompat uint32

// Incompatible features.
const (
	IncompatFtype       Incompat = 0x01
	IncompatSpinodes    Incompat = 0x02
	IncompatMetaUUID    Incompat = 0x04
	IncompatBigtime     Incompat = 0x08
	IncompatNeedsRepair Incompat = 0x10
	IncompatNrext64     Incompat = 0x20
)

// IncompatKnown is every incompatible feature xfsprogs 6.1 names.
const IncompatKnown = IncompatFtype | IncompatSpinodes | IncompatMetaUUID | IncompatBigtime | IncompatNeedsRepair | IncompatNrext64

// LogIncompat is sb_features_log_incompat: features of the log's content.
type LogIncompat uint32

// Log-incompatible features.
const (
	LogIncompatXattrs LogIncompat = 0x1 // logged extended attribute updates
)

// LogIncompatKnown is every log-incompatible feature xfsprogs 6.1 names.
const LogIncompatKnown = LogIncompatXattrs

var versionNames = map[uint64]string{
	0x0010: "attr", 0x0020: "nlink", 0x0040: "quota", 0x0080: "align",
	0x0100: "dalign", 0x0200: "shared", 0x0400: "logv2", 0x0800: "sector",
	0x1000: "extflg", 0x2000: "dirv2", 0x4000: "asciici", 0x8000: "morebits",
}

var features2Names = map[uint64]string{
	0x0001: "reserved1", 0x0002: "lazysbcount", 0x0004: "reserved4", 0x0008: "attr2",
	0x0010: "parent", 0x0080: "projid32bit", 0x0100: "crc", 0x0200: "ftype",
}

var roCompatNames = map[uint64]string{0x1: "finobt", 0x2: "rmapbt", 0x4: "reflink", 0x8: "inobtcount"}

var incompatNames = map[uint64]string{
	0x01: "ftype", 0x02: "sparse_inodes", 0x04: "meta_uuid", 0x08: "bigtime",
	0x10: "needsrepair", 0x20: "nrext64",
}

var logIncompatNames = map[uint64]string{0x1: "xattrs"}

// flagNames lists the names of the bits set in v, "unknown_0x..." for
// bits names lacks.
func flagNames(v uint64, names map[uint64]string) string {
	var out []string
	for v != 0 {
		bit := uint64(1) << bits.TrailingZeros64(v)
		v &^= bit
		if n, ok := names[bit]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("unknown_%#x", bit))
		}
	}
	return strings.Join(out, ",")
}

func (f VersionBits) String() string { return flagNames(uint64(f), versionNames) }
func (f Features2) String() string   { return flagNames(uint64(f), features2Names) }
func (f Compat) String() string      { return flagNames(uint64(f), nil) }
func (f ROCompat) String() string    { return flagNames(uint64(f), roCompatNames) }
func (f Incompat) String() string    { return flagNames(uint64(f), incompatNames) }
func (f LogIncompat) String() string { return flagNames(uint64(f), logIncompatNames) }
