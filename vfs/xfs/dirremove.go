package xfs

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// dirRemoveEntry removes name from directory dir, whatever its form, and
// returns the inode it named (whose own link count the caller adjusts);
// a removed subdirectory's ".." no longer counts in dir's link count. A
// name not present is fs.ErrNotExist. Structures shrink as the kernel's
// do: an emptied data block (other than the first) is freed, node form
// goes back to leaf form when the entries fit one leaf, leaves and
// free-index blocks no longer needed are freed, a bmap btree fork goes
// back to an extent list. A block-form directory is rebuilt in its
// block; a directory never goes back from block to short form (the
// kernel would; xfs_repair accepts either).
func (t *tx) dirRemoveEntry(dir uint64, name string, now time.Time) (uint64, error) {
	return t.dirChange(dir, name, 0, 0, now)
}

// dirReplaceEntry points the existing entry name of directory dir at
// inode ino of the given mode (rename over an existing target) and
// returns the inode it named before; dir's link count follows the
// change of type (a subdirectory's ".." counts).
func (t *tx) dirReplaceEntry(dir uint64, name string, ino uint64, mode uint32, now time.Time) (uint64, error) {
	if ino == 0 || t.f.geo.inoAddr(ino) < 0 {
		return 0, fmt.Errorf("xfs: pointing %s of directory %d at inode %d, outside the filesystem: %w", quote(name), dir, ino, fs.ErrInvalid)
	}
	return t.dirChange(dir, name, ino, mode, now)
}

// dirChange removes name (ino 0) or repoints it at ino.
func (t *tx) dirChange(dir uint64, name string, ino uint64, mode uint32, now time.Time) (uint64, error) {
	if err := checkEntryName(dir, name); err != nil {
		return 0, err
	}
	_, c, err := t.dirInodeBuf(dir)
	if err != nil {
		return 0, err
	}
	var old uint64
	if c.Format == layout.FormatLocal {
		old, err = t.sfChange(dir, name, ino, mode)
		if err == errSFFull {
			if err = t.sfToBlock(dir); err == nil {
				old, err = t.extChange(dir, name, ino, mode)
			}
		}
	} else {
		old, err = t.extChange(dir, name, ino, mode)
	}
	if err != nil {
		return 0, err
	}
	oin, err := t.f.inode(old)
	if err != nil {
		return 0, err
	}
	newMode := uint32(0)
	if ino != 0 {
		newMode = mode
	}
	return old, t.dirTouch(dir, linkDelta(uint32(oin.core.Mode), newMode), now)
}

// sfChange removes or repoints name in a short-form directory, which is
// rewritten with 8-byte inode numbers only while some entry needs them.
// errSFFull: the repointed entry needs 8 bytes that no longer fit.
func (t *tx) sfChange(dir uint64, name string, ino uint64, mode uint32) (uint64, error) {
	g := &t.f.geo
	b, c, err := t.dirInodeBuf(dir)
	if err != nil {
		return 0, err
	}
	core := c.CoreSize()
	area := int(g.inodeSize) - core
	if c.ForkOff != 0 {
		area = int(c.ForkOff) * 8
	}
	fork := b.data[core : core+area]
	i8, ents, err := t.sfEntries(dir, fork, int(c.Size))
	if err != nil {
		return 0, err
	}
	parent := uint64(binary.BigEndian.Uint32(fork[2:]))
	if i8 {
		parent = binary.BigEndian.Uint64(fork[2:])
	}
	i := slices.IndexFunc(ents, func(e sfEntry) bool { return t.f.nameEqual([]byte(e.name), name) })
	if i < 0 {
		return 0, fmt.Errorf("xfs: %s in directory %d: %w", quote(name), dir, fs.ErrNotExist)
	}
	old := ents[i].ino
	if ino == 0 {
		ents = slices.Delete(ents, i, i+1)
	} else {
		ents[i].ino = ino
		if g.ftype {
			ents[i].ftype = ftypeOf(mode)
		}
	}
	// Encode: 8-byte numbers when the parent or any entry needs them.
	wide := parent > 0xFFFFFFFF
	i8count := 0
	for _, e := range ents {
		if e.ino > 0xFFFFFFFF {
			wide = true
			i8count++
		}
	}
	isz := 4
	if wide {
		isz = 8
	}
	out := make([]byte, 2+isz, area)
	out[0] = byte(len(ents))
	out[1] = byte(i8count)
	putIno := func(p []byte, v uint64) {
		if isz == 8 {
			binary.BigEndian.PutUint64(p, v)
		} else {
			binary.BigEndian.PutUint32(p, uint32(v))
		}
	}
	putIno(out[2:], parent)
	for _, e := range ents {
		n := 3 + len(e.name) + isz
		if g.ftype {
			n++
		}
		p := make([]byte, n)
		p[0] = byte(len(e.name))
		binary.BigEndian.PutUint16(p[1:], e.offset)
		q := 3 + copy(p[3:], e.name)
		if g.ftype {
			p[q] = e.ftype
			q++
		}
		putIno(p[q:], e.ino)
		out = append(out, p...)
	}
	if len(out) > area {
		return 0, errSFFull
	}
	clear(fork)
	copy(fork, out)
	binary.BigEndian.PutUint64(b.data[0x38:], uint64(len(out))) // di_size
	t.markDirty(b)
	return old, nil
}

// extChange removes or repoints name in an extent-mapped directory.
func (t *tx) extChange(dir uint64, name string, ino uint64, mode uint32) (uint64, error) {
	d, err := t.openDirW(dir)
	if err != nil {
		return 0, err
	}
	i, de, err := d.find(name)
	if err != nil {
		return 0, err
	}
	if i < 0 {
		return 0, fmt.Errorf("xfs: %s in directory %d: %w", quote(name), dir, fs.ErrNotExist)
	}
	db, pos, err := d.splitAddr(d.ents[i].addr)
	if err != nil {
		return 0, err
	}
	var b *txBuf
	if d.form == formBlock {
		b, err = d.block(0, kindDirData, d.blockMagic())
	} else {
		b, err = d.dataBlock(db)
	}
	if err != nil {
		return 0, err
	}
	if ino != 0 {
		// Repoint in place: the name, its hash and its place stay.
		binary.BigEndian.PutUint64(b.data[pos:], ino)
		if d.g.ftype {
			b.data[pos+9+len(de.name)] = ftypeOf(mode)
		}
		t.markDirty(b)
		return de.ino, nil
	}
	if d.form == formBlock {
		self, parent, ents, err := d.blockEntries()
		if err != nil {
			return 0, err
		}
		ents = slices.DeleteFunc(ents, func(e dirent) bool { return e.name == de.name })
		if ok, err := d.writeBlockForm(self, parent, ents); err != nil {
			return 0, err
		} else if !ok {
			return 0, fmt.Errorf("xfs: directory %d: a block with one entry fewer does not fit (a bug)", dir)
		}
	} else {
		w := d.where(uint64(db) * d.perDB)
		rs, err := d.regions(b.data, len(b.data), w)
		if err != nil {
			return 0, err
		}
		k := slices.IndexFunc(rs, func(r region) bool { return r.pos == pos })
		if k < 0 || rs[k].free {
			return 0, w.corrupt("leaf address points inside a region at %d", pos)
		}
		start, end := rs[k].pos, rs[k].pos+rs[k].size
		if k > 0 && rs[k-1].free {
			start = rs[k-1].pos
		}
		if k+1 < len(rs) && rs[k+1].free {
			end = rs[k+1].pos + rs[k+1].size
		}
		putFree(b.data, start, end-start)
		if d.bests[db], err = d.setBestFree(b.data, len(b.data), w); err != nil {
			return 0, err
		}
		t.markDirty(b)
		d.ents = slices.Delete(d.ents, i, i+1)
		if db != 0 && d.bests[db] == len(b.data)-t.f.dataHdrSize() {
			// An empty data block is freed, as the kernel does
			// (xfs_repair junks empty data blocks); the data area
			// ends at the last block still in use.
			if err := d.unmap(uint64(db) * d.perDB); err != nil {
				return 0, err
			}
			d.bests[db] = -1
			for len(d.bests) > 0 && d.bests[len(d.bests)-1] < 0 {
				d.bests = d.bests[:len(d.bests)-1]
			}
		}
	}
	if err := d.finish(); err != nil {
		return 0, err
	}
	return de.ino, nil
}
