package xfs

import (
	"encoding/binary"
	"fmt"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// LogState is what Open learnt from the log.
type LogState struct {
	// Clean: the last record before the log head is an unmount record,
	// or the log is zeroed: nothing awaits recovery.
	Clean bool
	// External: the log lives on another device this engine cannot see;
	// its state is unknown and Clean is false.
	External bool
	// HeadBlock is the 512-byte block of the log head, -1 if not found.
	HeadBlock int64
	// Detail says why the log is not clean.
	Detail string
	// LastLSN is the LSN (cycle<<32 | block) of the last record, the
	// unmount record of a clean log; 0 for a zeroed log. Metadata the
	// engine writes is stamped with it, so no v5 LSN runs ahead of the
	// log the kernel finds at its next mount.
	LastLSN uint64
}

// maxLogScanBBs bounds how far back from the head Open looks for the last
// record header: a record is at most 256 KiB of data plus its headers.
const maxLogScanBBs = 1024

// checkLog finds the log head by the cycle numbers stamped in each basic
// block and checks that the record before it is an unmount record. It
// reads O(log2(log size)) basic blocks plus the last record's header.
func (f *FS) checkLog() error {
	st, err := f.logState()
	if err != nil {
		return err
	}
	f.log = st
	if st.Clean {
		return nil
	}
	if !f.opts.AllowDirtyLog {
		return fmt.Errorf("%w: %s; mount it once or run xfs_repair, or open with AllowDirtyLog to read possibly stale metadata", ErrNeedsRecovery, st.Detail)
	}
	f.warn("xfs: the log needs recovery (%s): reads may miss the newest changes", st.Detail)
	return nil
}

func (f *FS) logState() (LogState, error) {
	st := LogState{HeadBlock: -1}
	if f.sb.LogStart == 0 {
		st.External, st.Detail = true, "the log is on an external device"
		return st, nil
	}
	g := &f.geo
	base := f.geo.fsbLinear(f.sb.LogStart) << g.blockLog
	nbb := int64(f.sb.LogBlocks) << g.blockLog / layout.BBSize
	w := where{what: "log", ag: int64(f.sb.LogStart >> g.agBlkLog), block: int64(f.sb.LogStart), off: base}
	var word [8]byte
	// cycle returns the cycle a basic block was written in: its first
	// word, or for a record header the word after the magic.
	cycle := func(bb int64) (uint32, error) {
		if err := f.readAt(word[:], base+bb*layout.BBSize, w); err != nil {
			return 0, err
		}
		if binary.BigEndian.Uint32(word[:]) == layout.LogHeaderMagic {
			return binary.BigEndian.Uint32(word[4:]), nil
		}
		return binary.BigEndian.Uint32(word[:]), nil
	}
	first, err := cycle(0)
	if err != nil {
		return st, err
	}
	if first == 0 {
		st.Clean, st.HeadBlock = true, 0 // a zeroed log: nothing to recover
		return st, nil
	}
	last, err := cycle(nbb - 1)
	if err != nil {
		return st, err
	}
	head := int64(0) // first == last: the head sits at the wrap point
	if first != last {
		// Blocks [0, head) carry cycle first, [head, nbb) the older
		// cycle last (0 where never written).
		lo, hi := int64(0), nbb-1
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			c, err := cycle(mid)
			if err != nil {
				return st, err
			}
			if c == first {
				lo = mid
			} else {
				hi = mid
			}
		}
		head = hi
	}
	st.HeadBlock = head
	rec, hdr, err := f.lastLogRecord(base, nbb, head, w)
	if err != nil {
		return st, err
	}
	if hdr == nil {
		st.Detail = fmt.Sprintf("no record header within %d blocks before the log head at block %d", maxLogScanBBs, head)
		return st, nil
	}
	hblks := int64(1)
	if hdr.Version == 2 && hdr.Size > layout.LogHeaderCycleSize {
		hblks = (int64(hdr.Size) + layout.LogHeaderCycleSize - 1) / layout.LogHeaderCycleSize
	}
	dataBBs := (int64(hdr.Len) + layout.BBSize - 1) / layout.BBSize
	if hdr.Len > 1<<20 || (rec+hblks+dataBBs)%nbb != head%nbb {
		st.Detail = fmt.Sprintf("the last record (block %d, %d bytes) does not end at the log head (block %d)", rec, hdr.Len, head)
		return st, nil
	}
	if hdr.NumLogops != 1 {
		st.Detail = fmt.Sprintf("the last record (block %d) holds %d operations, not an unmount record", rec, hdr.NumLogops)
		return st, nil
	}
	ob := make([]byte, layout.LogOpHeaderSize)
	if err := f.readAt(ob, base+((rec+hblks)%nbb)*layout.BBSize, w); err != nil {
		return st, err
	}
	op, err := layout.DecodeLogOpHeader(ob)
	if err != nil {
		return st, w.corrupt("%v", err)
	}
	if op.Flags&layout.LogUnmountTrans == 0 {
		st.Detail = fmt.Sprintf("the last record (block %d) is not an unmount record", rec)
		return st, nil
	}
	st.Clean = true
	st.LastLSN = uint64(hdr.Cycle)<<32 | uint64(rec)
	return st, nil
}

// lastLogRecord searches back from head (wrapping at the log's start) for
// the nearest record header, reading at most maxLogScanBBs blocks in
// chunks. It returns nil when none is found.
func (f *FS) lastLogRecord(base, nbb, head int64, w where) (int64, *layout.LogRecordHeader, error) {
	const chunk = 64
	buf := make([]byte, chunk*layout.BBSize)
	scanned := int64(0)
	pos := head // blocks before pos (mod nbb) are next
	for scanned < maxLogScanBBs && scanned < nbb {
		if pos == 0 {
			pos = nbb
		}
		n := min(int64(chunk), pos, maxLogScanBBs-scanned, nbb-scanned)
		start := pos - n
		b := buf[:n*layout.BBSize]
		if err := f.readAt(b, base+start*layout.BBSize, w); err != nil {
			return 0, nil, err
		}
		for i := n - 1; i >= 0; i-- {
			bb := b[i*layout.BBSize : (i+1)*layout.BBSize]
			if binary.BigEndian.Uint32(bb) != layout.LogHeaderMagic {
				continue
			}
			h, err := layout.DecodeLogRecordHeader(bb)
			if err != nil {
				return 0, nil, w.corrupt("%v", err)
			}
			return start + i, h, nil
		}
		scanned += n
		pos = start
	}
	return 0, nil, nil
}
