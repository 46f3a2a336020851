// Package dirblock reads and edits the entries of one ext directory leaf
// block (or inline-data region) held in memory: walking them with every
// rec_len and name_len bounded by the block, finding, inserting and
// removing entries as the kernel places them, building empty and "."/".."
// leaves, and the dirent tail checksum. It never touches an image; the
// directory engine in vfs/ext hands it blocks. Every function that returns
// without error leaves a block whose rec_len chain covers it exactly.
package dirblock

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Format says how entries are laid out in a leaf block or inline region.
type Format struct {
	BlockSize int  // filesystem block size (decides the rec_len encoding)
	Filetype  bool // the filetype feature: name_len is 8 bits, a type byte follows
	Tail      bool // metadata_csum: a dirent tail closes every leaf block
}

// Usable is the part of leaf b that entries cover.
func (lf Format) Usable(b []byte) []byte {
	if lf.Tail {
		return b[:len(b)-layout.DirentTailSize]
	}
	return b
}

// Slot is one entry of a leaf, live (ino != 0) or not.
type Slot struct {
	Off, RecLen, NameLen int
	Ino                  uint32
}

// Error describes a leaf whose entries cannot be walked; callers wrap it
// with the block and inode it belongs to.
type Error struct {
	Off    int
	Detail string
}

func (e *Error) Error() string { return fmt.Sprintf("entry at offset %d: %s", e.Off, e.Detail) }

// Walk calls fn for each entry of the usable part of b, bounding
// every rec_len by it and every live name_len by it and by 255, until fn
// returns true. The engine's reads and writes both walk leaves here.
func Walk(b []byte, lf Format, fn func(s Slot) bool) error {
	u := lf.Usable(b)
	for off := 0; off < len(u); {
		if off+layout.DirentHeaderSize > len(u) {
			return &Error{off, "truncated header"}
		}
		d, _ := layout.DecodeDirent(u[off:])
		s := Slot{Off: off, RecLen: d.RecLength(lf.BlockSize), NameLen: d.NameLength(lf.Filetype), Ino: d.Inode}
		switch {
		case s.RecLen < layout.DirentSize(1) || s.RecLen%4 != 0 || s.RecLen > len(u)-off:
			return &Error{off, fmt.Sprintf("rec_len %d", s.RecLen)}
		case s.Ino != 0 && (s.NameLen == 0 || s.NameLen > layout.MaxNameLen || layout.DirentSize(s.NameLen) > s.RecLen):
			return &Error{off, fmt.Sprintf("name_len %d does not fit rec_len %d", s.NameLen, s.RecLen)}
		}
		if fn(s) {
			return nil
		}
		off += s.RecLen
	}
	return nil
}

// Name returns the name of live slot s of b.
func Name(b []byte, s Slot) []byte {
	return b[s.Off+layout.DirentHeaderSize : s.Off+layout.DirentHeaderSize+s.NameLen]
}

// Find returns the live entry of b whose name match accepts.
func Find(b []byte, lf Format, match func([]byte) bool) (Slot, bool, error) {
	var found Slot
	ok := false
	err := Walk(b, lf, func(s Slot) bool {
		if s.Ino != 0 && match(Name(b, s)) {
			found, ok = s, true
		}
		return ok
	})
	return found, ok, err
}

// Room returns the offset of the first entry of b that can take a new
// entry needing need bytes: a dead entry as long, or a live one whose
// rec_len has that much slack past its name.
func Room(b []byte, lf Format, need int) (Slot, bool, error) {
	var found Slot
	ok := false
	err := Walk(b, lf, func(s Slot) bool {
		free := s.RecLen
		if s.Ino != 0 {
			free -= layout.DirentSize(s.NameLen)
		}
		if free >= need {
			found, ok = s, true
		}
		return ok
	})
	return found, ok, err
}

// Insert adds an entry to b if it has room, reusing a dead entry or
// splitting a live entry's slack, as the kernel does.
func Insert(b []byte, lf Format, name []byte, ino uint32, ftype uint8) (bool, error) {
	s, ok, err := Room(b, lf, layout.DirentSize(len(name)))
	if err != nil || !ok {
		return false, err
	}
	PutAt(b, lf, s, name, ino, ftype)
	return true, nil
}

// PutAt writes a new entry into slot s (which has room for it).
func PutAt(b []byte, lf Format, s Slot, name []byte, ino uint32, ftype uint8) {
	off, rl := s.Off, s.RecLen
	if s.Ino != 0 {
		used := layout.DirentSize(s.NameLen)
		binary.LittleEndian.PutUint16(b[off+4:], layout.EncodeRecLen(used))
		off, rl = off+used, rl-used
	}
	size := layout.DirentSize(len(name))
	clear(b[off : off+size])
	layout.PutDirent(b[off:], ino, rl, name, ftype, lf.Filetype)
}

// Remove removes the live entry match accepts: its space joins the
// entry before it, or, first in the block, it is marked unused (inode 0).
func Remove(b []byte, lf Format, match func([]byte) bool) (uint32, bool, error) {
	prev := -1
	var found Slot
	ok := false
	err := Walk(b, lf, func(s Slot) bool {
		if s.Ino != 0 && match(Name(b, s)) {
			found, ok = s, true
			return true
		}
		prev = s.Off
		return false
	})
	if err != nil || !ok {
		return 0, false, err
	}
	if prev < 0 {
		binary.LittleEndian.PutUint32(b[found.Off:], 0)
		return found.Ino, true, nil
	}
	d, _ := layout.DecodeDirent(b[prev:])
	merged := d.RecLength(lf.BlockSize) + found.RecLen
	binary.LittleEndian.PutUint16(b[prev+4:], layout.EncodeRecLen(merged))
	return found.Ino, true, nil
}

// Entry is a live entry lifted out of a leaf (its name copied).
type Entry struct {
	Name  []byte
	Ino   uint32
	Ftype uint8
	Hash  uint32
}

// Entries returns copies of the live entries of b.
func Entries(b []byte, lf Format) ([]Entry, error) {
	var out []Entry
	err := Walk(b, lf, func(s Slot) bool {
		if s.Ino != 0 {
			e := Entry{Name: append([]byte(nil), Name(b, s)...), Ino: s.Ino}
			if lf.Filetype {
				e.Ftype = b[s.Off+7]
			}
			out = append(out, e)
		}
		return false
	})
	return out, err
}

// Init makes b an empty leaf: one unused entry over the usable part,
// and the tail (its checksum still to be sealed).
func Init(b []byte, lf Format) {
	clear(b)
	layout.PutDirent(b, 0, len(lf.Usable(b)), nil, 0, lf.Filetype)
	if lf.Tail {
		layout.PutDirentTail(b, 0)
	}
}

// Fill makes b an empty leaf holding es, packed in order.
func Fill(b []byte, lf Format, es []Entry) error {
	Init(b, lf)
	for _, e := range es {
		if ok, err := Insert(b, lf, e.Name, e.Ino, e.Ftype); err != nil || !ok {
			return fmt.Errorf("%d entries do not fit a %d-byte leaf: %w", len(es), len(b), ErrNoRoom)
		}
	}
	return nil
}

// InitDot makes b the first block of a new directory: "." (rec_len
// 12) and ".." over the rest of the usable part.
func InitDot(b []byte, lf Format, self, parent uint32) {
	clear(b)
	dot := layout.DirentSize(1)
	layout.PutDirent(b, self, dot, []byte("."), layout.FTDir, lf.Filetype)
	layout.PutDirent(b[dot:], parent, len(lf.Usable(b))-dot, []byte(".."), layout.FTDir, lf.Filetype)
	if lf.Tail {
		layout.PutDirentTail(b, 0)
	}
}

// HasNames reports whether b holds a live entry other than "." and "..".
func HasNames(b []byte, lf Format) (bool, error) {
	found := false
	err := Walk(b, lf, func(s Slot) bool {
		if s.Ino != 0 {
			n := string(Name(b, s))
			found = n != "." && n != ".."
		}
		return found
	})
	return found, err
}

// Seal writes the tail checksum of leaf b (metadata_csum).
func Seal(b []byte, seed uint32) {
	layout.PutDirentTail(b, checksum(seed, b[:len(b)-layout.DirentTailSize]))
}

// ChecksumOK verifies the tail of leaf b.
func ChecksumOK(b []byte, seed uint32) (ok, hasTail bool) {
	t, _ := layout.DecodeDirentTail(b)
	if !t.IsTail() {
		return false, false
	}
	return t.Checksum == checksum(seed, b[:len(b)-layout.DirentTailSize]), true
}

// ErrNoRoom is returned when an entry does not fit where it must go.
var ErrNoRoom = errs.New(errs.ErrNoSpace, "no room in the directory block")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is ext's crc32c: seeded, without the final inversion.
func checksum(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}
