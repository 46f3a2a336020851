package seed

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// isoBlock is the ISO9660 logical block size.
const isoBlock = 2048

// writeISO writes files as an ISO9660 image with Rock Ridge and Joliet to
// out (which must exist, empty), labelled label, every timestamp set to
// stamp, every owner root. go-diskfs builds the image from a scratch
// directory; it stamps the volume descriptors with the current time and
// the Rock Ridge entries with the scratch files' times and owners, so
// normalizeISO rewrites those fields afterwards: the same files give the
// same bytes.
func writeISO(out *os.File, label string, files []File, stamp time.Time) error {
	work, err := os.MkdirTemp("", "guestinject-seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := populate(work, files, stamp); err != nil {
		return err
	}
	iso, err := iso9660.Create(file.New(out, false), 0, 0, isoBlock, work)
	if err != nil {
		return fmt.Errorf("iso9660: %w", err)
	}
	if err := iso.Finalize(iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: label}); err != nil {
		return fmt.Errorf("iso9660: %w", err)
	}
	return normalizeISO(out, stamp)
}

// populate writes files under dir with their modes and the fixed time.
func populate(dir string, files []File, stamp time.Time) error {
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode()); err != nil {
			return err
		}
	}
	for d := range dirs {
		p := filepath.Join(dir, filepath.FromSlash(d))
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the root directory
		return err
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, stamp, stamp)
	})
}

// normalizeISO sets every date of the image in f — the volume
// descriptors' and each directory record's and Rock Ridge TF entry's — to
// stamp, and every Rock Ridge owner to 0:0. It walks the directory trees
// of the primary and the Joliet descriptor, reading each directory extent
// once and only inside the image.
func normalizeISO(f *os.File, stamp time.Time) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	n := &isoNormalizer{f: f, size: st.Size(), stamp: stamp.UTC(), seen: map[uint32]bool{}}
	for lba := int64(16); ; lba++ {
		vd, err := n.read(lba*isoBlock, isoBlock)
		if err != nil {
			return err
		}
		if string(vd[1:6]) != "CD001" {
			return fmt.Errorf("iso9660: block %d: not a volume descriptor", lba)
		}
		if vd[0] == 255 {
			return n.pad()
		}
		if vd[0] != 1 && vd[0] != 2 {
			continue
		}
		if vd[0] == 1 {
			n.blocks = int64(binary.LittleEndian.Uint32(vd[80:84]))
		}
		dec := decDate(n.stamp)
		copy(vd[813:830], dec)
		copy(vd[830:847], dec)
		copy(vd[847:864], decDate(time.Time{}))
		copy(vd[864:881], dec)
		root := vd[156 : 156+34]
		copy(root[18:25], recDate(n.stamp))
		if _, err := f.WriteAt(vd, lba*isoBlock); err != nil {
			return err
		}
		if vd[0] == 2 && string(vd[88:90]) == "%/" {
			if err := n.fixJoliet(vd); err != nil {
				return err
			}
		}
		if err := n.dir(binary.LittleEndian.Uint32(root[2:6]), binary.LittleEndian.Uint32(root[10:14])); err != nil {
			return err
		}
	}
}

type isoNormalizer struct {
	f     *os.File
	size  int64
	stamp time.Time
	seen  map[uint32]bool
	// blocks is the volume size the primary descriptor states
	blocks int64
	// pending continuation areas, normalized after the directory
	// extent that names them is written (they may share its blocks)
	pending []ce
}

// ce is a SUSP continuation area: block, offset in it, length.
type ce struct{ blk, at, length uint32 }

// continuations normalizes the pending continuation areas, each once.
func (n *isoNormalizer) continuations() error {
	done := map[ce]bool{}
	for len(n.pending) > 0 {
		c := n.pending[0]
		n.pending = n.pending[1:]
		if done[c] {
			continue
		}
		done[c] = true
		off := int64(c.blk)*isoBlock + int64(c.at)
		b, err := n.read(off, int64(c.length))
		if err != nil {
			return err
		}
		if err := n.susp(b); err != nil {
			return err
		}
		if _, err := n.f.WriteAt(b, off); err != nil {
			return err
		}
	}
	return nil
}

func (n *isoNormalizer) read(off, length int64) ([]byte, error) {
	if off < 0 || length < 0 || off+length > n.size {
		return nil, fmt.Errorf("iso9660: %d bytes at offset %d lie outside the %d-byte image", length, off, n.size)
	}
	b := make([]byte, length)
	_, err := n.f.ReadAt(b, off)
	return b, err
}

// dir normalizes the directory at block lba, size bytes long, and the
// directories below it.
func (n *isoNormalizer) dir(lba, size uint32) error {
	if n.seen[lba] {
		return nil
	}
	n.seen[lba] = true
	off := int64(lba) * isoBlock
	b, err := n.read(off, int64(size))
	if err != nil {
		return err
	}
	type sub struct{ lba, size uint32 }
	var subs []sub
	for i := 0; i < len(b); {
		l := int(b[i])
		if l == 0 { // records do not cross blocks: skip to the next
			i = (i/isoBlock + 1) * isoBlock
			continue
		}
		if l < 34 || i+l > len(b) {
			return fmt.Errorf("iso9660: directory at block %d: bad record length %d at %d", lba, l, i)
		}
		r := b[i : i+l]
		copy(r[18:25], recDate(n.stamp))
		nameLen := int(r[32])
		su := 33 + nameLen
		if nameLen%2 == 0 {
			su++
		}
		if su < l {
			if err := n.susp(r[su:]); err != nil {
				return fmt.Errorf("iso9660: directory at block %d: %w", lba, err)
			}
		}
		dot := nameLen == 1 && (r[33] == 0 || r[33] == 1)
		if r[25]&2 != 0 && !dot {
			subs = append(subs, sub{binary.LittleEndian.Uint32(r[2:6]), binary.LittleEndian.Uint32(r[10:14])})
		}
		i += l
	}
	if _, err := n.f.WriteAt(b, off); err != nil {
		return err
	}
	if err := n.continuations(); err != nil {
		return err
	}
	for _, s := range subs {
		if err := n.dir(s.lba, s.size); err != nil {
			return err
		}
	}
	return nil
}

// susp normalizes the System Use entries in b: Rock Ridge PX owners and
// TF times, following a continuation area (CE) once.
func (n *isoNormalizer) susp(b []byte) error {
	for i := 0; i+4 <= len(b); {
		l := int(b[i+2])
		if l < 4 || i+l > len(b) {
			return nil // padding or the end of the entries
		}
		e := b[i : i+l]
		switch string(e[:2]) {
		case "PX":
			if l >= 36 {
				for _, o := range []int{20, 28} { // uid, gid, both-endian
					binary.LittleEndian.PutUint32(e[o:], 0)
					binary.BigEndian.PutUint32(e[o+4:], 0)
				}
			}
		case "TF":
			width := 7
			if e[4]&0x80 != 0 {
				width = 17
			}
			for o := 5; o+width <= l; o += width {
				if width == 7 {
					copy(e[o:], recDate(n.stamp))
				} else {
					copy(e[o:], decDate(n.stamp))
				}
			}
		case "CE":
			if l >= 28 { // read after the record's own block is written
				n.pending = append(n.pending, ce{binary.LittleEndian.Uint32(e[4:8]), binary.LittleEndian.Uint32(e[12:16]), binary.LittleEndian.Uint32(e[20:24])})
			}
		case "ST":
			return nil
		}
		i += l
	}
	return nil
}

// recDate is a directory record's 7-byte date, UTC.
func recDate(t time.Time) []byte {
	t = t.UTC()
	return []byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// decDate is a volume descriptor's 17-byte date, UTC; the zero time is
// "not specified".
func decDate(t time.Time) []byte {
	if t.IsZero() {
		return append([]byte("0000000000000000"), 0)
	}
	t = t.UTC()
	return append([]byte(fmt.Sprintf("%04d%02d%02d%02d%02d%02d%02d", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7)), 0)
}

// fixJoliet points the Joliet tree's subdirectory records at the Joliet
// extents of those directories. go-diskfs v1.9.4 writes a Joliet extent
// for every directory and lists them right in the Joliet path table, but
// a subdirectory's record in its parent keeps the primary tree's extent
// (8.3 names read as UCS-2): below the root, Joliet readers saw garbage.
// The path table gives each directory's Joliet extent by path; every
// subdirectory record is re-pointed there, with that extent's size.
func (n *isoNormalizer) fixJoliet(svd []byte) error {
	ptSize := binary.LittleEndian.Uint32(svd[132:136])
	ptLoc := binary.LittleEndian.Uint32(svd[140:144])
	pt, err := n.read(int64(ptLoc)*isoBlock, int64(ptSize))
	if err != nil {
		return fmt.Errorf("iso9660: joliet path table: %w", err)
	}
	type entry struct {
		loc  uint32
		path string
	}
	var ents []entry
	byPath := map[string]uint32{}
	for i := 0; i+8 <= len(pt); {
		l := int(pt[i])
		if l == 0 || i+8+l > len(pt) {
			return fmt.Errorf("iso9660: joliet path table: bad entry at %d", i)
		}
		loc := binary.LittleEndian.Uint32(pt[i+2 : i+6])
		parent := int(binary.LittleEndian.Uint16(pt[i+6 : i+8]))
		name := pt[i+8 : i+8+l]
		p := ""
		if len(ents) > 0 {
			if parent < 1 || parent > len(ents) {
				return fmt.Errorf("iso9660: joliet path table: entry %d names parent %d", len(ents)+1, parent)
			}
			p = ents[parent-1].path + "/" + string(name)
		}
		ents = append(ents, entry{loc, p})
		byPath[p] = loc
		i += 8 + l + l%2
	}
	root := svd[156 : 156+34]
	return n.jolietDir(binary.LittleEndian.Uint32(root[2:6]), binary.LittleEndian.Uint32(root[10:14]), "", byPath, 0)
}

func (n *isoNormalizer) jolietDir(lba, size uint32, dir string, byPath map[string]uint32, depth int) error {
	if depth > 64 {
		return fmt.Errorf("iso9660: joliet tree deeper than 64")
	}
	off := int64(lba) * isoBlock
	b, err := n.read(off, int64(size))
	if err != nil {
		return err
	}
	type sub struct {
		lba, size uint32
		path      string
	}
	var subs []sub
	for i := 0; i < len(b); {
		l := int(b[i])
		if l == 0 {
			i = (i/isoBlock + 1) * isoBlock
			continue
		}
		if l < 34 || i+l > len(b) || 33+int(b[i+32]) > l {
			return fmt.Errorf("iso9660: joliet directory at block %d: bad record at %d", lba, i)
		}
		r := b[i : i+l]
		name := r[33 : 33+int(r[32])]
		dot := len(name) == 1 && (name[0] == 0 || name[0] == 1)
		if r[25]&2 != 0 && !dot {
			p := dir + "/" + string(name)
			loc, ok := byPath[p]
			if !ok {
				return fmt.Errorf("iso9660: joliet directory %q is not in the path table", p)
			}
			self, err := n.read(int64(loc)*isoBlock, 34)
			if err != nil {
				return err
			}
			sz := binary.LittleEndian.Uint32(self[10:14])
			binary.LittleEndian.PutUint32(r[2:6], loc)
			binary.BigEndian.PutUint32(r[6:10], loc)
			binary.LittleEndian.PutUint32(r[10:14], sz)
			binary.BigEndian.PutUint32(r[14:18], sz)
			subs = append(subs, sub{loc, sz, p})
		}
		i += l
	}
	if _, err := n.f.WriteAt(b, off); err != nil {
		return err
	}
	for _, s := range subs {
		if err := n.jolietDir(s.lba, s.size, s.path, byPath, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// pad extends the image to the volume size its primary descriptor states:
// go-diskfs stops at the last byte of the last file, and a seed attached
// as a CD-ROM or disk must hold the whole volume.
func (n *isoNormalizer) pad() error {
	want := n.blocks * isoBlock
	if n.blocks > 1<<22 || want < n.size {
		return fmt.Errorf("iso9660: the volume states %d blocks, the image holds %d bytes", n.blocks, n.size)
	}
	return n.f.Truncate(want)
}
