package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Signature offsets and magics. Offsets are from the start of the
// partition; superblock-relative fields are named with their base.
const (
	extSuperOff           = 0x400   // ext superblock
	extMagicOff           = 0x38    // s_magic (in superblock)
	extCompatOff          = 0x5C    // s_feature_compat
	extIncompatOff        = 0x60    // s_feature_incompat
	extROCompatOff        = 0x64    // s_feature_ro_compat
	extUUIDOff            = 0x68    // s_uuid[16]
	extLabelOff           = 0x78    // s_volume_name[16]
	extMagic              = 0xEF53  //
	extCompatJournal      = 0x4     // has_journal
	ext3IncompatSupported = 0x16    // filetype | needs_recovery | meta_bg
	ext3ROCompatSupported = 0x7     // sparse_super | large_file | btree_dir
	xfsUUIDOff            = 0x20    // sb_uuid
	xfsLabelOff           = 0x6C    // sb_fname[12]
	btrfsSuperOff         = 0x10000 // primary btrfs superblock
	btrfsFSIDOff          = 0x20    // fsid[16]
	btrfsMagicOff         = 0x40    // "_BHRfS_M"
	btrfsLabelOff         = 0x12B   // label[256]
	isoPVDOff             = 0x8000  // primary volume descriptor (sector 16 of 2 KiB)
	isoVolumeIDOff        = 0x28    // volume identifier[32]
	isoCreatedOff         = 0x32D   // volume creation date[17]
	isoModifiedOff        = 0x33E   // volume modification date[17]
	luksUUIDOff           = 0xA8    // uuid[40], LUKS1 and LUKS2
	luks2LabelOff         = 0x18    // label[48], LUKS2 only
	swapUUIDOff           = 0x40C   // uuid[16]
	swapLabelOff          = 0x41C   // volume_name[16]
	lvmLabelSectors       = 4       // LABELONE may sit in any of sectors 0-3
)

func probeExt(p *probe) (Signature, bool) {
	sb := p.at(extSuperOff, 0x88)
	if sb == nil || binary.LittleEndian.Uint16(sb[extMagicOff:]) != extMagic {
		return Signature{}, false
	}
	compat := binary.LittleEndian.Uint32(sb[extCompatOff:])
	incompat := binary.LittleEndian.Uint32(sb[extIncompatOff:])
	ro := binary.LittleEndian.Uint32(sb[extROCompatOff:])
	kind := "ext2"
	switch {
	case incompat&^ext3IncompatSupported != 0 || ro&^ext3ROCompatSupported != 0:
		kind = "ext4"
	case compat&extCompatJournal != 0:
		kind = "ext3"
	}
	return Signature{Kind: kind, Label: cstring(sb[extLabelOff : extLabelOff+16]), UUID: uuidString(sb[extUUIDOff : extUUIDOff+16])}, true
}

func probeXFS(p *probe) (Signature, bool) {
	sb := p.at(0, 0x78)
	if sb == nil || string(sb[:4]) != "XFSB" {
		return Signature{}, false
	}
	return Signature{Kind: "xfs", Label: cstring(sb[xfsLabelOff : xfsLabelOff+12]), UUID: uuidString(sb[xfsUUIDOff : xfsUUIDOff+16])}, true
}

func probeBtrfs(p *probe) (Signature, bool) {
	sb := p.at(btrfsSuperOff, btrfsLabelOff+256)
	if sb == nil || string(sb[btrfsMagicOff:btrfsMagicOff+8]) != "_BHRfS_M" {
		return Signature{}, false
	}
	return Signature{Kind: "btrfs", Label: cstring(sb[btrfsLabelOff : btrfsLabelOff+256]), UUID: uuidString(sb[btrfsFSIDOff : btrfsFSIDOff+16])}, true
}

func probeISO9660(p *probe) (Signature, bool) {
	pvd := p.at(isoPVDOff, isoModifiedOff+17)
	if pvd == nil || string(pvd[1:6]) != "CD001" {
		return Signature{}, false
	}
	sig := Signature{Kind: "iso9660", Label: cstring(pvd[isoVolumeIDOff : isoVolumeIDOff+32])}
	// Like blkid, name the volume by its modification date, or failing
	// that its creation date (ISO 9660 has no UUID).
	for _, off := range []int{isoModifiedOff, isoCreatedOff} {
		if u := isoDate(pvd[off : off+16]); u != "" {
			sig.UUID = u
			break
		}
	}
	return sig, true
}

// isoDate formats a 16-digit ISO 9660 date "YYYYMMDDHHMMSScc" as
// "YYYY-MM-DD-HH-MM-SS-cc"; "" when it is unset or not digits.
func isoDate(d []byte) string {
	nonzero := false
	for _, c := range d {
		if c < '0' || c > '9' {
			return ""
		}
		nonzero = nonzero || c != '0'
	}
	if !nonzero {
		return ""
	}
	s := string(d)
	return s[0:4] + "-" + s[4:6] + "-" + s[6:8] + "-" + s[8:10] + "-" + s[10:12] + "-" + s[12:14] + "-" + s[14:16]
}

func probeLUKS(p *probe) (Signature, bool) {
	h := p.at(0, luksUUIDOff+40)
	if h == nil || !bytes.Equal(h[:6], []byte{'L', 'U', 'K', 'S', 0xBA, 0xBE}) {
		return Signature{}, false
	}
	sig := Signature{Kind: "luks", UUID: cstring(h[luksUUIDOff : luksUUIDOff+40])}
	if binary.BigEndian.Uint16(h[6:]) == 2 {
		sig.Label = cstring(h[luks2LabelOff : luks2LabelOff+48])
	}
	return sig, true
}

// probeLVM2 looks for an LVM2 physical volume label in sectors 0-3.
func probeLVM2(p *probe) (Signature, bool) {
	for i := int64(0); i < lvmLabelSectors; i++ {
		s := p.at(i*512, 512)
		if s == nil || string(s[:8]) != "LABELONE" || string(s[24:32]) != "LVM2 001" {
			continue
		}
		sig := Signature{Kind: "lvm2"}
		// label_header.offset_xl (0x14) points at the pv_header, whose
		// first 32 bytes are the PV UUID.
		if off := binary.LittleEndian.Uint32(s[0x14:]); off >= 32 && off <= 512-32 {
			sig.UUID = lvmUUID(s[off : off+32])
		}
		return sig, true
	}
	return Signature{}, false
}

// lvmUUID groups a 32-character PV UUID as LVM prints it (6-4-4-4-4-4-6).
func lvmUUID(u []byte) string {
	groups := []int{6, 4, 4, 4, 4, 4, 6}
	var out []byte
	at := 0
	for i, g := range groups {
		if i > 0 {
			out = append(out, '-')
		}
		out = append(out, u[at:at+g]...)
		at += g
	}
	return string(out)
}

func probeNTFS(p *probe) (Signature, bool) {
	b := p.at(0, 512)
	if b == nil || !isNTFS(b) {
		return Signature{}, false
	}
	return Signature{Kind: "ntfs", Label: ntfsLabel(p, b), UUID: fmt.Sprintf("%016X", binary.LittleEndian.Uint64(b[0x48:]))}, true
}

func isNTFS(b []byte) bool { return len(b) >= 512 && string(b[3:11]) == "NTFS    " }

func probeVFAT(p *probe) (Signature, bool) {
	b := p.at(0, 512)
	if b == nil || !isFAT(b) {
		return Signature{}, false
	}
	// FAT32 has no 16-bit FAT size (0x16) and keeps its extended BPB at
	// 0x40; FAT12/16 keep it at 0x24.
	ebpb := 0x24
	if binary.LittleEndian.Uint16(b[0x16:]) == 0 {
		ebpb = 0x40
	}
	sig := Signature{Kind: "vfat"}
	if b[ebpb+2] == 0x29 { // extended boot signature: serial and label follow
		serial := binary.LittleEndian.Uint32(b[ebpb+3:])
		sig.UUID = fmt.Sprintf("%04X-%04X", serial>>16, serial&0xFFFF)
		if l := cstring(b[ebpb+7 : ebpb+18]); l != "NO NAME" {
			sig.Label = l
		}
	}
	return sig, true
}

// isFAT checks a FAT boot sector's jump and BIOS parameter block.
func isFAT(b []byte) bool {
	if len(b) < 512 || !(b[0] == 0xEB && b[2] == 0x90 || b[0] == 0xE9) || isNTFS(b) {
		return false
	}
	bps := binary.LittleEndian.Uint16(b[0x0B:])
	spc := b[0x0D]
	reserved := binary.LittleEndian.Uint16(b[0x0E:])
	fats := b[0x10]
	media := b[0x15]
	pow2 := func(v uint16) bool { return v != 0 && v&(v-1) == 0 }
	return bps >= 512 && bps <= 4096 && pow2(bps) && pow2(uint16(spc)) &&
		reserved >= 1 && fats >= 1 && fats <= 4 && (media == 0xF0 || media >= 0xF8)
}

// probeSwap looks for the Linux swap signature at the end of the first
// page, for the page sizes Linux uses.
func probeSwap(p *probe) (Signature, bool) {
	for _, page := range []int64{4096, 8192, 16384, 65536} {
		m := p.at(page-10, 10)
		if m == nil || (string(m) != "SWAPSPACE2" && string(m) != "SWAP-SPACE") {
			continue
		}
		sig := Signature{Kind: "swap"}
		if h := p.at(0, swapLabelOff+16); h != nil && string(m) == "SWAPSPACE2" {
			sig.UUID = uuidString(h[swapUUIDOff : swapUUIDOff+16])
			sig.Label = cstring(h[swapLabelOff : swapLabelOff+16])
		}
		return sig, true
	}
	return Signature{}, false
}
