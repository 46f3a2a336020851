package layout

// Log record header magic, and the flag of an unmount record's operation.
const (
	LogHeaderMagic     = 0xFEEDBABE
	LogUnmountTrans    = 0x20     // xlog_op_header flags: an unmount record
	LogHeaderCycleSize = 32 << 10 // data bytes one header block's cycle table covers
)

// LogRecordHeaderSize is the decoded part of struct xlog_rec_header; the
// header fills its whole first sector (basic block).
const LogRecordHeaderSize = 0x144

// LogRecordHeader heads each record written to the log.
type LogRecordHeader struct {
	Magic     uint32     // 0x000 LogHeaderMagic
	Cycle     uint32     // 0x004 the log cycle the record was written in
	Version   uint32     // 0x008 1 or 2
	Len       uint32     // 0x00C bytes of data after the header blocks
	LSN       uint64     // 0x010 cycle<<32 | block
	TailLSN   uint64     // 0x018 tail of the log when written
	CRC       uint32     // 0x020 little-endian on disk
	PrevBlock uint32     // 0x024 block of the previous record
	NumLogops uint32     // 0x028 operations in the record
	CycleData [64]uint32 // 0x02C first words of each data basic block
	Fmt       uint32     // 0x12C
	FSUUID    [16]byte   // 0x130
	Size      uint32     // 0x140 v2: the log buffer size
}

// DecodeLogRecordHeader decodes a log record header.
func DecodeLogRecordHeader(b []byte) (*LogRecordHeader, error) {
	h := new(LogRecordHeader)
	if err := decode(b, h, "log record header"); err != nil {
		return nil, err
	}
	h.CRC = StoredChecksum(b, 0x20)
	return h, nil
}

// LogOpHeaderSize is struct xlog_op_header.
const LogOpHeaderSize = 12

// LogOpHeader heads one operation inside a record.
type LogOpHeader struct {
	Tid      uint32 // 0x00 transaction id (its first word is replaced by the cycle on disk)
	Len      uint32 // 0x04
	ClientID uint8  // 0x08
	Flags    uint8  // 0x09 LogUnmountTrans, ...
	Res2     uint16 // 0x0A
}

// DecodeLogOpHeader decodes an operation header.
func DecodeLogOpHeader(b []byte) (*LogOpHeader, error) {
	h := new(LogOpHeader)
	return h, decode(b, h, "log op header")
}
