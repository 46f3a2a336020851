package ext

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// The directory write engine works on blocks it is handed, never on the
// image: dirStore (dirwrite_tx.go adapts a transaction to it) gives it
// modifiable copies of a directory's logical blocks and appends blocks.
// Everything here keeps a block valid at each step it returns from:
// rec_len chains that cover the block exactly, the dirent tail and its
// checksum, dx count/limit pairs and dx tails.

// leafFmt says how entries are laid out in a leaf block or inline region.
type leafFmt struct {
	bs       int  // filesystem block size (decides the rec_len encoding)
	filetype bool // the filetype feature: name_len is 8 bits, a type byte follows
	tail     bool // metadata_csum: a dirent tail closes every leaf block
}

// usable is the part of leaf b that entries cover.
func (lf leafFmt) usable(b []byte) []byte {
	if lf.tail {
		return b[:len(b)-layout.DirentTailSize]
	}
	return b
}

// slot is one entry of a leaf, live (ino != 0) or not.
type slot struct {
	off, recLen, nameLen int
	ino                  uint32
}

// errLeaf describes a leaf whose entries cannot be walked; callers wrap it
// with the block and inode it belongs to.
type errLeaf struct {
	off    int
	detail string
}

func (e *errLeaf) Error() string { return fmt.Sprintf("entry at offset %d: %s", e.off, e.detail) }

// walkLeaf calls fn for each entry of the usable part of b, bounding
// every rec_len and name_len by it, until fn returns true.
func walkLeaf(b []byte, lf leafFmt, fn func(s slot) bool) error {
	u := lf.usable(b)
	for off := 0; off < len(u); {
		if off+layout.DirentHeaderSize > len(u) {
			return &errLeaf{off, "truncated header"}
		}
		d, _ := layout.DecodeDirent(u[off:])
		s := slot{off: off, recLen: d.RecLength(lf.bs), nameLen: d.NameLength(lf.filetype), ino: d.Inode}
		switch {
		case s.recLen < layout.DirentSize(1) || s.recLen%4 != 0 || s.recLen > len(u)-off:
			return &errLeaf{off, fmt.Sprintf("rec_len %d", s.recLen)}
		case s.ino != 0 && (s.nameLen == 0 || layout.DirentSize(s.nameLen) > s.recLen):
			return &errLeaf{off, fmt.Sprintf("name_len %d does not fit rec_len %d", s.nameLen, s.recLen)}
		}
		if fn(s) {
			return nil
		}
		off += s.recLen
	}
	return nil
}

// slotName returns the name of live slot s of b.
func slotName(b []byte, s slot) []byte {
	return b[s.off+layout.DirentHeaderSize : s.off+layout.DirentHeaderSize+s.nameLen]
}

// leafFind returns the live entry of b whose name match accepts.
func leafFind(b []byte, lf leafFmt, match func([]byte) bool) (slot, bool, error) {
	var found slot
	ok := false
	err := walkLeaf(b, lf, func(s slot) bool {
		if s.ino != 0 && match(slotName(b, s)) {
			found, ok = s, true
		}
		return ok
	})
	return found, ok, err
}

// leafRoom returns the offset of the first entry of b that can take a new
// entry needing need bytes: a dead entry as long, or a live one whose
// rec_len has that much slack past its name.
func leafRoom(b []byte, lf leafFmt, need int) (slot, bool, error) {
	var found slot
	ok := false
	err := walkLeaf(b, lf, func(s slot) bool {
		free := s.recLen
		if s.ino != 0 {
			free -= layout.DirentSize(s.nameLen)
		}
		if free >= need {
			found, ok = s, true
		}
		return ok
	})
	return found, ok, err
}

// leafInsert adds an entry to b if it has room, reusing a dead entry or
// splitting a live entry's slack, as the kernel does.
func leafInsert(b []byte, lf leafFmt, name []byte, ino uint32, ftype uint8) (bool, error) {
	s, ok, err := leafRoom(b, lf, layout.DirentSize(len(name)))
	if err != nil || !ok {
		return false, err
	}
	putEntryAt(b, lf, s, name, ino, ftype)
	return true, nil
}

// putEntryAt writes a new entry into slot s (which has room for it).
func putEntryAt(b []byte, lf leafFmt, s slot, name []byte, ino uint32, ftype uint8) {
	off, rl := s.off, s.recLen
	if s.ino != 0 {
		used := layout.DirentSize(s.nameLen)
		binary.LittleEndian.PutUint16(b[off+4:], layout.EncodeRecLen(used))
		off, rl = off+used, rl-used
	}
	size := layout.DirentSize(len(name))
	clear(b[off : off+size])
	layout.PutDirent(b[off:], ino, rl, name, ftype, lf.filetype)
}

// leafRemove removes the live entry match accepts: its space joins the
// entry before it, or, first in the block, it is marked unused (inode 0).
func leafRemove(b []byte, lf leafFmt, match func([]byte) bool) (uint32, bool, error) {
	prev := -1
	var found slot
	ok := false
	err := walkLeaf(b, lf, func(s slot) bool {
		if s.ino != 0 && match(slotName(b, s)) {
			found, ok = s, true
			return true
		}
		prev = s.off
		return false
	})
	if err != nil || !ok {
		return 0, false, err
	}
	if prev < 0 {
		binary.LittleEndian.PutUint32(b[found.off:], 0)
		return found.ino, true, nil
	}
	d, _ := layout.DecodeDirent(b[prev:])
	merged := d.RecLength(lf.bs) + found.recLen
	binary.LittleEndian.PutUint16(b[prev+4:], layout.EncodeRecLen(merged))
	return found.ino, true, nil
}

// leafEntry is a live entry lifted out of a leaf (its name copied).
type leafEntry struct {
	name  []byte
	ino   uint32
	ftype uint8
	hash  uint32
}

// leafEntries returns copies of the live entries of b.
func leafEntries(b []byte, lf leafFmt) ([]leafEntry, error) {
	var out []leafEntry
	err := walkLeaf(b, lf, func(s slot) bool {
		if s.ino != 0 {
			e := leafEntry{name: append([]byte(nil), slotName(b, s)...), ino: s.ino}
			if lf.filetype {
				e.ftype = b[s.off+7]
			}
			out = append(out, e)
		}
		return false
	})
	return out, err
}

// initLeaf makes b an empty leaf: one unused entry over the usable part,
// and the tail (its checksum still to be sealed).
func initLeaf(b []byte, lf leafFmt) {
	clear(b)
	layout.PutDirent(b, 0, len(lf.usable(b)), nil, 0, lf.filetype)
	if lf.tail {
		layout.PutDirentTail(b, 0)
	}
}

// fillLeaf makes b an empty leaf holding es, packed in order.
func fillLeaf(b []byte, lf leafFmt, es []leafEntry) error {
	initLeaf(b, lf)
	for _, e := range es {
		if ok, err := leafInsert(b, lf, e.name, e.ino, e.ftype); err != nil || !ok {
			return fmt.Errorf("%d entries do not fit a %d-byte leaf: %w", len(es), len(b), errNoRoom)
		}
	}
	return nil
}

// initDotLeaf makes b the first block of a new directory: "." (rec_len
// 12) and ".." over the rest of the usable part.
func initDotLeaf(b []byte, lf leafFmt, self, parent uint32) {
	clear(b)
	dot := layout.DirentSize(1)
	layout.PutDirent(b, self, dot, []byte("."), layout.FTDir, lf.filetype)
	layout.PutDirent(b[dot:], parent, len(lf.usable(b))-dot, []byte(".."), layout.FTDir, lf.filetype)
	if lf.tail {
		layout.PutDirentTail(b, 0)
	}
}

// leafHasNames reports whether b holds a live entry other than "." and "..".
func leafHasNames(b []byte, lf leafFmt) (bool, error) {
	found := false
	err := walkLeaf(b, lf, func(s slot) bool {
		if s.ino != 0 {
			n := string(slotName(b, s))
			found = n != "." && n != ".."
		}
		return found
	})
	return found, err
}

// sealLeaf writes the tail checksum of leaf b (metadata_csum).
func sealLeaf(b []byte, seed uint32) {
	layout.PutDirentTail(b, crc32c(seed, b[:len(b)-layout.DirentTailSize]))
}

// leafChecksumOK verifies the tail of leaf b.
func leafChecksumOK(b []byte, seed uint32) (ok, hasTail bool) {
	t, _ := layout.DecodeDirentTail(b)
	if !t.IsTail() {
		return false, false
	}
	return t.Checksum == crc32c(seed, b[:len(b)-layout.DirentTailSize]), true
}

// errNoRoom is returned when an entry does not fit where it must go.
var errNoRoom = errors.New("no room")
