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
		return fmt.Errorf("%w: AG %d has no room for an inode chunk", errNoChunkRoom, a.ag)
	}
	agbno, err := fa.allocAligned(chunkBlocks, align, ownInodes)
	if err != nil {
		return err
	}
	startIno := agbno << g.inoPBLog
	base := uint64(a.ag) << (g.agBlkLog + g.inoPBLog)
	for i := uint64(0); i < layout.InodesPerChunk; i++ {
		ino := base | uint64(startIno) + i
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
	a.addAGI32(layout.AGICountOffset, layout.InodesPerChunk)
	a.addAGI32(layout.AGIFreeCountOffset, layout.InodesPerChunk)
	a.setAGI32(layout.AGINewInoOffset, startIno)
	if err := t.addSB64(sbICountOffset, layout.InodesPerChunk); err != nil {
		return err
	}
	return t.addSB64(sbIFreeOffset, layout.InodesPerChunk)
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
