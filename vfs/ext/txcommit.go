package ext

import (
	"fmt"
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// commit finishes the transaction and writes it: first everything that
// can fail without I/O (extent trees, frees, inode encoding, bitmaps and
// their checksums, descriptors, the superblock), then what the checks
// before the first write left pending (a journal replayed in memory:
// flushPending), then the blocks in the crash-safe order, then the
// superblock. A failure before the first write leaves the image unchanged.
func (t *tx) commit() error {
	if t.closed {
		return fmt.Errorf("ext: internal error: commit of a closed transaction")
	}
	defer t.abort()
	if err := t.prepare(); err != nil {
		return err
	}
	sbuf, sb, err := t.superblock()
	if err != nil {
		return err
	}
	if err := t.f.flushPending(t.w); err != nil { // a replay held in memory goes first
		return err
	}
	if err := t.writeBlocks(); err != nil {
		return err
	}
	if err := t.writeAt(sbuf, layout.SuperblockOffset, "superblock", 0); err != nil {
		return err
	}
	t.refreshCaches(sb)
	t.f.wr.fresh.record(t.space.allocated, t.space.released)
	return t.sync("after the superblock")
}

// prepare does every in-memory step of commit.
func (t *tx) prepare() error {
	if err := t.flushFiles(); err != nil {
		return err
	}
	if err := t.updateQuota(); err != nil { // after flushFiles: i_blocks are final
		return err
	}
	if err := t.applyInodeFrees(); err != nil {
		return err
	}
	if err := t.applyFrees(); err != nil {
		return err
	}
	if err := t.checkWrites(); err != nil {
		return err
	}
	if err := t.flushInodes(); err != nil {
		return err
	}
	if err := t.flushGroups(); err != nil {
		return err
	}
	for _, b := range t.blocks {
		if b.seal != nil {
			b.seal(b.buf)
		}
	}
	return nil
}

// flushGroups registers changed bitmaps, sets their checksums and the
// descriptors' flags, and encodes the descriptors with their checksums.
func (t *tx) flushGroups() error {
	f := t.f
	for g, gr := range t.space.groups {
		d := &gr.desc
		if gr.bbDirty {
			t.blocks[d.BlockBitmap()] = &txBlock{num: d.BlockBitmap(), kind: kindBitmap, buf: gr.bb}
			d.Flags &^= layout.GroupBlockUninit
			if f.geo.metaCsum {
				d.SetBlockBitmapCsum(t.bitmapCsum(gr.bb, t.bbBytes()), f.geo.descSize)
			}
			gr.descDirty = true
		}
		if gr.ibDirty {
			t.blocks[d.InodeBitmap()] = &txBlock{num: d.InodeBitmap(), kind: kindBitmap, buf: gr.ib}
			d.Flags &^= layout.GroupInodeUninit
			if f.geo.metaCsum {
				d.SetInodeBitmapCsum(t.bitmapCsum(gr.ib, t.ibBytes()), f.geo.descSize)
			}
			gr.descDirty = true
		}
		if !gr.descDirty {
			continue
		}
		blk := f.descBlockLoc(g / f.geo.descPerBlock)
		b, err := t.metaBlock(blk, kindGDT)
		if err != nil {
			return err
		}
		off := int(g%f.geo.descPerBlock) * f.geo.descSize
		raw := b[off : off+f.geo.descSize]
		d.Encode(raw, f.geo.descSize)
		if f.hasGroupCsum() {
			d.Checksum = f.descChecksum(g, raw)
			raw[layout.GroupDescCsumOffset] = byte(d.Checksum)
			raw[layout.GroupDescCsumOffset+1] = byte(d.Checksum >> 8)
		}
	}
	return nil
}

// superblock builds the new primary superblock: free counts, write time,
// kbytes written, features, checksum.
func (t *tx) superblock() ([]byte, *layout.Superblock, error) {
	sb := *t.f.sb
	free := int64(sb.FreeBlocksCount()) + t.space.blocksDelta
	ifree := int64(sb.FreeInodesCount) + t.space.inodesDelta
	if free < 0 || ifree < 0 || uint64(free) > t.f.geo.blocksCount || ifree > int64(sb.InodesCount) {
		return nil, nil, corrupt("superblock", 0, 0, layout.SuperblockOffset, "free counts would become %d blocks, %d inodes", free, ifree)
	}
	sb.SetFreeBlocksCount(uint64(free))
	sb.FreeInodesCount = uint32(ifree)
	now := t.now.Unix()
	sb.Wtime, sb.WtimeHi = uint32(now), uint8(now>>32)
	if t.setLargeFile {
		sb.FeatureROCompat |= layout.ROCompatLargeFile
	}
	for _, b := range t.blocks {
		t.written += int64(len(b.buf))
	}
	sb.KbytesWritten += uint64(t.written+layout.SuperblockSize+1023) / 1024
	buf := make([]byte, layout.SuperblockSize)
	if err := sb.Encode(buf); err != nil {
		return nil, nil, err
	}
	if t.f.geo.metaCsum {
		sb.Checksum = crc32c(^uint32(0), buf[:layout.SuperblockChecksumOffset])
		putLE32(buf[layout.SuperblockChecksumOffset:], sb.Checksum)
	}
	return buf, &sb, nil
}

// writeBlocks writes every block, kind by kind in the crash-safe order,
// by block number within a kind.
func (t *tx) writeBlocks() error {
	all := make([]*txBlock, 0, len(t.blocks))
	for _, b := range t.blocks {
		all = append(all, b)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].kind != all[j].kind {
			return all[i].kind < all[j].kind
		}
		return all[i].num < all[j].num
	})
	bs := t.f.geo.blockSize
	for i, b := range all {
		if i > 0 && all[i-1].kind != b.kind && all[i-1].kind < kindBitmap {
			if err := t.sync("before the " + b.kind.String() + "s"); err != nil {
				return err
			}
		}
		if !t.f.validBlock(b.num) {
			return fmt.Errorf("ext: internal error: writing %s %d outside the filesystem", b.kind, b.num)
		}
		// Owned: after commit b.buf is dropped or kept read-only by
		// refreshCaches.
		if err := t.writeAtOwned(b.buf, int64(b.num)*bs, b.kind.String(), b.num, true); err != nil {
			return err
		}
	}
	return nil
}

// sync is the barrier between two stages of the write order: a flush of
// the device when it can (a staging area logs it and flushes the image
// there on commit), so the order holds across a power loss.
func (t *tx) sync(where string) error {
	if s, ok := t.w.(syncer); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("ext: flushing %s: %w", where, err)
		}
	}
	return nil
}

// ownedWriter is a device that can keep a written buffer rather than copy
// it (a staging area): the writer gives the buffer away and never changes
// it again.
type ownedWriter interface {
	WriteAtOwned(p []byte, off int64) (int, error)
}

// writeAt writes p at off, inside the image.
func (t *tx) writeAt(p []byte, off int64, what string, num uint64) error {
	return t.writeAtOwned(p, off, what, num, false)
}

// writeAtOwned is writeAt; with owned, p is never changed after (a
// transaction block at commit) and a device that can keep it does.
func (t *tx) writeAtOwned(p []byte, off int64, what string, num uint64, owned bool) error {
	if off < 0 || off+int64(len(p)) > t.f.size {
		return fmt.Errorf("ext: internal error: writing %s %d at %#x outside the image", what, num, off)
	}
	write := t.w.WriteAt
	if ow, ok := t.w.(ownedWriter); ok && owned {
		write = ow.WriteAtOwned
	}
	if _, err := write(p, off); err != nil {
		return fmt.Errorf("ext: writing %s %d at offset %#x: %w", what, num, off, err)
	}
	return nil
}

// refreshCaches brings the read caches in step with what was written.
func (t *tx) refreshCaches(sb *layout.Superblock) {
	f := t.f
	f.cache.forgetOwners(t.space.released)
	for n, b := range t.blocks {
		if _, ok := f.cache.blocks.Get(n); ok {
			f.cache.blocks.Put(n, b.buf) // the tx is done with it; cached blocks are read-only
		}
	}
	for g, gr := range t.space.groups {
		if gr.descDirty {
			d := gr.desc
			f.cache.descs.Put(g, &d)
		}
	}
	for ino := range t.inodes.dirty {
		in := t.inodes.copies[ino]
		if in.raw.LinksCount == 0 && !in.flag(layout.FlagEAInode) {
			f.cache.inodes.Delete(ino) // freed
			continue
		}
		c := in.clone()
		c.size, _ = f.inodeSize(c, -1)
		f.cache.inodes.Put(ino, c)
	}
	*f.sb = *sb
}
