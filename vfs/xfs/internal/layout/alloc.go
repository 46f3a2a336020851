package layout

// Free-space btree magics: by block (bnobt) and by count (cntbt), v4 and
// v5 (short-form btree blocks, ShortBlock headers).
const (
	BnoMagic    = 0x41425442 // "ABTB"
	CntMagic    = 0x41425443 // "ABTC"
	BnoCRCMagic = 0x41423342 // "AB3B"
	CntCRCMagic = 0x41423343 // "AB3C"
)

// AllocRec is a free-space record (struct xfs_alloc_rec), and also the
// key of both free-space btrees' nodes (the first record below).
type AllocRec struct {
	StartBlock uint32 // 0x00 AG block
	BlockCount uint32 // 0x04
}

// AllocRecSize is the size of a record or key; AllocPtrSize of a node's
// child pointer (an AG block).
const (
	AllocRecSize = 8
	AllocPtrSize = 4
)

// ShortBtreeMaxRecs returns how many records of recSize bytes (leaf) or
// key+pointer pairs of keySize+ptrSize bytes (node) a short-form btree
// block of blockSize bytes holds.
func ShortBtreeMaxRecs(blockSize int, crc bool, leaf bool, recSize, keySize, ptrSize int) int {
	n := blockSize - ShortBlockSize
	if crc {
		n = blockSize - ShortBlockCRCSize
	}
	if leaf {
		return n / recSize
	}
	return n / (keySize + ptrSize)
}
