package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// agInodes edits one AG's inode allocation state inside a transaction:
// the AGI, the inode btree and (when the filesystem has one) the free
// inode btree, kept in step, and the superblock's inode counts.
//
// The finobt holds exactly the inobt records with a free inode, with the
// same content; sb_icount and sb_ifree are the sums of the AGIs' count
// and freecount.
type agInodes struct {
	t      *tx
	ag     uint32
	agi    *txBuf
	inobt  *sbtree
	finobt *sbtree // nil without the finobt feature
	sparse bool
}

func (a *agInodes) agi32(off int) uint32 { return binary.BigEndian.Uint32(a.agi.data[off:]) }
func (a *agInodes) setAGI32(off int, v uint32) {
	binary.BigEndian.PutUint32(a.agi.data[off:], v)
	a.t.markDirty(a.agi)
}
func (a *agInodes) addAGI32(off int, d int64) { a.setAGI32(off, uint32(int64(a.agi32(off))+d)) }

// inodeGroup loads AG ag's AGI into the transaction (once).
func (t *tx) inodeGroup(ag uint32) (*agInodes, error) {
	if t.inos == nil {
		t.inos = map[uint32]*agInodes{}
	}
	if a, ok := t.inos[ag]; ok {
		return a, nil
	}
	g := &t.f.geo
	if uint64(ag) >= g.agCount {
		return nil, fmt.Errorf("xfs: AG %d does not exist (%d AGs)", ag, g.agCount)
	}
	agStart := int64(ag) * int64(g.agBlocks) << g.blockLog
	w := where{what: "AGI", ag: int64(ag), block: 0, off: agStart + layout.AGISector*g.sectSize}
	b, err := t.buf(w.off, int(g.sectSize), kindAGI, classAlloc, w)
	if err != nil {
		return nil, err
	}
	h, err := layout.DecodeAGI(b.data)
	if err != nil {
		return nil, w.corrupt("%v", err)
	}
	length := uint32(g.agBlocks)
	if uint64(ag) == g.agCount-1 {
		length = uint32(g.dBlocks - uint64(ag)*g.agBlocks)
	}
	maxIno := uint64(length) << g.inoPBLog
	switch {
	case h.Magic != layout.AGIMagic || h.VersionNum != 1:
		return nil, w.corrupt("bad magic %#x or version %d", h.Magic, h.VersionNum)
	case h.SeqNo != ag || h.Length != length:
		return nil, w.corrupt("AG number %d and length %d, want %d and %d", h.SeqNo, h.Length, ag, length)
	case g.crc && h.UUID != g.metaUUID:
		return nil, w.corrupt("UUID does not match the superblock's")
	case uint64(h.Count) > maxIno || h.FreeCount > h.Count:
		return nil, w.corrupt("%d inodes, %d free: out of range", h.Count, h.FreeCount)
	}
	sb := t.f.sb
	a := &agInodes{t: t, ag: ag, agi: b, sparse: g.crc && sb.FeaturesIncompat&layout.IncompatSpinodes != 0}
	inobtCount := g.crc && sb.FeaturesROCompat&layout.ROCompatInobtCnt != 0
	mk := func(what string, v4, v5 uint32, rootOff, levelOff, blocksOff int) *sbtree {
		bt := &sbtree{t: t, ag: ag, what: what, magic: v4, recSize: layout.InobtRecSize, keySize: layout.InobtKeySize}
		if g.crc {
			bt.magic = v5
		}
		bt.keyOf = func(rec []byte) []byte { return rec[:layout.InobtKeySize] }
		bt.cmp = func(x, y []byte) int { return cmp32(x, y) }
		bt.root = func() (uint32, int) { return a.agi32(rootOff), int(a.agi32(levelOff)) }
		bt.setRoot = func(agbno uint32, levels int) error {
			a.setAGI32(rootOff, agbno)
			a.setAGI32(levelOff, uint32(levels))
			return nil
		}
		// Inode btree blocks come from the AG's free space, as the
		// kernel's xfs_inobt_alloc_block does (no AGFL).
		bt.allocBlock = func() (uint32, error) {
			fa, err := t.allocGroup(ag)
			if err != nil {
				return 0, err
			}
			agbno, _, err := fa.alloc(1, 1, ownInobt)
			if err == nil && inobtCount {
				a.addAGI32(blocksOff, 1)
			}
			return agbno, err
		}
		bt.freeBlock = func(agbno uint32) error {
			fa, err := t.allocGroup(ag)
			if err != nil {
				return err
			}
			if inobtCount {
				a.addAGI32(blocksOff, -1)
			}
			return fa.free(agbno, 1, ownInobt)
		}
		bt.init()
		return bt
	}
	a.inobt = mk("inobt", layout.InobtMagic, layout.InobtCRCMagic, layout.AGIRootOffset, layout.AGILevelOffset, layout.AGIIBlocksOffset)
	if g.crc && sb.FeaturesROCompat&layout.ROCompatFinobt != 0 {
		a.finobt = mk("finobt", layout.FinobtMagic, layout.FinobtCRCMagic, layout.AGIFreeRootOffset, layout.AGIFreeLevelOffset, layout.AGIFBlocksOffset)
	}
	t.inos[ag] = a
	return a, nil
}

// maxInobtScan bounds the inobt records walked looking for a free inode
// on a filesystem without a finobt.
const maxInobtScan = 1 << 20

// allocFromChunk takes a free inode from an existing chunk of the AG:
// the first free inode of the lowest chunk that has one. It fails with
// ErrNoSpace when the AG has no free inode (newChunk adds some).
func (a *agInodes) allocFromChunk() (uint64, error) {
	if a.agi32(layout.AGIFreeCountOffset) == 0 {
		return 0, fmt.Errorf("%w: AG %d has no free inode in its existing chunks", ErrNoSpace, a.ag)
	}
	// The chunk: the finobt's first record, or the first inobt record
	// with a free inode.
	src := a.inobt
	if a.finobt != nil {
		src = a.finobt
	}
	path, err := src.edge(false)
	if err != nil {
		return 0, err
	}
	var rec layout.InobtRec
	found := false
	for i, ok := 0, path[0].blk.n() > 0; ok && i < maxInobtScan; i++ {
		rec = layout.DecodeInobtRec(path[0].rec(), a.sparse)
		if rec.FreeCount > 0 {
			found = true
			break
		}
		if src == a.finobt {
			return 0, src.where(path[0].blk.agbno).corrupt("finobt record for chunk %d has no free inode", rec.StartIno)
		}
		if ok, err = src.step(path, 1); err != nil {
			return 0, err
		}
	}
	if !found {
		return 0, a.inobt.where(0).corrupt("the AGI counts free inodes the inode btree does not have")
	}
	w := src.where(path[0].blk.agbno)
	if !rec.Consistent() {
		return 0, w.corrupt("inode chunk record %d: counts and masks disagree", rec.StartIno)
	}
	idx := bits.TrailingZeros64(rec.FreeInodes())
	agino := rec.StartIno + uint32(idx)
	g := &a.t.f.geo
	ino := uint64(a.ag)<<(g.agBlkLog+g.inoPBLog) | uint64(agino)
	if g.inoAddr(ino) < 0 {
		return 0, w.corrupt("inode chunk record %d lies outside the AG", rec.StartIno)
	}
	// Both btrees' records change in step.
	rec.Free &^= 1 << idx
	rec.FreeCount--
	var enc [layout.InobtRecSize]byte
	layout.EncodeInobtRec(enc[:], rec, a.sparse)
	if err := a.updateRec(a.inobt, rec.StartIno, enc[:], false); err != nil {
		return 0, err
	}
	if a.finobt != nil {
		if err := a.updateRec(a.finobt, rec.StartIno, enc[:], rec.FreeCount == 0); err != nil {
			return 0, err
		}
	}
	a.addAGI32(layout.AGIFreeCountOffset, -1)
	if err := a.t.addSB64(sbIFreeOffset, -1); err != nil {
		return 0, err
	}
	return ino, nil
}

// updateRec rewrites (or with remove, deletes) the record of the chunk
// at startIno in bt.
func (a *agInodes) updateRec(bt *sbtree, startIno uint32, rec []byte, remove bool) error {
	var key [layout.InobtKeySize]byte
	binary.BigEndian.PutUint32(key[:], startIno)
	path, err := bt.lookup(key[:])
	if err != nil {
		return err
	}
	if path[0].idx < 0 || bt.cmp(path[0].blk.key(path[0].idx), key[:]) != 0 {
		return bt.where(path[0].blk.agbno).corrupt("inode chunk %d is missing from the %s", startIno, bt.what)
	}
	if remove {
		return bt.remove(path)
	}
	bt.update(path, rec)
	return nil
}

// Superblock counter offsets.
const (
	sbICountOffset = 0x80
	sbIFreeOffset  = 0x88
)

// addSB64 adds d to a 64-bit superblock counter.
func (t *tx) addSB64(off int, d int64) error {
	g := &t.f.geo
	b, err := t.buf(0, int(g.sectSize), kindSuper, classSuper, at("superblock", 0))
	if err != nil {
		return err
	}
	v := int64(binary.BigEndian.Uint64(b.data[off:])) + d
	if v < 0 {
		return at("superblock", 0).corrupt("counter at %#x would go negative", off)
	}
	binary.BigEndian.PutUint64(b.data[off:], uint64(v))
	t.markDirty(b)
	return nil
}

// newInode describes an inode to initialise.
type newInode struct {
	mode     uint32 // type and permission bits (vfs.Unix*)
	uid, gid uint32
	nlink    uint32
	parent   uint64 // for a directory: its parent
	now      time.Time

	// What the new inode inherits from its directory (inheritFrom).
	flags            layout.InodeFlag
	flags2           layout.InodeFlag2 // version 3 inodes only
	projid           uint32
	extsize, cowsize uint32
}

// inheritFrom sets in n what the kernel gives a new inode made in
// directory parent (xfs_inode_inherit_flags and the initial project id):
// the project under PROJINHERIT, whatever the type; for a directory
// RTINHERIT, EXTSZINHERIT with the extent size hint and PROJINHERIT; for
// a regular file EXTSIZE with the hint under EXTSZINHERIT (realtime
// placement is never inherited: a realtime subvolume is refused); for
// both the NOATIME, NODUMP, SYNC, NOSYMLINKS, NODEFRAG and FILESTREAM
// flags, and on version 3 inodes COWEXTSIZE with its hint and DAX.
// Symlinks and device nodes get the project only. A hint the inode
// verifier would reject (zero, longer than an extent, or over half an AG
// of agBlocks) is dropped with its flag, as the kernel drops it, so a bad
// parent never makes a bad child; so is the copy-on-write hint on a
// filesystem without reflink.
func (n *newInode) inheritFrom(parent *layout.InodeCore, agBlocks uint64, reflink bool) {
	validHint := func(v uint32) bool { return v != 0 && v <= maxExtentBlocks && uint64(v) <= agBlocks/2 }
	pf := parent.Flags
	if pf&layout.FlagProjInherit != 0 {
		n.projid = parent.Projid()
	}
	var f layout.InodeFlag
	switch n.mode & vfs.UnixTypeMask {
	case vfs.UnixDir:
		f = pf & (layout.FlagRtInherit | layout.FlagExtSzInherit | layout.FlagProjInherit)
	case vfs.UnixRegular:
		if pf&layout.FlagExtSzInherit != 0 {
			f = layout.FlagExtSize
		}
	default:
		return
	}
	if pf&layout.FlagExtSzInherit != 0 {
		if validHint(parent.ExtSize) {
			n.extsize = parent.ExtSize
		} else {
			f &^= layout.FlagExtSize | layout.FlagExtSzInherit
		}
	}
	f |= pf & (layout.FlagNoAtime | layout.FlagNoDump | layout.FlagSync | layout.FlagNoSymlinks |
		layout.FlagNoDefrag | layout.FlagFilestream)
	n.flags = f
	if parent.Version >= 3 {
		n.flags2 = parent.Flags2 & layout.Flag2DAX
		if reflink && parent.Flags2&layout.Flag2CowExtSize != 0 && validHint(parent.CowExtSize) {
			n.flags2 |= layout.Flag2CowExtSize
			n.cowsize = parent.CowExtSize
		}
	}
}

// ialloc allocates an inode, preferring AG agHint, and initialises it as
// n describes: an empty regular file (extents format), an empty short-
// form directory naming its parent, a device or FIFO. It returns the
// inode number; the inode's buffer is held by the transaction.
func (t *tx) ialloc(agHint uint32, n newInode) (uint64, error) {
	g := &t.f.geo
	var ino uint64
	var last error
	for i := uint64(0); i < g.agCount; i++ {
		ag := uint32((uint64(agHint) + i) % g.agCount)
		a, err := t.inodeGroup(ag)
		if err != nil {
			return 0, err
		}
		if ino, last = a.allocFromChunk(); last == nil {
			break
		}
		if !isNoSpace(last) {
			return 0, last
		}
	}
	if last != nil {
		// No free inode anywhere: a new chunk, near the hint.
		for i := uint64(0); i < g.agCount && last != nil; i++ {
			ag := uint32((uint64(agHint) + i) % g.agCount)
			a, err := t.inodeGroup(ag)
			if err != nil {
				return 0, err
			}
			if last = a.newChunk(); last == nil {
				ino, last = a.allocFromChunk()
			}
			if last != nil && !errors.Is(last, errNoChunkRoom) {
				return 0, last
			}
		}
		if last != nil {
			return 0, fmt.Errorf("%w: no free inode, and no AG has room for a new inode chunk", ErrNoSpace)
		}
	}
	return ino, t.initInode(ino, n)
}

func isNoSpace(err error) bool { return errors.Is(err, vfs.ErrNoSpace) }

// initInode formats inode ino, which the inode btrees just gave out: it
// must be free on disk (mode 0, the right magic and number).
func (t *tx) initInode(ino uint64, n newInode) error {
	g := &t.f.geo
	off := g.inoAddr(ino)
	w := at("inode", ino)
	w.off = off
	// An inode of an existing chunk is written after the inode btrees
	// mark it used (classOwner): a crash between leaves an allocated
	// inode with mode 0, a leak, never a free inode that looks in use
	// (which the kernel's allocator refuses as corruption). One of a
	// chunk this transaction made is already a fresh buffer and keeps
	// its class: nothing on disk points at the chunk yet.
	b, err := t.buf(off, int(g.inodeSize), kindInode, classOwner, w)
	if err != nil {
		return err
	}
	d := b.data
	if binary.BigEndian.Uint16(d) != layout.InodeMagic {
		return w.corrupt("a free inode without the inode magic")
	}
	if mode := binary.BigEndian.Uint16(d[2:]); mode != 0 {
		return w.corrupt("the inode btrees call it free, but its mode is %#o", mode)
	}
	gen := binary.BigEndian.Uint32(d[0x5C:]) + 1
	version := byte(2)
	core := layout.InodeCoreV2Size
	if g.crc {
		version, core = 3, layout.InodeCoreV3Size
	}
	clear(d)
	c := layout.InodeCore{
		Magic:        layout.InodeMagic,
		Mode:         uint16(n.mode),
		Version:      version,
		UID:          n.uid,
		GID:          n.gid,
		Nlink:        n.nlink,
		AFormat:      layout.FormatExtents,
		Gen:          gen,
		NextUnlinked: layout.NullAGIno,
		ProjidLo:     uint16(n.projid),
		ProjidHi:     uint16(n.projid >> 16),
		Flags:        n.flags,
		ExtSize:      n.extsize,
	}
	big := g.bigtimeFS
	ts := layout.MakeTimestamp(n.now, big)
	c.Atime, c.Mtime, c.Ctime = ts, ts, ts
	if g.crc {
		c.ChangeCount = 1
		c.Crtime = ts
		c.Ino = ino
		c.UUID = g.metaUUID
		if big {
			c.Flags2 |= layout.Flag2Bigtime
		}
		c.Flags2 |= n.flags2
		c.CowExtSize = n.cowsize
	}
	fork := d[core:]
	switch n.mode & vfs.UnixTypeMask {
	case vfs.UnixRegular:
		c.Format = layout.FormatExtents
	case vfs.UnixDir:
		c.Format = layout.FormatLocal
		if n.parent > 0xFFFFFFFF {
			return unsupported("a short-form directory whose parent needs an 8-byte inode number")
		}
		binary.BigEndian.PutUint32(fork[2:], uint32(n.parent)) // count 0, i8count 0, parent
		c.Size = layout.DirSFHdrSize4
	case vfs.UnixSymlink:
		c.Format = layout.FormatLocal // the caller stores the target
	case vfs.UnixChar, vfs.UnixBlock, vfs.UnixFIFO, vfs.UnixSocket:
		c.Format = layout.FormatDev
	default:
		return fmt.Errorf("xfs: initialising inode %d with mode %#o: unsupported type", ino, n.mode)
	}
	var hdr [layout.InodeCoreV3Size]byte
	if err := layout.Encode(hdr[:], &c); err != nil {
		return err
	}
	copy(d[:core], hdr[:core]) // a version 2 core stops at 0x64
	t.markDirty(b)
	return nil
}

// newChunk allocates a full chunk of 64 inodes in the AG: blocks aligned
// to sb_inoalignmt (when the align feature is set) from the free space,
// every inode formatted free (as xfs_ialloc_inode_init does), and a record
// in the inobt and finobt; AGI count, freecount and newino, sb_icount
// and sb_ifree grow by 64. It fails with ErrNoSpace when the AG has no
// aligned room or the filesystem its inode share (sb_imax_pct).
func (a *agInodes) newChunk() error {
	t := a.t
	g := &t.f.geo
	sb := t.f.sb
	inoPB := uint64(1) << g.inoPBLog
	if inoPB > layout.InodesPerChunk {
		return unsupported("allocating inode chunks smaller than a block (%d inodes per block)", inoPB)
	}
	chunkBlocks := uint32(layout.InodesPerChunk / inoPB)
	align := uint32(1)
	if sb.Bits()&layout.VersionAlign != 0 && sb.InoAlignMT > 1 {
		align = sb.InoAlignMT
	}
	if align%chunkBlocks != 0 && chunkBlocks%align != 0 {
		return unsupported("inode alignment %d with %d-block chunks", align, chunkBlocks)
	}
	align = max(align, 1)
	if sb.IMaxPct != 0 {
		maxInodes := g.dBlocks * uint64(sb.IMaxPct) / 100 << g.inoPBLog
		icount := a.sbCounter(sbICountOffset)
		if icount+layout.InodesPerChunk > maxInodes {
			return fmt.Errorf("%w: inodes would exceed %d%% of the filesystem (sb_imax_pct)", errNoChunkRoom, sb.IMaxPct)
		}
	}
	fa, err := t.allocGroup(a.ag)
	if err != nil {
		return err
	}
	// Room for the chunk, a split of each inode btree and the free
	// list's refill must exist before anything changes: a failure past
	// this point is not "try another AG".
	_, il := a.inobt.root()
	resv, err := fa.kernelReserve()
	if err != nil {
		return err
	}
	need := uint64(chunkBlocks+align-1) + 2*uint64(il+1) + uint64(fa.minFreelist()) + uint64(resv)
	if uint64(fa.agf32(agfFreeBlks)) < need || fa.agf32(agfLongest) < chunkBlocks+align-1 {
		// No room for a full chunk: a part of one, as the kernel does
		// on a sparse inode filesystem.
		return a.newSparseChunk(fa, uint64(chunkBlocks), uint64(align), uint64(il+1), uint64(resv))
	}
	agbno, err := fa.allocAligned(chunkBlocks, align, ownInodes)
	if err != nil {
		return err
	}
	startIno := agbno << g.inoPBLog
	if err := a.formatInodes(startIno, layout.InodesPerChunk); err != nil {
		return err
	}
	rec := layout.InobtRec{StartIno: startIno, Count: layout.InodesPerChunk, FreeCount: layout.InodesPerChunk, Free: ^uint64(0)}
	var enc [layout.InobtRecSize]byte
	layout.EncodeInobtRec(enc[:], rec, a.sparse)
	if err := a.inobt.insert(enc[:]); err != nil {
		return err
	}
	if a.finobt != nil {
		if err := a.finobt.insert(enc[:]); err != nil {
			return err
		}
	}
	return a.countNew(startIno, layout.InodesPerChunk)
}

// formatInodes formats n new inodes of the AG from agino first free (as
// xfs_ialloc_inode_init does), in fresh buffers of the transaction.
func (a *agInodes) formatInodes(first uint32, n int) error {
	t := a.t
	g := &t.f.geo
	base := uint64(a.ag) << (g.agBlkLog + g.inoPBLog)
	for i := 0; i < n; i++ {
		ino := base | uint64(first) + uint64(i)
		w := at("inode", ino)
		b, err := t.newBuf(g.inoAddr(ino), int(g.inodeSize), kindInode, w)
		if err != nil {
			return err
		}
		d := b.data
		binary.BigEndian.PutUint16(d, layout.InodeMagic)
		d[4] = 2
		if g.crc {
			d[4] = 3
			binary.BigEndian.PutUint64(d[0x98:], ino)
			copy(d[0xA0:0xB0], g.metaUUID[:])
		}
		binary.BigEndian.PutUint32(d[0x5C:], chunkGen(ino))
		binary.BigEndian.PutUint32(d[0x60:], layout.NullAGIno)
		t.markDirty(b)
	}
	return nil
}

// countNew adds n new free inodes of the chunk at startIno to the AGI's
// and the superblock's counts.
func (a *agInodes) countNew(startIno uint32, n int64) error {
	a.addAGI32(layout.AGICountOffset, n)
	a.addAGI32(layout.AGIFreeCountOffset, n)
	a.setAGI32(layout.AGINewInoOffset, startIno)
	if err := a.t.addSB64(sbICountOffset, n); err != nil {
		return err
	}
	return a.t.addSB64(sbIFreeOffset, n)
}

// newSparseChunk allocates a part of an inode chunk when no full one
// fits, as the kernel's xfs_ialloc_ag_alloc does on a filesystem with
// sparse inodes: sb_spino_align blocks aligned to sb_spino_align, inside
// an aligned chunk that lies wholly in the AG (past its first chunk, as
// the kernel's min_agbno), owned by the inodes (rmap). The inobt and
// finobt record of that chunk is in sparse format: ir_holemask has a bit
// set per 4 inodes not allocated, ir_count the inodes present; when the
// chunk already has a sparse record, the new inodes merge into it (as
// xfs_inobt_insert_sprec does). It fails with errNoChunkRoom, before any
// change, without the feature or without room.
func (a *agInodes) newSparseChunk(fa *agAlloc, chunkBlocks, align, levels, resv uint64) error {
	t := a.t
	g := &t.f.geo
	if !a.sparse {
		return fmt.Errorf("%w: AG %d has no room for an inode chunk", errNoChunkRoom, a.ag)
	}
	sp := uint64(t.f.sb.SpinoAlign)
	inoPB := uint64(1) << g.inoPBLog
	// The geometry mkfs gives sparse inode filesystems: chunks aligned
	// to their size, sb_spino_align dividing it into whole hole bits.
	if align != chunkBlocks || sp == 0 || chunkBlocks%sp != 0 || sp*inoPB%layout.InodesPerHoleBit != 0 {
		return fmt.Errorf("%w: AG %d has no room for a full inode chunk, and sparse chunks of %d blocks in %d-block chunks aligned to %d are not supported",
			errNoChunkRoom, a.ag, sp, chunkBlocks, align)
	}
	length := uint64(fa.bno.agLength())
	lo, hi := align, length/align*align
	if hi < chunkBlocks || hi-chunkBlocks < lo {
		return fmt.Errorf("%w: AG %d is too small for a sparse inode chunk", errNoChunkRoom, a.ag)
	}
	hi -= chunkBlocks // the kernel's max_agbno: the chunk's whole range stays inside the AG
	need := sp + 2*levels + uint64(fa.minFreelist()) + resv
	noRoom := fmt.Errorf("%w: AG %d has no room for an inode chunk, full or sparse", errNoChunkRoom, a.ag)
	if uint64(fa.agf32(agfFreeBlks)) < need || uint64(fa.agf32(agfLongest)) < sp {
		return noRoom
	}
	if _, _, _, ok, err := fa.findAligned(uint32(sp), uint32(sp), uint32(lo), uint32(hi)); err != nil {
		return err
	} else if !ok {
		return noRoom
	}
	agbno, err := fa.allocAlignedIn(uint32(sp), uint32(sp), uint32(lo), uint32(hi), ownInodes)
	if err != nil {
		return err
	}
	chunk := uint64(agbno) / align * align
	startIno := uint32(chunk << g.inoPBLog)
	first := uint32(uint64(agbno) << g.inoPBLog)
	n := sp * inoPB
	bitsPer := uint64(layout.InodesPerHoleBit)
	present := uint16((1<<(n/bitsPer) - 1) << ((uint64(first - startIno)) / bitsPer))
	if err := a.formatInodes(first, int(n)); err != nil {
		return err
	}
	var key [layout.InobtKeySize]byte
	binary.BigEndian.PutUint32(key[:], startIno)
	path, err := a.inobt.lookup(key[:])
	if err != nil {
		return err
	}
	w := a.inobt.where(path[0].blk.agbno)
	var enc [layout.InobtRecSize]byte
	if path[0].idx >= 0 && a.inobt.cmp(path[0].blk.key(path[0].idx), key[:]) == 0 {
		// The chunk's record: the new inodes fill some of its holes.
		old := layout.DecodeInobtRec(path[0].rec(), true)
		if !old.Consistent() || old.HoleMask&present != present {
			return w.corrupt("sparse inode chunk %d: its record (holes %#04x) already holds the inodes of free blocks %d..%d", startIno, old.HoleMask, agbno, uint64(agbno)+sp-1)
		}
		rec := old
		rec.HoleMask &^= present
		rec.Count += uint8(n)
		rec.FreeCount += uint32(n)
		rec.Free |= ^layout.InobtRec{HoleMask: ^present}.Holes()
		layout.EncodeInobtRec(enc[:], rec, true)
		a.inobt.update(path, enc[:])
		if a.finobt != nil {
			if old.FreeCount == 0 {
				err = a.finobt.insert(enc[:])
			} else {
				err = a.updateRec(a.finobt, startIno, enc[:], false)
			}
			if err != nil {
				return err
			}
		}
		return a.countNew(startIno, int64(n))
	}
	// No record for the chunk; none may overlap its range either.
	binary.BigEndian.PutUint32(key[:], startIno+layout.InodesPerChunk-1)
	if path, err = a.inobt.lookup(key[:]); err != nil {
		return err
	}
	if path[0].idx >= 0 {
		prev := binary.BigEndian.Uint32(path[0].blk.key(path[0].idx))
		if prev >= startIno || uint64(prev)+layout.InodesPerChunk > uint64(startIno) {
			return a.inobt.where(path[0].blk.agbno).corrupt("inode chunk %d overlaps the free blocks of chunk %d", prev, startIno)
		}
	}
	rec := layout.InobtRec{StartIno: startIno, HoleMask: ^present, Count: uint8(n), FreeCount: uint32(n), Free: ^uint64(0)}
	layout.EncodeInobtRec(enc[:], rec, true)
	if err := a.inobt.insert(enc[:]); err != nil {
		return err
	}
	if a.finobt != nil {
		if err := a.finobt.insert(enc[:]); err != nil {
			return err
		}
	}
	return a.countNew(startIno, int64(n))
}

// errNoChunkRoom: an AG cannot take a new inode chunk, found before
// anything changed. It wraps ErrNoSpace.
var errNoChunkRoom = fmt.Errorf("%w (no room for an inode chunk)", ErrNoSpace)

// chunkGen is the generation a new chunk's inode starts with: varied per
// inode, as the kernel's random ones are, but reproducible.
func chunkGen(ino uint64) uint32 {
	x := ino*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	x ^= x >> 29
	return uint32(x)
}

// sbCounter reads a 64-bit superblock counter as the transaction sees it.
func (a *agInodes) sbCounter(off int) uint64 {
	g := &a.t.f.geo
	b, err := a.t.buf(0, int(g.sectSize), kindSuper, classSuper, at("superblock", 0))
	if err != nil {
		return ^uint64(0)
	}
	return binary.BigEndian.Uint64(b.data[off:])
}
