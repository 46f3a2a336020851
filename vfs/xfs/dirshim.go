package xfs

// Thin directory-entry entry points over the short-form code of
// dirsf.go, so the vfs.FS write operations (facewrite.go) call the names
// the full directory layer (block, leaf, node and B+tree forms) will
// provide. That layer replaces this file; until then a directory in any
// form but short form is refused (ErrUnsupportedFeature), before any
// write.

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"

	"github.com/guestinject/guestinject/vfs/xfs/layout"
)

// dirAddEntry adds name → ino (of the given mode) to directory dir; a
// directory child adds one link to dir (its "..").
func (t *tx) dirAddEntry(dir uint64, name string, ino uint64, mode uint32, now time.Time) error {
	return t.sfAddEntry(dir, name, ino, mode, now)
}

// dirRemoveEntry removes name from directory dir and returns the inode
// it named; a directory child takes one link from dir (its "..").
func (t *tx) dirRemoveEntry(dir uint64, name string, now time.Time) (uint64, error) {
	b, c, fork, ents, err := t.sfDir(dir)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if e.name != name {
			continue
		}
		child, err := t.f.inode(e.ino)
		if err != nil {
			return 0, err
		}
		size := int(c.Size)
		copy(fork[e.pos:], fork[e.pos+e.size:size])
		clear(fork[size-e.size : size])
		fork[0]--
		if fork[1] != 0 && e.ino > 0xFFFFFFFF {
			fork[1]--
		}
		binary.BigEndian.PutUint64(b.data[0x38:], uint64(size-e.size)) // di_size
		if child.isDir() {
			if c.Nlink < 3 {
				return 0, at("directory inode", dir).corrupt("link count %d with a subdirectory", c.Nlink)
			}
			binary.BigEndian.PutUint32(b.data[0x10:], c.Nlink-1)
		}
		t.touchInode(b, c, now)
		return e.ino, nil
	}
	return 0, fmt.Errorf("xfs: %q in directory %d: %w", name, dir, fs.ErrNotExist)
}

// dirReplaceEntry points the existing entry name of directory dir at ino
// (of the given mode) and returns the inode it named before.
func (t *tx) dirReplaceEntry(dir uint64, name string, ino uint64, mode uint32, now time.Time) (uint64, error) {
	b, c, fork, ents, err := t.sfDir(dir)
	if err != nil {
		return 0, err
	}
	g := &t.f.geo
	for _, e := range ents {
		if e.name != name {
			continue
		}
		i8 := fork[1] != 0
		if ino > 0xFFFFFFFF && !i8 {
			return 0, unsupported("a short-form directory entry needing 8-byte inode numbers")
		}
		q := e.pos + 3 + len(name)
		if g.ftype {
			fork[q] = ftypeOf(mode)
			q++
		}
		if i8 {
			binary.BigEndian.PutUint64(fork[q:], ino)
		} else {
			binary.BigEndian.PutUint32(fork[q:], uint32(ino))
		}
		t.touchInode(b, c, now)
		return e.ino, nil
	}
	return 0, fmt.Errorf("xfs: %q in directory %d: %w", name, dir, fs.ErrNotExist)
}

// sfDir loads short-form directory dir for an edit: its buffer, core,
// fork area and entries.
func (t *tx) sfDir(dir uint64) (*txBuf, *layout.InodeCore, []byte, []sfEntry, error) {
	b, c, err := t.dirInodeBuf(dir)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if c.Format != layout.FormatLocal {
		return nil, nil, nil, nil, unsupported("changing an entry of directory %d in %s form (only short form is written yet)", dir, c.Format)
	}
	core := c.CoreSize()
	area := int(t.f.geo.inodeSize) - core
	if c.ForkOff != 0 {
		area = int(c.ForkOff) * 8
	}
	fork := b.data[core : core+area]
	_, ents, err := t.sfEntries(dir, fork, int(c.Size))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return b, c, fork, ents, nil
}
