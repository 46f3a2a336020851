package layout

import (
	"fmt"
	"math/bits"
	"strings"
)

// CompatFeature is s_feature_compat: features an implementation may ignore.
type CompatFeature uint32

// IncompatFeature is s_feature_incompat: features an implementation must
// understand to read the filesystem at all.
type IncompatFeature uint32

// ROCompatFeature is s_feature_ro_compat: features an implementation must
// understand to write the filesystem; reading is safe without them.
type ROCompatFeature uint32

// Compatible features, with the names e2fsprogs 1.47 gives them.
const (
	CompatDirPrealloc   CompatFeature = 0x0001
	CompatImagicInodes  CompatFeature = 0x0002
	CompatHasJournal    CompatFeature = 0x0004
	CompatExtAttr       CompatFeature = 0x0008
	CompatResizeInode   CompatFeature = 0x0010
	CompatDirIndex      CompatFeature = 0x0020
	CompatLazyBG        CompatFeature = 0x0040
	CompatExcludeInode  CompatFeature = 0x0080
	CompatExcludeBitmap CompatFeature = 0x0100
	CompatSparseSuper2  CompatFeature = 0x0200
	CompatFastCommit    CompatFeature = 0x0400
	CompatStableInodes  CompatFeature = 0x0800
	CompatOrphanFile    CompatFeature = 0x1000
)

// Incompatible features.
const (
	IncompatCompression IncompatFeature = 0x00001
	IncompatFiletype    IncompatFeature = 0x00002
	IncompatRecover     IncompatFeature = 0x00004
	IncompatJournalDev  IncompatFeature = 0x00008
	IncompatMetaBG      IncompatFeature = 0x00010
	IncompatExtents     IncompatFeature = 0x00040
	Incompat64Bit       IncompatFeature = 0x00080
	IncompatMMP         IncompatFeature = 0x00100
	IncompatFlexBG      IncompatFeature = 0x00200
	IncompatEAInode     IncompatFeature = 0x00400
	IncompatDirData     IncompatFeature = 0x01000
	IncompatCsumSeed    IncompatFeature = 0x02000
	IncompatLargeDir    IncompatFeature = 0x04000
	IncompatInlineData  IncompatFeature = 0x08000
	IncompatEncrypt     IncompatFeature = 0x10000
	IncompatCasefold    IncompatFeature = 0x20000
)

// Read-only compatible features.
const (
	ROCompatSparseSuper   ROCompatFeature = 0x00001
	ROCompatLargeFile     ROCompatFeature = 0x00002
	ROCompatBtreeDir      ROCompatFeature = 0x00004
	ROCompatHugeFile      ROCompatFeature = 0x00008
	ROCompatGdtCsum       ROCompatFeature = 0x00010
	ROCompatDirNlink      ROCompatFeature = 0x00020
	ROCompatExtraIsize    ROCompatFeature = 0x00040
	ROCompatHasSnapshot   ROCompatFeature = 0x00080
	ROCompatQuota         ROCompatFeature = 0x00100
	ROCompatBigalloc      ROCompatFeature = 0x00200
	ROCompatMetadataCsum  ROCompatFeature = 0x00400
	ROCompatReplica       ROCompatFeature = 0x00800
	ROCompatReadonly      ROCompatFeature = 0x01000
	ROCompatProject       ROCompatFeature = 0x02000
	ROCompatSharedBlocks  ROCompatFeature = 0x04000
	ROCompatVerity        ROCompatFeature = 0x08000
	ROCompatOrphanPresent ROCompatFeature = 0x10000
)

var compatNames = map[uint32]string{
	0x0001: "dir_prealloc", 0x0002: "imagic_inodes", 0x0004: "has_journal",
	0x0008: "ext_attr", 0x0010: "resize_inode", 0x0020: "dir_index",
	0x0040: "lazy_bg", 0x0080: "exclude_inode", 0x0100: "snapshot_bitmap",
	0x0200: "sparse_super2", 0x0400: "fast_commit", 0x0800: "stable_inodes",
	0x1000: "orphan_file",
}

var incompatNames = map[uint32]string{
	0x00001: "compression", 0x00002: "filetype", 0x00004: "needs_recovery",
	0x00008: "journal_dev", 0x00010: "meta_bg", 0x00040: "extent",
	0x00080: "64bit", 0x00100: "mmp", 0x00200: "flex_bg", 0x00400: "ea_inode",
	0x01000: "dirdata", 0x02000: "metadata_csum_seed", 0x04000: "large_dir",
	0x08000: "inline_data", 0x10000: "encrypt", 0x20000: "casefold",
}

var roCompatNames = map[uint32]string{
	0x00001: "sparse_super", 0x00002: "large_file", 0x00004: "btree_dir",
	0x00008: "huge_file", 0x00010: "uninit_bg", 0x00020: "dir_nlink",
	0x00040: "extra_isize", 0x00080: "snapshot", 0x00100: "quota",
	0x00200: "bigalloc", 0x00400: "metadata_csum", 0x00800: "replica",
	0x01000: "read-only", 0x02000: "project", 0x04000: "shared_blocks",
	0x08000: "verity", 0x10000: "orphan_present",
}

// Known masks: every bit e2fsprogs 1.47 names.
const (
	CompatKnown   CompatFeature   = 0x1FFF
	IncompatKnown IncompatFeature = 0x3F7DF
	ROCompatKnown ROCompatFeature = 0x1FFFF
)

// Has reports whether every bit of g is set in f.
func (f CompatFeature) Has(g CompatFeature) bool { return f&g == g }

// Has reports whether every bit of g is set in f.
func (f IncompatFeature) Has(g IncompatFeature) bool { return f&g == g }

// Has reports whether every bit of g is set in f.
func (f ROCompatFeature) Has(g ROCompatFeature) bool { return f&g == g }

// Unknown returns the bits of f that e2fsprogs 1.47 does not name.
func (f CompatFeature) Unknown() CompatFeature { return f &^ CompatKnown }

// Unknown returns the bits of f that e2fsprogs 1.47 does not name.
func (f IncompatFeature) Unknown() IncompatFeature { return f &^ IncompatKnown }

// Unknown returns the bits of f that e2fsprogs 1.47 does not name.
func (f ROCompatFeature) Unknown() ROCompatFeature { return f &^ ROCompatKnown }

// Names lists the names of the set bits, unknown ones as FEATURE_C12 etc.
func (f CompatFeature) Names() []string { return featureNames(uint32(f), compatNames, "C") }

// Names lists the names of the set bits, unknown ones as FEATURE_I12 etc.
func (f IncompatFeature) Names() []string { return featureNames(uint32(f), incompatNames, "I") }

// Names lists the names of the set bits, unknown ones as FEATURE_R12 etc.
func (f ROCompatFeature) Names() []string { return featureNames(uint32(f), roCompatNames, "R") }

func (f CompatFeature) String() string   { return strings.Join(f.Names(), " ") }
func (f IncompatFeature) String() string { return strings.Join(f.Names(), " ") }
func (f ROCompatFeature) String() string { return strings.Join(f.Names(), " ") }

// featureNames names each set bit of v in bit order; a bit without a name is
// spelt as e2fsprogs does, FEATURE_<kind><bit>.
func featureNames(v uint32, names map[uint32]string, kind string) []string {
	var out []string
	for v != 0 {
		bit := uint32(1) << bits.TrailingZeros32(v)
		v &^= bit
		if n, ok := names[bit]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("FEATURE_%s%d", kind, bits.TrailingZeros32(bit)))
		}
	}
	return out
}
