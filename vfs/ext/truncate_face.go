package ext

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var _ vfs.Truncater = (*FS)(nil)

// Truncate sets the size of the regular file p leads to (a final symlink
// followed with guest semantics, as truncate(2)), in one transaction.
// Shrinking frees the blocks past the new end through the engine's
// truncate; growing adds a hole (no block is allocated; the tail of the
// old last block is zeroed so the hole reads as zeros). An inline-data
// file grows in place while it fits its inode and is moved out to blocks
// first when it does not. A size past what the file's mapping addresses
// is refused (fs.ErrInvalid).
func (f *FS) Truncate(p string, size int64) error {
	defer f.wlock()()
	if size < 0 {
		return vfs.PathErr("truncate", p, fmt.Errorf("negative size %d: %w", size, fs.ErrInvalid))
	}
	r, err := vfs.Resolve[uint32](tree{f}, p, true)
	if err != nil {
		return vfs.Relabel("truncate", p, err)
	}
	if !r.Exists {
		return vfs.PathErr("truncate", p, fs.ErrNotExist)
	}
	if strings.HasSuffix(p, "/") {
		return vfs.PathErr("truncate", p, vfs.ErrIsDir)
	}
	err = f.inTx(func(t *tx) error {
		in, err := t.inode(r.Node)
		if err != nil {
			return err
		}
		if err := checkRegularWrite(in, false); err != nil {
			return err
		}
		if err := t.resize(in, size); err != nil {
			return err
		}
		t.touch(in)
		return nil
	})
	if err != nil {
		return vfs.PathErr("truncate", p, err)
	}
	return nil
}

// resize is Truncate's change to regular file in.
func (t *tx) resize(in *inode, size int64) error {
	if size <= in.size {
		return t.truncate(in, size)
	}
	if in.flag(layout.FlagInlineData) {
		if size <= int64(t.f.geo.inodeSize) { // never more than an inode holds
			err := t.growInline(in, size)
			if err == nil || !isNoRoom(err) {
				return err
			}
		}
		if err := t.uninline(in); err != nil {
			return err
		}
	}
	if err := t.checkMaxSize(in, size); err != nil {
		return err
	}
	if err := t.zeroPastEnd(in); err != nil {
		return err
	}
	t.setSize(in, size)
	t.dirtyInode(in)
	return nil
}

// checkMaxSize refuses a size whose last block in's mapping cannot
// address (2^32 blocks with extents; the triple-indirect reach of a block
// map).
func (t *tx) checkMaxSize(in *inode, size int64) error {
	bs := t.f.geo.blockSize
	last := uint64((size - 1) / bs)
	ok := last < maxLblk
	if ok && !in.flag(layout.FlagExtents) {
		_, ok = t.f.blockMapPath(last)
	}
	if !ok {
		return fmt.Errorf("inode %d: size %d is past what its block mapping addresses: %w", in.num, size, fs.ErrInvalid)
	}
	return nil
}

// zeroPastEnd zeroes the tail of the block holding in's last byte, past
// the end, so that growing the size exposes zeros there whatever the
// block held.
func (t *tx) zeroPastEnd(in *inode) error {
	bs := t.f.geo.blockSize
	if in.size%bs == 0 {
		return nil
	}
	p, _, err := t.mapBlock(in, uint64(in.size/bs), false)
	if err != nil || p == 0 {
		return err
	}
	if err := t.checkTarget(mapKind(in), in.num, in.size/bs, p); err != nil {
		return err
	}
	b, err := t.dataBlock(p, true)
	if err != nil {
		return err
	}
	clear(b[in.size%bs:])
	return nil
}
