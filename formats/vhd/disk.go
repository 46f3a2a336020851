package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Bounds on what a header may ask of us.
const (
	// MaxBATBytes bounds the block allocation table held in memory
	// (16 MiB: 4 Mi blocks, 8 TiB of 2 MiB blocks; VHD stops at 2 TiB).
	MaxBATBytes = 16 << 20
	// MaxBlockSize bounds a dynamic disk's block size.
	MaxBlockSize = 256 << 20
)

// Disk is an open VHD: an io.ReaderAt over its virtual disk.
type Disk struct {
	r        io.ReaderAt
	fileSize int64
	footer   Footer
	size     int64
	// dynamic only
	blockSize  int64
	bitmapSize int64 // the sector bitmap before each block's data
	bat        []uint32
}

// Open reads the footer (and, for a dynamic disk, its header and BAT) of
// the VHD file r of fileSize bytes. Every offset is checked against
// fileSize; differencing disks are refused (ErrUnsupported).
func Open(r io.ReaderAt, fileSize int64) (*Disk, error) {
	if fileSize < FooterSize {
		return nil, diskerr.Corrupt(0, "VHD of %d bytes has no footer", fileSize)
	}
	f, err := readFooter(r, fileSize)
	if err != nil {
		return nil, err
	}
	d := &Disk{r: r, fileSize: fileSize, footer: f, size: f.VirtualSize()}
	if d.size < 0 {
		return nil, diskerr.Corrupt(fileSize-FooterSize, "VHD footer size %d", f.CurrentSize)
	}
	switch f.DiskType {
	case DiskFixed:
		if d.size > fileSize-FooterSize {
			return nil, diskerr.Corrupt(fileSize-FooterSize, "fixed VHD of %d bytes in a %d-byte file", d.size, fileSize)
		}
		return d, nil
	case DiskDynamic:
		if err := d.openDynamic(); err != nil {
			return nil, err
		}
		return d, nil
	case DiskDifferencing:
		return nil, diskerr.Unsupported("VHD differencing disk (it needs its parent; convert it with 'qemu-img convert')")
	}
	return nil, diskerr.Corrupt(fileSize-FooterSize+0x3c, "VHD disk type %d", uint32(f.DiskType))
}

// readFooter takes the footer at the end of the file, or the copy at
// offset 0 when the end one is damaged (as qemu does).
func readFooter(r io.ReaderAt, fileSize int64) (Footer, error) {
	var b [FooterSize]byte
	var firstErr error
	for _, off := range []int64{fileSize - FooterSize, 0} {
		if _, err := r.ReadAt(b[:], off); err != nil {
			return Footer{}, diskerr.At(off, "read VHD footer", err)
		}
		f := DecodeFooter(b[:])
		switch {
		case string(f.Cookie[:]) != FooterCookie:
			err := diskerr.Corrupt(off, "VHD footer cookie %q", f.Cookie[:])
			firstErr = cmp(firstErr, err)
		case Checksum(b[:], ChecksumOffset) != f.Checksum:
			err := diskerr.Corrupt(off, "VHD footer checksum %#x, computed %#x", f.Checksum, Checksum(b[:], ChecksumOffset))
			firstErr = cmp(firstErr, err)
		default:
			return f, nil
		}
	}
	return Footer{}, firstErr
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (d *Disk) openDynamic() error {
	hoff := int64(d.footer.DataOffset)
	if d.footer.DataOffset > uint64(d.fileSize) || hoff > d.fileSize-DynamicHeaderSize {
		return diskerr.Corrupt(d.fileSize-FooterSize+0x10, "VHD dynamic header offset %#x beyond the %d-byte file", d.footer.DataOffset, d.fileSize)
	}
	var b [DynamicHeaderSize]byte
	if _, err := d.r.ReadAt(b[:], hoff); err != nil {
		return diskerr.At(hoff, "read VHD dynamic header", err)
	}
	h := DecodeDynamicHeader(b[:])
	if string(h.Cookie[:]) != DynamicCookie {
		return diskerr.Corrupt(hoff, "VHD dynamic header cookie %q", h.Cookie[:])
	}
	if c := Checksum(b[:], DynChecksumOffset); c != h.Checksum {
		return diskerr.Corrupt(hoff, "VHD dynamic header checksum %#x, computed %#x", h.Checksum, c)
	}
	bs := int64(h.BlockSize)
	if bs < SectorSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return diskerr.Corrupt(hoff+0x20, "VHD block size %d", bs)
	}
	need := (d.size + bs - 1) / bs
	if int64(h.MaxTableEntries) < need {
		return diskerr.Corrupt(hoff+0x1c, "VHD BAT of %d entries for %d blocks", h.MaxTableEntries, need)
	}
	if need*4 > MaxBATBytes {
		return diskerr.Unsupported("VHD BAT of %d entries (max %d)", need, MaxBATBytes/4)
	}
	toff := int64(h.TableOffset)
	if h.TableOffset > uint64(d.fileSize) || need*4 > d.fileSize-toff {
		return diskerr.Corrupt(hoff+0x10, "VHD BAT at %#x (%d entries) beyond the %d-byte file", h.TableOffset, need, d.fileSize)
	}
	raw := make([]byte, need*4)
	if _, err := d.r.ReadAt(raw, toff); err != nil {
		return diskerr.At(toff, "read VHD BAT", err)
	}
	d.bat = make([]uint32, need)
	for i := range d.bat {
		d.bat[i] = binary.BigEndian.Uint32(raw[i*4:])
	}
	d.blockSize = bs
	d.bitmapSize = (bs/SectorSize/8 + SectorSize - 1) / SectorSize * SectorSize
	return nil
}

// Size is the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Type is the disk type (fixed or dynamic).
func (d *Disk) Type() DiskType { return d.footer.DiskType }

// ReadAt reads the virtual disk. A dynamic disk's unallocated block reads
// as zeros; an allocated block is read whole from the file, whatever its
// sector bitmap says (qemu's reading, so qemu-img convert agrees).
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, diskerr.At(off, "VHD read", diskerr.ErrOutOfRange)
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > d.size-off {
		p = p[:d.size-off]
	}
	done := 0
	for done < len(p) {
		n, err := d.readSome(p[done:], off+int64(done))
		done += n
		if err != nil {
			return done, err
		}
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// readSome reads from off up to the end of its block.
func (d *Disk) readSome(p []byte, off int64) (int, error) {
	if d.bat == nil { // fixed
		return readFull(d.r, p, off)
	}
	blk, in := off/d.blockSize, off%d.blockSize
	n := min(int64(len(p)), d.blockSize-in)
	p = p[:n]
	e := d.bat[blk]
	if e == BATUnused {
		clear(p)
		return len(p), nil
	}
	start := int64(e) * SectorSize
	if start+d.bitmapSize+d.blockSize > d.fileSize {
		return 0, diskerr.Corrupt(start, "VHD BAT entry %d: block beyond the %d-byte file", blk, d.fileSize)
	}
	return readFull(d.r, p, start+d.bitmapSize+in)
}

func readFull(r io.ReaderAt, p []byte, off int64) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, diskerr.At(off, fmt.Sprintf("read %d bytes", len(p)), err)
}

// Describe says what the disk is, for messages and inspect.
func (d *Disk) Describe() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "vhd %s, %d bytes", d.footer.DiskType, d.size)
	if d.bat != nil {
		fmt.Fprintf(&b, ", %d-byte blocks", d.blockSize)
	}
	return b.String()
}
