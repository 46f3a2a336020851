package partition

import (
	"encoding/binary"
	"unicode/utf16"
)

// NTFS keeps its label in the $VOLUME_NAME attribute of MFT record 3
// ($Volume). Offsets in the boot sector and in an MFT record:
const (
	ntfsBytesPerSectorOff = 0x0B // u16
	ntfsSecPerClusterOff  = 0x0D // u8; above 0x80, 2^(256-v)
	ntfsMFTClusterOff     = 0x30 // u64 first cluster of the MFT
	ntfsClustPerRecordOff = 0x40 // i8; negative: record size is 2^-v bytes
	ntfsVolumeRecord      = 3    // $Volume
	ntfsUSAOffsetOff      = 0x04 // u16 update sequence array offset
	ntfsUSACountOff       = 0x06 // u16 update sequence entries (1 + sectors)
	ntfsFirstAttrOff      = 0x14 // u16 offset of the first attribute
	ntfsAttrVolumeName    = 0x60
	ntfsAttrEnd           = 0xFFFFFFFF
	ntfsFixupStride       = 512 // each 512 bytes of a record end in a fixup
)

// ntfsLabel reads the volume label, or "" when anything on the way is out
// of bounds or malformed.
func ntfsLabel(p *probe, boot []byte) string {
	off, size, ok := ntfsVolumeRecordAt(boot)
	if !ok {
		return ""
	}
	rec := p.at(off, size)
	if rec == nil || string(rec[:4]) != "FILE" || !ntfsFixup(rec) {
		return ""
	}
	return ntfsVolumeName(rec)
}

// ntfsVolumeRecordAt finds MFT record 3 from the boot sector, bounding
// every factor so the offset cannot overflow.
func ntfsVolumeRecordAt(b []byte) (off int64, size int, ok bool) {
	bps := int64(binary.LittleEndian.Uint16(b[ntfsBytesPerSectorOff:]))
	spc := int64(b[ntfsSecPerClusterOff])
	if spc > 0x80 {
		spc = 1 << (256 - spc)
	}
	cluster := bps * spc
	if bps < 256 || bps > 4096 || spc == 0 || cluster > 2<<20 {
		return 0, 0, false
	}
	if v := int8(b[ntfsClustPerRecordOff]); v < 0 {
		if v < -12 || v > -8 { // 256 B .. 4 KiB
			return 0, 0, false
		}
		size = 1 << -v
	} else {
		size = int(v) * int(cluster)
	}
	mft := binary.LittleEndian.Uint64(b[ntfsMFTClusterOff:])
	if size < 256 || size > 4096 || mft > 1<<40 {
		return 0, 0, false
	}
	return int64(mft)*cluster + ntfsVolumeRecord*int64(size), size, true
}

// ntfsFixup restores the last two bytes of each 512-byte stride of a
// record from its update sequence array, checking each against the
// sequence number.
func ntfsFixup(rec []byte) bool {
	usa := int(binary.LittleEndian.Uint16(rec[ntfsUSAOffsetOff:]))
	n := int(binary.LittleEndian.Uint16(rec[ntfsUSACountOff:]))
	if n < 1 || n-1 > len(rec)/ntfsFixupStride || usa+2*n > len(rec) {
		return false
	}
	seq := [2]byte{rec[usa], rec[usa+1]}
	for i := 1; i < n; i++ {
		end := i*ntfsFixupStride - 2
		if rec[end] != seq[0] || rec[end+1] != seq[1] {
			return false
		}
		copy(rec[end:end+2], rec[usa+2*i:usa+2*i+2])
	}
	return true
}

// ntfsVolumeName walks the attributes of a record for a resident
// $VOLUME_NAME. Each step advances by the attribute's length, at least 16
// bytes, so the walk ends within the record.
func ntfsVolumeName(rec []byte) string {
	a := int(binary.LittleEndian.Uint16(rec[ntfsFirstAttrOff:]))
	for a >= 0 && a+16 <= len(rec) {
		typ := binary.LittleEndian.Uint32(rec[a:])
		length := int(binary.LittleEndian.Uint32(rec[a+4:]))
		if typ == ntfsAttrEnd || length < 16 || length > len(rec)-a {
			return ""
		}
		if typ == ntfsAttrVolumeName && rec[a+8] == 0 && length >= 0x18 {
			vlen := int(binary.LittleEndian.Uint32(rec[a+0x10:]))
			voff := int(binary.LittleEndian.Uint16(rec[a+0x14:]))
			if voff > length || vlen > length-voff || vlen%2 != 0 {
				return ""
			}
			v := rec[a+voff : a+voff+vlen]
			u := make([]uint16, vlen/2)
			for i := range u {
				u[i] = binary.LittleEndian.Uint16(v[2*i:])
			}
			return string(utf16.Decode(u))
		}
		a += length
	}
	return ""
}
