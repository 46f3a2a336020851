package seed

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
)

// A vfat seed: FAT12 or FAT16 (whichever the cluster count makes it, as
// the FAT specification decides the type) with VFAT long names, the volume
// label in the boot sector and as the root directory's volume-ID entry
// (blkid reads the latter). The layout is fixed: 512-byte sectors, one
// reserved sector, two FATs, a 512-entry root directory, then the data
// clusters; directories first, each followed by its files, every chain
// contiguous. Every date is the stamp, so the same files give the same
// bytes.

// On-disk constants of FAT12/16.
const (
	fatSector      = 512
	fatRootEntries = 512
	fatDirent      = 32
	fatRootSectors = fatRootEntries * fatDirent / fatSector
	fatMaxClusters = 65524 // FAT16's largest count; 4085 and above is FAT16
	fat12Limit     = 4085
	fatMaxSPC      = 64 // 32 KiB clusters
	fatSlack       = 16 // free clusters left after the files

	fatAttrReadOnly = 0x01
	fatAttrVolumeID = 0x08
	fatAttrDir      = 0x10
	fatAttrArchive  = 0x20
	fatAttrLFN      = 0x0f
	fatLFNLast      = 0x40
	fatLFNChars     = 13
	fatMaxNameUnits = 255
)

// fatNode is a directory or file of the tree being written.
type fatNode struct {
	name     string
	dir      bool
	data     []byte
	mode     uint32
	children []*fatNode
	short    [11]byte
	cluster  uint32 // first cluster, 0 for an empty file
	clusters uint32
	slots    int // directory entries the node's name takes in its parent
}

// fatGeometry is the layout chosen for a tree.
type fatGeometry struct {
	spc        uint32 // sectors per cluster
	clusters   uint32
	fatSectors uint32
	total      uint32 // sectors
	fat16      bool
}

func (g fatGeometry) clusterBytes() uint32 { return g.spc * fatSector }
func (g fatGeometry) fatStart() int64      { return fatSector }
func (g fatGeometry) rootStart() int64 {
	return int64(1+2*g.fatSectors) * fatSector
}
func (g fatGeometry) clusterOff(c uint32) int64 {
	return g.rootStart() + fatRootSectors*fatSector + int64(c-2)*int64(g.clusterBytes())
}

// writeFAT writes files as a FAT12/16 image labelled label.
func writeFAT(w io.WriterAt, label string, files []File, stamp time.Time) error {
	if y := stamp.UTC().Year(); y < 1980 || y > 2107 {
		return fmt.Errorf("%w: vfat: timestamp %v: FAT dates run from 1980 to 2107", ErrInvalid, stamp)
	}
	if err := fatCheckLabel(label); err != nil {
		return err
	}
	root, err := fatTree(files)
	if err != nil {
		return err
	}
	rootSlots := 1 // the volume label
	for _, c := range root.children {
		rootSlots += c.slots
	}
	if rootSlots > fatRootEntries {
		return fmt.Errorf("%w: vfat: the root directory needs %d entries, FAT12/16 holds %d", ErrInvalid, rootSlots, fatRootEntries)
	}
	g, err := fatLayout(root)
	if err != nil {
		return err
	}
	fat := make([]uint32, g.clusters+2)
	next := uint32(2)
	fatAllocate(root, g, fat, &next)
	date, tm := fatDate(stamp)

	// Boot sector, FATs, root directory: one buffer written once.
	meta := make([]byte, g.rootStart()+fatRootSectors*fatSector)
	fatBoot(meta[:fatSector], g, label, fatVolumeID(files, label))
	fatTable(meta[g.fatStart():g.fatStart()+int64(g.fatSectors)*fatSector], fat, g.fat16)
	copy(meta[g.fatStart()+int64(g.fatSectors)*fatSector:], meta[g.fatStart():g.fatStart()+int64(g.fatSectors)*fatSector])
	rootDir := meta[g.rootStart():]
	var lab [11]byte
	fatPad(lab[:], label)
	fatEntry(rootDir[:fatDirent], lab, fatAttrVolumeID, 0, 0, date, tm)
	fatFillDir(rootDir[fatDirent:], root, date, tm)
	if _, err := w.WriteAt(meta, 0); err != nil {
		return err
	}
	if err := fatWriteData(w, root, 0, g, date, tm); err != nil {
		return err
	}
	// The last sector makes the image its full size even when the data
	// area ends in free clusters.
	_, err = w.WriteAt(make([]byte, fatSector), int64(g.total-1)*fatSector)
	return err
}

// fatCheckLabel accepts what a FAT volume label can hold: at most 11
// printable ASCII characters without the ones DOS names forbid.
func fatCheckLabel(label string) error {
	if label == "" || len(label) > 11 {
		return fmt.Errorf("%w: vfat: label %q: want 1 to 11 characters", ErrInvalid, label)
	}
	for _, c := range []byte(label) {
		if c < 0x20 || c > 0x7e || strings.IndexByte(`"*+,./:;<=>?[\]|`, c) >= 0 {
			return fmt.Errorf("%w: vfat: label %q: character %q is not allowed", ErrInvalid, label, c)
		}
	}
	return nil
}

// fatTree builds the directory tree of files, sorted by name, with short
// names and slot counts.
func fatTree(files []File) (*fatNode, error) {
	root := &fatNode{dir: true}
	for _, f := range files {
		parts := strings.Split(f.Path, "/")
		if f.Path == "" || path.Clean(f.Path) != f.Path || path.IsAbs(f.Path) || slices.Contains(parts, "..") {
			return nil, fmt.Errorf("%w: vfat: path %q: want a clean relative path", ErrInvalid, f.Path)
		}
		if len(f.Data) > 1<<32-1 {
			return nil, fmt.Errorf("%w: vfat: %s: %d bytes, FAT holds files under 4 GiB", ErrInvalid, f.Path, len(f.Data))
		}
		d := root
		for i, name := range parts {
			if err := fatCheckName(name); err != nil {
				return nil, fmt.Errorf("%w: vfat: path %q: %v", ErrInvalid, f.Path, err)
			}
			var c *fatNode
			for _, x := range d.children {
				if strings.EqualFold(x.name, name) {
					c = x
				}
			}
			last := i == len(parts)-1
			switch {
			case c == nil:
				c = &fatNode{name: name, dir: !last}
				if last {
					c.data, c.mode = f.Data, uint32(f.mode())
				}
				d.children = append(d.children, c)
			case c.name != name:
				return nil, fmt.Errorf("%w: vfat: %q and %q differ only in case, which FAT names do not tell apart", ErrInvalid, c.name, name)
			case last || !c.dir:
				return nil, fmt.Errorf("%w: vfat: path %q is given twice or is both a file and a directory", ErrInvalid, f.Path)
			}
			d = c
		}
	}
	fatNames(root)
	return root, nil
}

// fatCheckName accepts a long-name component.
func fatCheckName(name string) error {
	if name == "" || name == "." {
		return fmt.Errorf("empty name")
	}
	if n := len(utf16.Encode([]rune(name))); n > fatMaxNameUnits {
		return fmt.Errorf("name %q is %d UTF-16 units, FAT long names hold %d", name, n, fatMaxNameUnits)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("name %q: character %q is not allowed in a FAT long name", name, r)
		}
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return fmt.Errorf("name %q ends in a dot or space, which FAT drops", name)
	}
	return nil
}

// fatNames sorts every directory and gives each child its short name and
// its slot count (long-name entries plus the short entry).
func fatNames(d *fatNode) {
	slices.SortFunc(d.children, func(a, b *fatNode) int { return strings.Compare(a.name, b.name) })
	used := map[[11]byte]bool{}
	// Names that are exact short names keep them; the others get a
	// numbered tail after every exact one is taken.
	for _, c := range d.children {
		if s, ok := fatExactShort(c.name); ok {
			c.short, c.slots = s, 1
			used[s] = true
		}
	}
	for _, c := range d.children {
		if c.slots == 0 {
			c.short = fatTailShort(c.name, used)
			used[c.short] = true
			c.slots = 1 + (len(utf16.Encode([]rune(c.name)))+fatLFNChars-1)/fatLFNChars
		}
		if c.dir {
			fatNames(c)
		}
	}
}

// fatShortChar reports whether c may appear in a short name.
func fatShortChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'()-@^_`{}~", c) >= 0
}

// fatExactShort returns name as an 8.3 name when it is one exactly
// (upper case, valid characters), so no long name is needed.
func fatExactShort(name string) ([11]byte, bool) {
	var s [11]byte
	base, ext, dot := strings.Cut(name, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || dot && ext == "" || strings.Contains(ext, ".") {
		return s, false
	}
	for _, c := range []byte(base + ext) {
		if !fatShortChar(c) {
			return s, false
		}
	}
	fatPad(s[:8], base)
	fatPad(s[8:], ext)
	return s, true
}

// fatTailShort makes a "BASE~N.EXT" short name not in used.
func fatTailShort(name string, used map[[11]byte]bool) [11]byte {
	clean := func(s string) string {
		var b strings.Builder
		for _, r := range strings.ToUpper(s) {
			switch {
			case r == ' ' || r == '.':
			case r < 0x80 && fatShortChar(byte(r)):
				b.WriteRune(r)
			default:
				b.WriteByte('_')
			}
		}
		return b.String()
	}
	base, ext := strings.TrimLeft(name, "."), ""
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		base, ext = base[:i], base[i+1:]
	}
	base, ext = clean(base), clean(ext)
	if base == "" {
		base = "_"
	}
	if len(ext) > 3 {
		ext = ext[:3]
	}
	for n := 1; ; n++ {
		tail := fmt.Sprintf("~%d", n)
		b := base
		if len(b)+len(tail) > 8 {
			b = b[:8-len(tail)]
		}
		var s [11]byte
		fatPad(s[:8], b+tail)
		fatPad(s[8:], ext)
		if !used[s] {
			return s
		}
	}
}

// fatPad copies s into b, padding with spaces.
func fatPad(b []byte, s string) {
	for i := range b {
		b[i] = ' '
	}
	copy(b, s)
}

// fatClusters is the number of clusters n bytes take.
func fatClusters(n int, cb uint32) uint32 { return uint32((int64(n) + int64(cb) - 1) / int64(cb)) }

// fatDirBytes is the size of a subdirectory's entries ("." and ".." too).
func fatDirBytes(d *fatNode) int {
	n := 2
	for _, c := range d.children {
		n += c.slots
	}
	return n * fatDirent
}

// fatNeed is the clusters the tree under d takes with cb-byte clusters.
func fatNeed(d *fatNode, cb uint32) uint64 {
	var n uint64
	for _, c := range d.children {
		if c.dir {
			n += uint64(fatClusters(fatDirBytes(c), cb)) + fatNeed(c, cb)
		} else {
			n += uint64(fatClusters(len(c.data), cb))
		}
	}
	return n
}

// fatLayout picks the smallest cluster that fits the tree in FAT16's
// cluster count, and the geometry that follows.
func fatLayout(root *fatNode) (fatGeometry, error) {
	for spc := uint32(1); spc <= fatMaxSPC; spc *= 2 {
		need := fatNeed(root, spc*fatSector) + fatSlack
		if need > fatMaxClusters {
			continue
		}
		g := fatGeometry{spc: spc, clusters: uint32(need), fat16: need >= fat12Limit}
		fatBytes := (uint64(g.clusters) + 2) * 2
		if !g.fat16 {
			fatBytes = ((uint64(g.clusters)+2)*3 + 1) / 2
		}
		g.fatSectors = uint32((fatBytes + fatSector - 1) / fatSector)
		total := uint64(1+2*g.fatSectors+fatRootSectors) + uint64(g.clusters)*uint64(spc)
		if total > 1<<32-1 {
			break
		}
		g.total = uint32(total)
		return g, nil
	}
	return fatGeometry{}, fmt.Errorf("%w: vfat: the files need more clusters than FAT16 holds; use --fs iso9660", ErrInvalid)
}

// fatAllocate gives each directory, then each of its files, a contiguous
// chain, depth first.
func fatAllocate(d *fatNode, g fatGeometry, fat []uint32, next *uint32) {
	chain := func(n *fatNode, size int) {
		n.clusters = fatClusters(size, g.clusterBytes())
		if n.clusters == 0 {
			return
		}
		n.cluster = *next
		for i := uint32(0); i < n.clusters; i++ {
			c := *next + i
			fat[c] = c + 1
		}
		fat[*next+n.clusters-1] = 0xffff // end of chain, narrowed for FAT12 when written
		*next += n.clusters
	}
	for _, c := range d.children {
		if c.dir {
			chain(c, fatDirBytes(c))
		}
	}
	for _, c := range d.children {
		if !c.dir {
			chain(c, len(c.data))
		}
	}
	for _, c := range d.children {
		if c.dir {
			fatAllocate(c, g, fat, next)
		}
	}
}

// fatBoot fills the boot sector with the BIOS parameter block.
func fatBoot(b []byte, g fatGeometry, label string, volID uint32) {
	le := binary.LittleEndian
	copy(b, []byte{0xeb, 0x3c, 0x90})
	copy(b[3:11], "GUESTINJ")
	le.PutUint16(b[11:], fatSector)
	b[13] = byte(g.spc)
	le.PutUint16(b[14:], 1) // reserved sectors
	b[16] = 2               // FATs
	le.PutUint16(b[17:], fatRootEntries)
	if g.total < 1<<16 {
		le.PutUint16(b[19:], uint16(g.total))
	} else {
		le.PutUint32(b[32:], g.total)
	}
	b[21] = 0xf8 // fixed disk
	le.PutUint16(b[22:], uint16(g.fatSectors))
	le.PutUint16(b[24:], 32) // sectors per track
	le.PutUint16(b[26:], 64) // heads
	b[36] = 0x80             // drive number
	b[38] = 0x29             // extended boot signature
	le.PutUint32(b[39:], volID)
	fatPad(b[43:54], label)
	if g.fat16 {
		fatPad(b[54:62], "FAT16")
	} else {
		fatPad(b[54:62], "FAT12")
	}
	b[510], b[511] = 0x55, 0xaa
}

// fatVolumeID derives the volume serial from the content, so it is
// stable for the same input.
func fatVolumeID(files []File, label string) uint32 {
	h := crc32.NewIEEE()
	io.WriteString(h, label)
	for _, f := range files {
		io.WriteString(h, f.Path)
		h.Write([]byte{0})
		h.Write(f.Data)
	}
	return h.Sum32()
}

// fatTable encodes the FAT: the media entries, then the chains.
func fatTable(b []byte, fat []uint32, fat16 bool) {
	fat[0], fat[1] = 0xfff8, 0xffff
	for i, v := range fat {
		if fat16 {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
			continue
		}
		v &= 0xfff
		o := i * 3 / 2
		if i%2 == 0 {
			b[o] = byte(v)
			b[o+1] = b[o+1]&0xf0 | byte(v>>8)
		} else {
			b[o] = b[o]&0x0f | byte(v<<4)
			b[o+1] = byte(v >> 4)
		}
	}
}

// fatDate encodes t as a FAT date and time (two-second resolution).
func fatDate(t time.Time) (date, tm uint16) {
	t = t.UTC()
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm
}

// fatEntry fills one short directory entry.
func fatEntry(b []byte, name [11]byte, attr byte, cluster, size uint32, date, tm uint16) {
	le := binary.LittleEndian
	copy(b[:11], name[:])
	b[11] = attr
	le.PutUint16(b[14:], tm)
	le.PutUint16(b[16:], date)
	le.PutUint16(b[18:], date)
	le.PutUint16(b[20:], uint16(cluster>>16))
	le.PutUint16(b[22:], tm)
	le.PutUint16(b[24:], date)
	le.PutUint16(b[26:], uint16(cluster))
	le.PutUint32(b[28:], size)
}

// fatChecksum is the short-name checksum long-name entries carry.
func fatChecksum(s [11]byte) byte {
	var sum byte
	for _, c := range s {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// fatFillDir writes d's children's entries into b: the long-name entries
// (last part first) then the short entry of each.
func fatFillDir(b []byte, d *fatNode, date, tm uint16) {
	o := 0
	for _, c := range d.children {
		if c.slots > 1 {
			units := utf16.Encode([]rune(c.name))
			n := c.slots - 1
			padded := make([]uint16, n*fatLFNChars)
			for i := range padded {
				switch {
				case i < len(units):
					padded[i] = units[i]
				case i == len(units):
					padded[i] = 0
				default:
					padded[i] = 0xffff
				}
			}
			sum := fatChecksum(c.short)
			for k := n; k >= 1; k-- {
				e := b[o : o+fatDirent]
				e[0] = byte(k)
				if k == n {
					e[0] |= fatLFNLast
				}
				e[11], e[12], e[13] = fatAttrLFN, 0, sum
				part := padded[(k-1)*fatLFNChars : k*fatLFNChars]
				for i, u := range part {
					var at int
					switch {
					case i < 5:
						at = 1 + 2*i
					case i < 11:
						at = 14 + 2*(i-5)
					default:
						at = 28 + 2*(i-11)
					}
					binary.LittleEndian.PutUint16(e[at:], u)
				}
				o += fatDirent
			}
		}
		attr, size := byte(fatAttrArchive), uint32(len(c.data))
		if c.dir {
			attr, size = fatAttrDir, 0
		} else if c.mode&0o222 == 0 {
			attr |= fatAttrReadOnly
		}
		fatEntry(b[o:o+fatDirent], c.short, attr, c.cluster, size, date, tm)
		o += fatDirent
	}
}

// fatWriteData writes every subdirectory's clusters and every file's
// data under d (parent is d's own first cluster, 0 for the root).
func fatWriteData(w io.WriterAt, d *fatNode, self uint32, g fatGeometry, date, tm uint16) error {
	for _, c := range d.children {
		if !c.dir {
			if len(c.data) > 0 {
				if _, err := w.WriteAt(c.data, g.clusterOff(c.cluster)); err != nil {
					return err
				}
			}
			continue
		}
		buf := make([]byte, int(c.clusters)*int(g.clusterBytes()))
		var dot, dotdot [11]byte
		fatPad(dot[:], ".")
		fatPad(dotdot[:], "..")
		fatEntry(buf[0:], dot, fatAttrDir, c.cluster, 0, date, tm)
		fatEntry(buf[fatDirent:], dotdot, fatAttrDir, self, 0, date, tm)
		fatFillDir(buf[2*fatDirent:], c, date, tm)
		if _, err := w.WriteAt(buf, g.clusterOff(c.cluster)); err != nil {
			return err
		}
		if err := fatWriteData(w, c, c.cluster, g, date, tm); err != nil {
			return err
		}
	}
	return nil
}
