package vhdx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/internal/cache"
)

// Bounds.
const (
	MinBlockSize   = 1 << 20
	MaxBlockSize   = 256 << 20
	MaxVirtualSize = 64 << 40 // the format's limit
	batPage        = 4096
	batPages       = 64 // 256 KiB of BAT cached
)

// Disk is an open VHDX: an io.ReaderAt over its virtual disk.
type Disk struct {
	r          io.ReaderAt
	fileSize   int64
	header     Header
	size       int64
	blockSize  int64
	sector     int64
	chunkRatio int64
	batOff     int64
	batEntries int64
	pages      *cache.LRU[int64, []byte]
}

// Open validates the file identifier, the current header, the region
// table and the metadata of the VHDX file r (fileSize bytes). Every
// offset and length is checked against fileSize; the BAT is read lazily
// a page at a time.
func Open(r io.ReaderAt, fileSize int64) (*Disk, error) {
	d := &Disk{r: r, fileSize: fileSize, pages: cache.NewLRU[int64, []byte](batPages)}
	if fileSize < RegionOffset2+RegionTableSize {
		return nil, diskerr.Corrupt(0, "VHDX of %d bytes is smaller than its fixed headers", fileSize)
	}
	id := make([]byte, 8)
	if _, err := r.ReadAt(id, 0); err != nil {
		return nil, diskerr.At(0, "read VHDX file identifier", err)
	}
	if string(id) != FileIdentifier {
		return nil, diskerr.Corrupt(0, "VHDX file identifier %q", id)
	}
	if err := d.readHeader(); err != nil {
		return nil, err
	}
	if !d.header.LogGUID.IsZero() {
		return nil, diskerr.Unsupported("VHDX log is not empty (log GUID set, the file was not closed cleanly): replaying it is refused; open the disk once in Hyper-V or run 'qemu-img check -r all' on a copy")
	}
	bat, meta, err := d.readRegions()
	if err != nil {
		return nil, err
	}
	if err := d.readMetadata(meta); err != nil {
		return nil, err
	}
	if err := d.placeBAT(bat); err != nil {
		return nil, err
	}
	return d, nil
}

// readHeader takes the valid header with the higher sequence number.
func (d *Disk) readHeader() error {
	var best *Header
	var firstErr error
	buf := make([]byte, HeaderSize)
	for _, off := range []int64{HeaderOffset1, HeaderOffset2} {
		if _, err := d.r.ReadAt(buf, off); err != nil {
			return diskerr.At(off, "read VHDX header", err)
		}
		var h Header
		decode(buf, &h)
		var err error
		switch {
		case string(h.Signature[:]) != "head":
			err = diskerr.Corrupt(off, "VHDX header signature %q", h.Signature[:])
		case Checksum(buf) != h.Checksum:
			err = diskerr.Corrupt(off, "VHDX header checksum %#x, computed %#x", h.Checksum, Checksum(buf))
		case h.Version != 1:
			err = diskerr.Unsupported("VHDX header version %d", h.Version)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if best == nil || h.SequenceNumber > best.SequenceNumber {
			hc := h
			best = &hc
		}
	}
	if best == nil {
		return firstErr
	}
	d.header = *best
	return nil
}

// readRegions reads the first valid region table and returns the BAT and
// metadata regions. An unknown region marked required is refused.
func (d *Disk) readRegions() (bat, meta RegionEntry, err error) {
	buf := make([]byte, RegionTableSize)
	for _, off := range []int64{RegionOffset1, RegionOffset2} {
		if _, err = d.r.ReadAt(buf, off); err != nil {
			return bat, meta, diskerr.At(off, "read VHDX region table", err)
		}
		var h RegionTableHeader
		decode(buf, &h)
		switch {
		case string(h.Signature[:]) != "regi":
			err = diskerr.Corrupt(off, "VHDX region table signature %q", h.Signature[:])
		case Checksum(buf) != h.Checksum:
			err = diskerr.Corrupt(off, "VHDX region table checksum %#x, computed %#x", h.Checksum, Checksum(buf))
		case h.EntryCount > MaxRegionEntries:
			err = diskerr.Corrupt(off+8, "VHDX region table of %d entries", h.EntryCount)
		default:
			return d.regions(buf, off, int(h.EntryCount))
		}
	}
	return bat, meta, err
}

func (d *Disk) regions(buf []byte, off int64, n int) (bat, meta RegionEntry, err error) {
	var haveBAT, haveMeta bool
	for i := 0; i < n; i++ {
		var e RegionEntry
		at := 16 + i*32
		decode(buf[at:], &e)
		where := off + int64(at)
		fo, l := int64(e.FileOffset), int64(e.Length)
		if e.FileOffset%MiB != 0 || fo < MiB || e.FileOffset > uint64(d.fileSize) || l > d.fileSize-fo || l == 0 {
			return bat, meta, diskerr.Corrupt(where, "VHDX region %d at %#x, %d bytes, in a %d-byte file", i, e.FileOffset, e.Length, d.fileSize)
		}
		switch e.GUID {
		case RegionBAT:
			bat, haveBAT = e, true
		case RegionMetadata:
			meta, haveMeta = e, true
		default:
			if e.Required&1 != 0 {
				return bat, meta, diskerr.Unsupported("VHDX required region %x", e.GUID[:])
			}
		}
	}
	if !haveBAT || !haveMeta {
		return bat, meta, diskerr.Corrupt(off, "VHDX region table lacks the BAT or the metadata region")
	}
	return bat, meta, nil
}

// readMetadata reads the items the mapping needs; an unknown required
// item, or a parent, is refused.
func (d *Disk) readMetadata(region RegionEntry) error {
	base, rlen := int64(region.FileOffset), int64(region.Length)
	tbl := make([]byte, min(rlen, MetadataTableMax))
	if _, err := d.r.ReadAt(tbl, base); err != nil {
		return diskerr.At(base, "read VHDX metadata table", err)
	}
	var h MetadataTableHeader
	decode(tbl, &h)
	if string(h.Signature[:]) != "metadata" {
		return diskerr.Corrupt(base, "VHDX metadata signature %q", h.Signature[:])
	}
	if h.EntryCount > MaxMetaEntries || 32+int(h.EntryCount)*32 > len(tbl) {
		return diskerr.Corrupt(base+0x0a, "VHDX metadata table of %d entries", h.EntryCount)
	}
	var fp FileParameters
	var haveFP, haveSize, haveSector bool
	for i := 0; i < int(h.EntryCount); i++ {
		var e MetadataEntry
		decode(tbl[32+i*32:], &e)
		where := base + 32 + int64(i)*32
		if int64(e.Offset)+int64(e.Length) > rlen {
			return diskerr.Corrupt(where, "VHDX metadata item %d beyond its region", i)
		}
		item := func(n int) ([]byte, error) {
			if int(e.Length) < n {
				return nil, diskerr.Corrupt(where, "VHDX metadata item %d of %d bytes", i, e.Length)
			}
			b := make([]byte, n)
			if _, err := d.r.ReadAt(b, base+int64(e.Offset)); err != nil {
				return nil, diskerr.At(base+int64(e.Offset), "read VHDX metadata item", err)
			}
			return b, nil
		}
		switch e.ItemID {
		case MetaFileParameters:
			b, err := item(8)
			if err != nil {
				return err
			}
			decode(b, &fp)
			haveFP = true
		case MetaVirtualDiskSize:
			b, err := item(8)
			if err != nil {
				return err
			}
			v := binary.LittleEndian.Uint64(b)
			if v == 0 || v > MaxVirtualSize {
				return diskerr.Corrupt(base+int64(e.Offset), "VHDX virtual size %d", v)
			}
			d.size, haveSize = int64(v), true
		case MetaLogicalSector:
			b, err := item(4)
			if err != nil {
				return err
			}
			d.sector, haveSector = int64(binary.LittleEndian.Uint32(b)), true
		case MetaParentLocator:
			return diskerr.Unsupported("VHDX differencing disk (it needs its parent; convert it with 'qemu-img convert')")
		default:
			if !known(e.ItemID) && e.Flags&MetaRequired != 0 {
				return diskerr.Unsupported("VHDX required metadata item %x", e.ItemID[:])
			}
		}
	}
	switch {
	case !haveFP || !haveSize || !haveSector:
		return diskerr.Corrupt(base, "VHDX metadata lacks file parameters, virtual size or logical sector size")
	case fp.Flags&FileHasParent != 0:
		return diskerr.Unsupported("VHDX differencing disk (it needs its parent; convert it with 'qemu-img convert')")
	case fp.BlockSize < MinBlockSize || fp.BlockSize > MaxBlockSize || fp.BlockSize&(fp.BlockSize-1) != 0:
		return diskerr.Corrupt(base, "VHDX block size %d", fp.BlockSize)
	case d.sector != 512 && d.sector != 4096:
		return diskerr.Corrupt(base, "VHDX logical sector size %d", d.sector)
	case d.size%d.sector != 0:
		return diskerr.Corrupt(base, "VHDX virtual size %d is not a multiple of the %d-byte sector", d.size, d.sector)
	}
	d.blockSize = int64(fp.BlockSize)
	d.chunkRatio = (1 << 23) * d.sector / d.blockSize
	return nil
}

func known(g GUID) bool {
	for _, k := range knownMetadataEntries {
		if g == k {
			return true
		}
	}
	return false
}

// placeBAT checks the BAT region holds an entry for every payload block
// (with a sector bitmap entry after each chunk).
func (d *Disk) placeBAT(region RegionEntry) error {
	blocks := (d.size + d.blockSize - 1) / d.blockSize
	d.batEntries = blocks + (blocks-1)/d.chunkRatio
	d.batOff = int64(region.FileOffset)
	if d.batEntries*8 > int64(region.Length) {
		return diskerr.Corrupt(d.batOff, "VHDX BAT region of %d bytes for %d entries", region.Length, d.batEntries)
	}
	return nil
}

// entry returns the BAT entry of payload block b.
func (d *Disk) entry(b int64) (BATEntry, error) {
	i := b + b/d.chunkRatio
	if i >= d.batEntries {
		return 0, diskerr.At(b*d.blockSize, "VHDX read", diskerr.ErrOutOfRange)
	}
	pg := i * 8 / batPage
	page, ok := d.pages.Get(pg)
	if !ok {
		off := d.batOff + pg*batPage
		n := min(batPage, d.fileSize-off)
		page = make([]byte, batPage)
		if _, err := d.r.ReadAt(page[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, diskerr.At(off, "read VHDX BAT", err)
		}
		d.pages.Put(pg, page)
	}
	return BATEntry(binary.LittleEndian.Uint64(page[i*8%batPage:])), nil
}

// Size is the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Describe says what the disk is, for messages and inspect.
func (d *Disk) Describe() string {
	return fmt.Sprintf("vhdx, %d bytes, %d-byte blocks, %d-byte sectors", d.size, d.blockSize, d.sector)
}

// ReadAt reads the virtual disk: blocks not present, zero or unmapped
// read as zeros.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, diskerr.At(off, "VHDX read", diskerr.ErrOutOfRange)
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
		b, in := at/d.blockSize, at%d.blockSize
		q := p[done:min(len(p), done+int(min(int64(len(p)-done), d.blockSize-in)))]
		e, err := d.entry(b)
		if err != nil {
			return done, err
		}
		switch e.State() {
		case BlockNotPresent, BlockUndefined, BlockZero, BlockUnmapped:
			clear(q)
		case BlockFullyPresent:
			fo := e.Offset()
			if fo < MiB || fo > d.fileSize-d.blockSize {
				return done, diskerr.Corrupt(d.batOff+(b+b/d.chunkRatio)*8, "VHDX BAT entry of block %d: data at %#x beyond the %d-byte file", b, fo, d.fileSize)
			}
			if n, err := d.r.ReadAt(q, fo+in); n != len(q) {
				return done, diskerr.At(fo+in, "read VHDX block", errors.Join(err, io.ErrUnexpectedEOF))
			}
		default:
			return done, diskerr.Corrupt(d.batOff+(b+b/d.chunkRatio)*8, "VHDX BAT entry of block %d in state %d", b, e.State())
		}
		done += len(q)
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}
