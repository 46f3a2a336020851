package vdi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Bounds.
const (
	// minHeaderBytes: the header up to the parent UUIDs; the LCHS
	// geometry after them is optional (qemu-img writes 0x180 bytes).
	minHeaderBytes   = 0x180
	MaxBlockMapBytes = 16 << 20 // 4 Mi blocks: 4 TiB of 1 MiB blocks
	MaxBlockBytes    = 64 << 20
)

// Disk is an open VDI: an io.ReaderAt over its virtual disk.
type Disk struct {
	r        io.ReaderAt
	fileSize int64
	h        Header
	size     int64
	block    int64
	stride   int64 // block bytes + extra
	data     int64
	bmap     []uint32
}

// Open reads the header and the block map of the VDI file r (fileSize
// bytes), each offset and count checked against fileSize.
func Open(r io.ReaderAt, fileSize int64) (*Disk, error) {
	if fileSize < HeaderOffset+HeaderSize {
		return nil, diskerr.Corrupt(0, "VDI of %d bytes is smaller than its header", fileSize)
	}
	b := make([]byte, HeaderOffset+HeaderSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, diskerr.At(0, "read VDI header", err)
	}
	if sig := binary.LittleEndian.Uint32(b[SignatureOffset:]); sig != Signature {
		return nil, diskerr.Corrupt(SignatureOffset, "VDI signature %#x", sig)
	}
	switch v := binary.LittleEndian.Uint32(b[SignatureOffset+4:]); {
	case v>>16 == 0:
		return nil, diskerr.Corrupt(SignatureOffset+4, "VDI version %#x", v)
	case v>>16 != 1:
		return nil, diskerr.Unsupported("VDI version %#x", v)
	}
	h := DecodeHeader(b[HeaderOffset:])
	d := &Disk{r: r, fileSize: fileSize, h: h, size: int64(h.DiskBytes), block: int64(h.BlockBytes)}
	switch h.Type {
	case TypeDynamic, TypeFixed:
	case TypeUndo, TypeDiff:
		return nil, diskerr.Unsupported("VDI %s image (it needs its parent; convert it with 'qemu-img convert')", h.Type)
	default:
		return nil, diskerr.Corrupt(0x4c, "VDI image type %d", uint32(h.Type))
	}
	switch {
	case h.HeaderBytes < minHeaderBytes:
		return nil, diskerr.Unsupported("VDI header of %d bytes", h.HeaderBytes)
	case d.block < 512 || d.block > MaxBlockBytes || d.block&(d.block-1) != 0:
		return nil, diskerr.Corrupt(0x178, "VDI block size %d", h.BlockBytes)
	case h.BlockExtra > MaxBlockBytes || h.BlockExtra%512 != 0:
		return nil, diskerr.Corrupt(0x17c, "VDI block extra %d", h.BlockExtra)
	case h.DiskBytes > 1<<52:
		return nil, diskerr.Corrupt(0x170, "VDI disk size %d", h.DiskBytes)
	}
	need := (d.size + d.block - 1) / d.block
	if int64(h.Blocks) < need {
		return nil, diskerr.Corrupt(0x180, "VDI block map of %d entries for %d blocks", h.Blocks, need)
	}
	if need*4 > MaxBlockMapBytes {
		return nil, diskerr.Unsupported("VDI block map of %d entries (max %d)", need, MaxBlockMapBytes/4)
	}
	off := int64(h.BlocksOffset)
	if off > fileSize || need*4 > fileSize-off {
		return nil, diskerr.Corrupt(0x154, "VDI block map at %#x (%d entries) beyond the %d-byte file", off, need, fileSize)
	}
	raw := make([]byte, need*4)
	if _, err := r.ReadAt(raw, off); err != nil {
		return nil, diskerr.At(off, "read VDI block map", err)
	}
	d.bmap = make([]uint32, need)
	for i := range d.bmap {
		d.bmap[i] = binary.LittleEndian.Uint32(raw[i*4:])
	}
	d.stride, d.data = d.block+int64(h.BlockExtra), int64(h.DataOffset)
	return d, nil
}

// Size is the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Describe says what the disk is, for messages and inspect.
func (d *Disk) Describe() string {
	return fmt.Sprintf("vdi %s, %d bytes, %d-byte blocks", d.h.Type, d.size, d.block)
}

// ReadAt reads the virtual disk: free and zero blocks read as zeros.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, diskerr.At(off, "VDI read", diskerr.ErrOutOfRange)
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(want), d.size-off)]
	done := 0
	for done < len(p) {
		at := off + int64(done)
		b, in := at/d.block, at%d.block
		q := p[done:min(len(p), done+int(min(int64(len(p)-done), d.block-in)))]
		switch e := d.bmap[b]; {
		case e == BlockFree || e == BlockZero:
			clear(q)
		default:
			start := d.data + int64(e)*d.stride + int64(d.h.BlockExtra)
			if int64(e) >= int64(d.h.Blocks) || start+d.block > d.fileSize {
				return done, diskerr.Corrupt(int64(d.h.BlocksOffset)+b*4, "VDI block map entry %d: block %d beyond the %d-byte file", b, e, d.fileSize)
			}
			if n, err := d.r.ReadAt(q, start+in); n != len(q) {
				return done, diskerr.At(start+in, "read VDI block", errors.Join(err, io.ErrUnexpectedEOF))
			}
		}
		done += len(q)
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}
