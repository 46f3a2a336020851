package ext

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Write-out of a Grow. Everything is built in memory first; the writes go
// new area first (the new groups' bitmaps, inode tables where they must
// be zeroed, backups), then the changed bitmaps of old groups, the resize
// inode, the primary descriptor table, and the primary superblock last:
// until that last write the filesystem still describes its old size, and
// what was written before it is space e2fsck sees as free or as the old
// reserved GDT blocks.

// write queues and performs every write of the growth.
func (g *grower) write() error {
	f := g.f
	bs := f.geo.blockSize
	var early, late []growWrite
	put := func(list *[]growWrite, blk uint64, buf []byte, src string) {
		*list = append(*list, growWrite{off: int64(blk) * bs, buf: buf, src: src})
	}
	// New groups' block bitmaps (initialised ones) and, without uninit
	// flags, their inode bitmaps and zeroed inode tables.
	news := make([]uint32, 0, len(g.bitmaps))
	for n := range g.bitmaps {
		news = append(news, n)
	}
	sort.Slice(news, func(i, j int) bool { return news[i] < news[j] })
	for _, n := range news {
		d := g.desc(n)
		if f.geo.metaCsum {
			d.SetBlockBitmapCsum(g.t.bitmapCsum(g.bitmaps[n], g.t.bbBytes()), f.geo.descSize)
		}
		put(&early, d.BlockBitmap(), g.bitmaps[n], "block bitmap")
	}
	if !g.csum {
		ib := make([]byte, bs)
		setRange(ib, uint64(f.geo.ipg), uint64(bs)*8)
		zero := make([]byte, bs)
		for n := g.oldGroups; n < g.newGroups; n++ {
			d := g.desc(n)
			put(&early, d.InodeBitmap(), ib, "inode bitmap")
			for i := uint64(0); i < f.itableBlocks(); i++ {
				put(&early, d.InodeTable()+i, zero, "inode table")
			}
		}
	}
	// Changed bitmaps of old groups.
	olds := make([]uint32, 0, len(g.touched))
	for n := range g.touched {
		olds = append(olds, n)
	}
	sort.Slice(olds, func(i, j int) bool { return olds[i] < olds[j] })
	for _, n := range olds {
		gr := g.t.space.groups[n]
		if f.geo.metaCsum {
			gr.desc.SetBlockBitmapCsum(g.t.bitmapCsum(gr.bb, g.t.bbBytes()), f.geo.descSize)
		}
		put(&late, gr.desc.BlockBitmap(), gr.bb, "block bitmap")
	}
	gdt, err := g.descTable()
	if err != nil {
		return err
	}
	sb, err := g.superblock()
	if err != nil {
		return err
	}
	// Backups in every group holding one, old and new.
	for n := uint32(1); n < g.newGroups; n++ {
		if !g.hasSuper(n) {
			continue
		}
		list := &early
		if n < g.oldGroups {
			list = &late
		}
		first := g.groupFirst(n)
		bsb, err := g.encodeSuper(sb, uint16(n))
		if err != nil {
			return err
		}
		*list = append(*list, growWrite{off: int64(first) * bs, buf: bsb, src: "backup superblock"})
		for i, b := range gdt {
			if g.oldStyle(uint32(i)) {
				put(list, first+1+uint64(i), b, "backup group descriptors")
			}
		}
	}
	if f.sb.FeatureIncompat.Has(layout.IncompatMetaBG) {
		g.metaDescWrites(gdt, func(blk uint64, b []byte, old bool) {
			if old {
				put(&late, blk, b, "group descriptors")
			} else {
				put(&early, blk, b, "group descriptors")
			}
		})
	}
	if f.sb.FeatureCompat.Has(layout.CompatResizeInode) {
		if err := g.resizeInode(func(blk uint64, b []byte, src string) { put(&late, blk, b, src) }); err != nil {
			return err
		}
	}
	for i, b := range gdt {
		if g.oldStyle(uint32(i)) {
			put(&late, f.sbBlock()+1+uint64(i), b, "group descriptors")
		}
	}
	psb, err := g.encodeSuper(sb, 0)
	if err != nil {
		return err
	}
	late = append(late, growWrite{off: layout.SuperblockOffset, buf: psb, src: "superblock"})
	for _, w := range append(early, late...) {
		if w.off < 0 || w.off+int64(len(w.buf)) > int64(g.newBlocks)*bs || w.off+int64(len(w.buf)) > f.size {
			return fmt.Errorf("ext: internal error: grow writes %s at %#x outside the filesystem", w.src, w.off)
		}
		if _, err := g.t.w.WriteAt(w.buf, w.off); err != nil {
			return fmt.Errorf("ext: growing: writing %s at offset %#x: %w", w.src, w.off, err)
		}
		g.rep.Writes++
		g.rep.Bytes += int64(len(w.buf))
	}
	return nil
}

// descTable builds the grown descriptor table: the old blocks with the
// changed old groups re-encoded, and the new groups' descriptors.
func (g *grower) descTable() ([][]byte, error) {
	f := g.f
	dpb, ds := f.geo.descPerBlock, f.geo.descSize
	out := make([][]byte, g.newDesc)
	for i := range out {
		buf := make([]byte, f.geo.blockSize)
		if uint32(i) < f.geo.descBlocks {
			b, err := f.block(f.descBlockLoc(uint32(i)), "group descriptor block", 0)
			if err != nil {
				return nil, err
			}
			copy(buf, b)
		}
		out[i] = buf
	}
	enc := func(n uint32, d *layout.GroupDesc) {
		raw := out[n/dpb][int(n%dpb)*ds : int(n%dpb+1)*ds]
		d.Encode(raw, ds)
		if f.hasGroupCsum() {
			c := f.descChecksum(n, raw)
			raw[layout.GroupDescCsumOffset], raw[layout.GroupDescCsumOffset+1] = byte(c), byte(c>>8)
		}
	}
	for n := range g.touched {
		enc(n, &g.t.space.groups[n].desc)
	}
	for _, n := range g.descOnly {
		enc(n, &g.t.space.groups[n].desc)
	}
	for n := g.oldGroups; n < g.newGroups; n++ {
		enc(n, g.desc(n))
	}
	return out, nil
}

// superblock is the grown primary superblock (unencoded).
func (g *grower) superblock() (*layout.Superblock, error) {
	f := g.f
	sb := *f.sb
	old := f.geo.blocksCount
	sb.BlocksCountLo = uint32(g.newBlocks)
	if sb.FeatureIncompat.Has(layout.Incompat64Bit) {
		sb.BlocksCountHi = uint32(g.newBlocks >> 32)
	}
	// The reserved share is kept, computed as resize2fs computes it.
	percent := float64(sb.RBlocksCount()) * 100.0 / float64(old)
	r := uint64(percent * float64(g.newBlocks) / 100.0)
	sb.RBlocksCountLo = uint32(r)
	if sb.FeatureIncompat.Has(layout.Incompat64Bit) {
		sb.RBlocksCountHi = uint32(r >> 32)
	}
	sb.SetFreeBlocksCount(g.freeBlocks)
	added := g.newGroups - g.oldGroups
	sb.InodesCount = g.newGroups * f.geo.ipg
	sb.FreeInodesCount += added * f.geo.ipg
	sb.ReservedGDTBlocks = uint16(g.newReserved)
	sb.BackupBgs = g.bgs
	// The overhead mke2fs recorded no longer holds; zero tells the
	// kernel to compute it again (resize2fs clears it too).
	sb.OverheadClusters = 0
	now := g.t.now.Unix()
	sb.Wtime, sb.WtimeHi = uint32(now), uint8(now>>32)
	return &sb, nil
}

// encodeSuper encodes sb as the copy in group n, with its checksum.
func (g *grower) encodeSuper(sb *layout.Superblock, n uint16) ([]byte, error) {
	c := *sb
	c.BlockGroupNr = n
	buf := make([]byte, layout.SuperblockSize)
	if err := c.Encode(buf); err != nil {
		return nil, err
	}
	if g.f.geo.metaCsum {
		putLE32(buf[layout.SuperblockChecksumOffset:], crc32c(^uint32(0), buf[:layout.SuperblockChecksumOffset]))
	}
	return buf, nil
}

// resizeInode rebuilds the resize inode over the reserved GDT blocks left,
// as e2fsprogs' ext2fs_create_resize_inode lays it out: its double
// indirect block lists the primary reserved GDT blocks, and each of those,
// as an indirect block, lists its backups in the groups holding one.
func (g *grower) resizeInode(put func(blk uint64, b []byte, src string)) error {
	f := g.f
	in, err := g.t.inode(layout.ResizeIno)
	if err != nil {
		return err
	}
	dind := uint64(in.raw.Block[layout.NDirBlocks+1])
	if !f.validBlock(dind) {
		return cannotGrow("the resize inode's double indirect block %d is not a valid block; run e2fsck", dind)
	}
	bs := f.geo.blockSize
	apb := uint32(bs / 4)
	var backups []uint32
	for n := uint32(1); n < g.newGroups; n++ {
		if g.hasSuper(n) {
			backups = append(backups, n)
		}
	}
	if uint32(len(backups)) > apb {
		return cannotGrow("%d superblock backups do not fit one indirect block of the resize inode", len(backups))
	}
	dbuf := make([]byte, bs)
	blocks := uint64(1)
	for r := uint32(0); r < g.newReserved; r++ {
		blk := f.sbBlock() + 1 + uint64(g.newDesc) + uint64(r)
		binary.LittleEndian.PutUint32(dbuf[4*((g.newDesc+r)%apb):], uint32(blk))
		ind := make([]byte, bs)
		for i, n := range backups {
			binary.LittleEndian.PutUint32(ind[4*i:], uint32(blk+uint64(n)*uint64(f.geo.bpg)))
		}
		blocks += 1 + uint64(len(backups))
		put(blk, ind, "reserved GDT block")
	}
	put(dind, dbuf, "resize inode")
	sectors := blocks * uint64(bs/512)
	if in.flag(layout.FlagHugeFile) {
		sectors = blocks
	}
	in.raw.BlocksLo, in.raw.BlocksHi = uint32(sectors), uint16(sectors>>32)
	g.t.dirtyInode(in)
	blk, off, err := g.t.inodeLoc(layout.ResizeIno)
	if err != nil {
		return err
	}
	b, err := f.block(blk, "inode table block", layout.ResizeIno)
	if err != nil {
		return err
	}
	it := append([]byte(nil), b...)
	g.t.encodeInode(in)
	copy(it[off:off+len(in.rec)], in.rec)
	put(blk, it, "inode table block")
	return nil
}

// oldStyle tells whether descriptor block i sits in the table after the
// superblock (all of them without meta_bg, those before s_first_meta_bg
// with it).
func (g *grower) oldStyle(i uint32) bool {
	sb := g.f.sb
	return !sb.FeatureIncompat.Has(layout.IncompatMetaBG) || i < sb.FirstMetaBg
}

// metaDescWrites gives each meta_bg descriptor block that changed (it
// holds a new group or a changed old one) to put at its three places: the
// first, second and last group of its meta group, after the superblock
// backup a group holds. old says the place is in an old group.
func (g *grower) metaDescWrites(gdt [][]byte, put func(blk uint64, b []byte, old bool)) {
	f := g.f
	dpb := f.geo.descPerBlock
	changed := map[uint32]bool{}
	for n := range g.touched {
		changed[n/dpb] = true
	}
	for _, n := range g.descOnly {
		changed[n/dpb] = true
	}
	for i := g.oldGroups / dpb; i < g.newDesc; i++ {
		changed[i] = true
	}
	for i := range changed {
		if g.oldStyle(i) {
			continue
		}
		for _, n := range []uint32{i * dpb, i*dpb + 1, i*dpb + dpb - 1} {
			if n >= g.newGroups {
				continue
			}
			blk := g.groupFirst(n)
			if g.hasSuper(n) {
				blk++
			}
			put(blk, gdt[i], n < g.oldGroups)
		}
	}
}
