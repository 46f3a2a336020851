package ext

import (
	"fmt"
	"math/bits"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// ErrCannotGrow: the filesystem cannot be grown offline by this engine
// (the reason is in the message); nothing was written.
var ErrCannotGrow = errs.New(errs.ErrUnsupported, "ext: filesystem cannot grow")

// GrowReport says what Grow did.
type GrowReport struct {
	BlockSize            int
	OldBlocks, NewBlocks uint64
	OldGroups, NewGroups uint32
	OldInodes, NewInodes uint32
	Writes               int   // block-sized (or smaller) writes made
	Bytes                int64 // bytes written
}

// Changed reports whether the filesystem grew.
func (r GrowReport) Changed() bool { return r.NewBlocks > r.OldBlocks }

// Grow extends the filesystem to fill size bytes (at most the size it was
// opened with), offline, as resize2fs would: new block groups with their
// bitmaps and inode tables (left uninitialised where the descriptors carry
// the uninit flags, so the cost follows the new metadata, not the new
// size), group descriptors grown into the reserved GDT blocks (the resize
// inode is rebuilt over the blocks still reserved) or, with meta_bg, into
// new meta groups (each descriptor block and its two backups placed in
// its meta group's first, second and last group), flex_bg placement,
// sparse_super backups of the superblock and descriptors in every group
// that holds one (with sparse_super2 the second backup moves to the new
// last group and its old blocks are freed), the last group completed, superblock counts and every
// checksum. The block count is rounded down as resize2fs rounds it (to a
// whole page with blocks under 4 KiB; a last group too small for its own
// metadata and 50 blocks is dropped).
//
// Growth needing existing metadata to move (more descriptor blocks than
// the reserved GDT blocks can take, without meta_bg) is refused with
// ErrCannotGrow and the reason, as are meta_bg together with
// resize_inode, bigalloc and a size
// smaller than the filesystem; every refusal of the write engine (errors,
// dirty journal that cannot be replayed, unsupported features) refuses it
// too. Nothing is written when Grow fails before its first write.
//
// The FS reloads its superblock afterwards and may be used again.
func (f *FS) Grow(size int64) (GrowReport, error) {
	defer f.wlock()()
	t, err := f.begin()
	if err != nil {
		return GrowReport{}, err
	}
	defer t.abort()
	g, err := f.planGrow(size)
	if err != nil {
		return GrowReport{}, err
	}
	if !g.rep.Changed() {
		return g.rep, nil
	}
	g.t = t
	if err := g.build(); err != nil {
		return g.rep, err
	}
	if err := g.write(); err != nil {
		return g.rep, err
	}
	t.abort()
	return g.rep, f.reload()
}

// grower carries one Grow: the plan, then the new metadata built in
// memory, then the writes.
type grower struct {
	f   *FS
	t   *tx
	rep GrowReport

	newBlocks   uint64
	newGroups   uint32
	oldGroups   uint32
	newDesc     uint32 // descriptor blocks after growth
	newReserved uint32 // reserved GDT blocks after growth
	flexSize    uint32 // groups per flex group, 0 without flex_bg
	csum        bool   // descriptors carry uninit flags (gdt_csum/metadata_csum)

	descs   []layout.GroupDesc // the new groups' descriptors
	bitmaps map[uint32][]byte  // block bitmaps of new groups holding metadata
	touched map[uint32]bool    // old groups whose bitmap changed
	// allocated: old groups that received new groups' metadata.
	allocated map[uint32]bool

	freeBlocks uint64    // the superblock's free count after growth
	tailDone   bool      // the old last group's padding was cleared
	tailGrown  uint64    // blocks the old last group gained
	descOnly   []uint32  // old groups whose descriptor alone changed
	ss2        bool      // sparse_super2: backups in bgs only
	bgs        [2]uint32 // s_backup_bgs after growth
	lastDesc   bool      // the old last group's descriptor alone changed
	// uninitSet: uninitTail flagged the old last group BLOCK_UNINIT and
	// changed its free count by uninitDelta.
	uninitSet   bool
	uninitDelta int64
}

type growWrite struct {
	off int64
	buf []byte
	src string
}

func cannotGrow(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCannotGrow, fmt.Sprintf(format, args...))
}

// CheckGrow tells, reading nothing past the superblock, whether Grow
// could extend the filesystem to size bytes (the partition may not be
// that large yet), and to how many blocks and groups. It refuses what
// Grow refuses, except the checks that need the journal or the
// descriptors (Grow makes those).
func (f *FS) CheckGrow(size int64) (GrowReport, error) {
	defer f.rlock()()
	if err := checkWriteFeatures(f.sb); err != nil {
		return GrowReport{}, err
	}
	if !f.opts.Force {
		if err := f.checkCleanState(); err != nil {
			return GrowReport{}, err
		}
	}
	g, err := f.planGrowTo(size)
	if err != nil {
		return GrowReport{}, err
	}
	return g.rep, nil
}

// planGrow checks what Grow refuses and works out the new geometry.
func (f *FS) planGrow(size int64) (*grower, error) {
	if size > f.size {
		return nil, cannotGrow("%d bytes asked for, the partition holds %d", size, f.size)
	}
	return f.planGrowTo(size)
}

// planGrowTo is planGrow without the bound of the opened size.
func (f *FS) planGrowTo(size int64) (*grower, error) {
	sb, geo := f.sb, f.geo
	g := &grower{f: f, oldGroups: geo.groups, csum: f.hasGroupCsum(),
		ss2: sb.FeatureCompat.Has(layout.CompatSparseSuper2), bgs: sb.BackupBgs}
	g.rep = GrowReport{BlockSize: int(geo.blockSize), OldBlocks: geo.blocksCount, NewBlocks: geo.blocksCount,
		OldGroups: geo.groups, NewGroups: geo.groups, OldInodes: sb.InodesCount, NewInodes: sb.InodesCount}
	n := uint64(size) / uint64(geo.blockSize)
	if geo.blockSize < 4096 {
		n &^= uint64(4096/geo.blockSize) - 1 // resize2fs keeps whole pages
	}
	switch {
	case n < geo.blocksCount:
		return nil, cannotGrow("shrinking from %d to %d blocks is not supported", geo.blocksCount, n)
	case n == geo.blocksCount:
		return g, nil
	case geo.clusterSize != geo.blockSize:
		return nil, cannotGrow("bigalloc filesystems are not grown")
	case sb.FeatureIncompat.Has(layout.IncompatMetaBG) && sb.FeatureCompat.Has(layout.CompatResizeInode):
		return nil, cannotGrow("meta_bg together with resize_inode is not grown")
	case !sb.FeatureIncompat.Has(layout.Incompat64Bit) && n > 1<<32-1:
		return nil, cannotGrow("%d blocks do not fit in 32 bits without the 64bit feature", n)
	}
	bpg, first := uint64(geo.bpg), geo.firstData
	itb := f.itableBlocks()
	for {
		groups := (n - first + bpg - 1) / bpg
		if uint64(geo.ipg)*groups > 1<<32-1 {
			return nil, cannotGrow("%d groups of %d inodes exceed 2^32 inodes", groups, geo.ipg)
		}
		g.newGroups = uint32(groups)
		g.newDesc = (g.newGroups + geo.descPerBlock - 1) / geo.descPerBlock
		grow := g.newDesc - geo.descBlocks
		g.newReserved = 0
		if uint32(sb.ReservedGDTBlocks) > grow {
			g.newReserved = uint32(sb.ReservedGDTBlocks) - grow
		}
		metaBG := sb.FeatureIncompat.Has(layout.IncompatMetaBG)
		if metaBG {
			g.newReserved = uint32(sb.ReservedGDTBlocks) // new blocks go to new meta groups
		}
		if grow > uint32(sb.ReservedGDTBlocks) && !metaBG {
			return nil, cannotGrow("%d groups need %d descriptor blocks; %d exist and only %d reserved GDT blocks follow them, so existing metadata would have to move (resize2fs can, offline; this engine does not)",
				groups, g.newDesc, geo.descBlocks, sb.ReservedGDTBlocks)
		}
		overhead := 2 + itb
		lastHas := f.groupHasSuper(groups - 1)
		if g.ss2 {
			// As resize2fs: the last group will hold the second
			// backup, if there is one.
			lastHas = sb.BackupBgs[1] != 0
			if groups == 2 {
				lastHas = sb.BackupBgs[0] != 0
			}
		}
		if lastHas {
			overhead += 1 + uint64(g.newDesc) + uint64(g.newReserved)
		}
		rem := (n - first) % bpg
		if groups > 1 && rem != 0 && rem < overhead+50 {
			n -= rem
			continue
		}
		if groups == 1 && rem != 0 && rem < overhead {
			return nil, cannotGrow("%d blocks are too few for one group", n)
		}
		break
	}
	if n <= geo.blocksCount {
		return g, nil
	}
	if sb.FeatureCompat.Has(layout.CompatResizeInode) && n > 1<<32 {
		return nil, cannotGrow("the resize inode addresses blocks with 32 bits; %d blocks is past it", n)
	}
	g.newBlocks = n
	if g.ss2 && g.newGroups > g.oldGroups {
		// sparse_super2 keeps its second backup in the last group.
		if g.oldGroups == 1 {
			g.bgs[0] = 1
		}
		if (g.oldGroups < 3 && g.newGroups > 2) || g.bgs[1] != 0 {
			g.bgs[1] = g.newGroups - 1
		}
	}
	if sb.FeatureIncompat.Has(layout.IncompatFlexBG) && sb.LogGroupsPerFlex > 0 && sb.LogGroupsPerFlex < 31 {
		g.flexSize = 1 << sb.LogGroupsPerFlex
	}
	g.rep.NewBlocks, g.rep.NewGroups = n, g.newGroups
	g.rep.NewInodes = g.newGroups * geo.ipg
	return g, nil
}

// groupFirst and groupLast bound group n after growth.
func (g *grower) groupFirst(n uint32) uint64 { return g.f.groupFirst(n) }
func (g *grower) groupLast(n uint32) uint64 {
	return min(g.groupFirst(n)+uint64(g.f.geo.bpg), g.newBlocks) - 1
}
func (g *grower) groupLen(n uint32) uint64 { return g.groupLast(n) + 1 - g.groupFirst(n) }

// superRun is the run of superblock backup and descriptor blocks (the
// whole table and the reserved GDT blocks) at the start of group n.
func (g *grower) superRun(n uint32) uint64 { return g.superRunWith(n, g.hasSuper(n)) }

// superRunOld is superRun as the filesystem was before growth.
func (g *grower) superRunOld(n uint32) uint64 {
	return g.superRunWith(n, g.f.groupHasSuper(uint64(n)))
}

// hasSuper tells whether group n holds a superblock backup after growth.
func (g *grower) hasSuper(n uint32) bool {
	if !g.ss2 {
		return g.f.groupHasSuper(uint64(n))
	}
	return n == 0 || n == g.bgs[0] || n == g.bgs[1]
}

func (g *grower) superRunWith(n uint32, hasSuper bool) uint64 {
	f := g.f
	has := uint64(0)
	if hasSuper {
		has = 1
	}
	dpb := f.geo.descPerBlock
	switch {
	case !f.sb.FeatureIncompat.Has(layout.IncompatMetaBG):
		return has * (1 + uint64(g.newDesc) + uint64(g.newReserved))
	case n/dpb < f.sb.FirstMetaBg:
		return has * (1 + uint64(f.sb.FirstMetaBg))
	}
	if r := n % dpb; r == 0 || r == 1 || r == dpb-1 {
		return has + 1 // a meta group's descriptor block or one of its two backups
	}
	return has
}

// bitmap returns the block bitmap of group n to mark in: an old group's
// as the transaction loads it (the old last group's padding cleared up to
// its new end), a new group's built on first use.
func (g *grower) bitmap(n uint32) ([]byte, error) {
	if n < g.oldGroups {
		gr, err := g.t.group(n)
		if err != nil {
			return nil, err
		}
		b, err := g.t.blockBitmap(gr)
		if err != nil {
			return nil, err
		}
		if n == g.oldGroups-1 && !g.tailDone {
			// The old last group now runs to its new end: its padding
			// bits become free blocks. A BLOCK_UNINIT group keeps its
			// flag (its bitmap is computed) unless metadata lands in it.
			g.tailDone = true
			old := g.f.groupLen(n)
			for i := old; i < g.groupLen(n); i++ {
				clearBit(b, i)
			}
			if old != g.groupLen(n) {
				g.tailGrown = g.groupLen(n) - old
				if !g.csum || gr.desc.Flags&layout.GroupBlockUninit == 0 {
					g.touched[n] = true
				}
			}
		}
		return b, nil
	}
	if b, ok := g.bitmaps[n]; ok {
		return b, nil
	}
	b := make([]byte, g.f.geo.blockSize)
	setRange(b, 0, g.superRun(n))
	setRange(b, g.groupLen(n), uint64(len(b))*8)
	g.bitmaps[n] = b
	return b, nil
}

// firstUsed returns the first block in [n, end) that is taken, or end;
// end is at most the new block count. It reads a group's bitmap at most
// once per call and skips free bytes whole.
func (g *grower) firstUsed(n, end uint64) (uint64, error) {
	for n < end {
		grp := g.f.groupOf(n)
		first := g.groupFirst(grp)
		stop := min(first+uint64(g.f.geo.bpg), end)
		var bm []byte
		switch {
		case grp >= g.oldGroups:
			bm = g.bitmaps[grp]
			if bm == nil {
				if n-first < g.superRun(grp) {
					return n, nil
				}
				n = stop
				continue
			}
		default:
			var err error
			if bm, err = g.bitmap(grp); err != nil {
				return 0, err
			}
		}
		if i := nextSet(bm, n-first, stop-first); i < stop-first {
			return first + i, nil
		}
		n = stop
	}
	return end, nil
}

// nextSet is the first set bit of b in [from, to), or to.
func nextSet(b []byte, from, to uint64) uint64 {
	for i := from; i < to; i++ {
		if i%8 == 0 && i+8 <= to && b[i/8] == 0 {
			i += 7
			continue
		}
		if testBit(b, i) {
			return i
		}
	}
	return to
}

// freeRun finds, as e2fsprogs' ext2fs_get_free_blocks2 does, the first
// block b from start (b != finish, wrapping to the first data block past
// the end when finish < start) with blocks b..b+num-1 all free. ok is
// false when there is none.
func (g *grower) freeRun(start, finish, num uint64) (uint64, bool, error) {
	b := max(start, g.f.geo.firstData)
	if finish == 0 {
		finish = b
	}
	wrapped := false
	for steps := uint64(0); steps <= g.newBlocks; {
		if b+num-1 >= g.newBlocks {
			if finish > start || wrapped {
				return 0, false, nil
			}
			b, wrapped = g.f.geo.firstData, true
			if b >= finish {
				return 0, false, nil
			}
		}
		u, err := g.firstUsed(b, b+num)
		if err != nil {
			return 0, false, err
		}
		if u == b+num {
			return b, true, nil
		}
		next := u + 1
		// Every candidate up to the used block fails too; stop at finish.
		if b < finish && next > finish {
			return 0, false, nil
		}
		steps += next - b
		b = next
		if b == finish {
			return 0, false, nil
		}
	}
	return 0, false, nil
}

// mark takes blocks [n, n+count) for metadata.
func (g *grower) mark(n, count uint64) error {
	for end := n + count; n < end; {
		grp := g.f.groupOf(n)
		first := g.groupFirst(grp)
		stop := min(first+uint64(g.f.geo.bpg), end)
		b, err := g.bitmap(grp)
		if err != nil {
			return err
		}
		setRange(b, n-first, stop-first)
		if grp < g.oldGroups {
			g.touched[grp] = true
			g.allocated[grp] = true
		}
		n = stop
	}
	return nil
}

// flexOffset is e2fsprogs' flexbg_offset: where to start looking for
// remGrp*elem blocks of a flex group's metadata.
func (g *grower) flexOffset(group uint32, prev uint64, remGrp uint32, elem uint64) (uint64, error) {
	size := uint64(remGrp) * elem
	size = min(size, uint64(g.f.geo.bpg)/4)
	if prev != 0 && prev < g.newBlocks {
		if b, ok, err := g.freeRun(prev, prev+size, elem); err != nil || ok {
			return b, err
		}
	}
	start := g.groupFirst(group / g.flexSize * g.flexSize)
	lastGrp := min(group|(g.flexSize-1), g.newGroups-1)
	last := g.groupLast(lastGrp)
	for _, try := range [][3]uint64{{start, last, size}, {start, last, elem}, {0, last, elem}} {
		if b, ok, err := g.freeRun(try[0], try[1], try[2]); err != nil || ok {
			return b, err
		}
	}
	return 0, nil
}

// allocTables places group n's bitmaps and inode table as e2fsprogs'
// ext2fs_allocate_group_table does, so the layout is resize2fs's.
func (g *grower) allocTables(n uint32, d *layout.GroupDesc) error {
	itb := g.f.itableBlocks()
	groupBlk, lastBlk := g.groupFirst(n), g.groupLast(n)
	start := groupBlk
	var lastGrp, remGrps uint32
	tableOffset := uint64(g.flexSize)
	flex := g.flexSize != 0
	if flex {
		lastGrp = min(n|(g.flexSize-1), g.newGroups-1)
		remGrps = lastGrp - n + 1
		prev := uint64(0)
		pd, err := g.anyDesc(n - 1)
		if err != nil {
			return err
		}
		if n%g.flexSize != 0 {
			prev = pd.BlockBitmap() + 1
		} else if lastGrp == g.newGroups-1 {
			tableOffset = uint64(lastGrp & (g.flexSize - 1))
			if tableOffset == 0 {
				tableOffset = uint64(g.flexSize)
			} else {
				tableOffset++
			}
		}
		if start, err = g.flexOffset(n, prev, remGrps, 1); err != nil {
			return err
		}
		lastBlk = g.groupLast(lastGrp)
	}
	one := func(start uint64, what string) (uint64, error) {
		b, ok, err := g.freeRun(start, lastBlk, 1)
		if err == nil && !ok {
			b, ok, err = g.freeRun(groupBlk, lastBlk, 1)
		}
		if err == nil && !ok {
			err = cannotGrow("no free block for group %d's %s", n, what)
		}
		if err == nil {
			err = g.mark(b, 1)
		}
		return b, err
	}
	bb, err := one(start, "block bitmap")
	if err != nil {
		return err
	}
	d.SetBlockBitmap(bb)
	if flex {
		prev := bb + tableOffset
		if n%g.flexSize != 0 {
			pd, _ := g.anyDesc(n - 1) // loaded above
			prev = pd.InodeBitmap() + 1
		}
		if start, err = g.flexOffset(n, prev, remGrps, 1); err != nil {
			return err
		}
	}
	ib, err := one(start, "inode bitmap")
	if err != nil {
		return err
	}
	d.SetInodeBitmap(ib)
	if flex {
		prev := ib + tableOffset
		if n%g.flexSize != 0 {
			pd, _ := g.anyDesc(n - 1) // loaded above
			prev = pd.InodeTable() + itb
		}
		if groupBlk, err = g.flexOffset(n, prev, remGrps, itb); err != nil {
			return err
		}
	}
	it, ok, err := g.freeRun(groupBlk, lastBlk, itb)
	if err == nil && !ok {
		err = cannotGrow("no room for group %d's inode table (%d blocks)", n, itb)
	}
	if err != nil {
		return err
	}
	d.SetInodeTable(it)
	return g.mark(it, itb)
}

// desc is the descriptor of new group n.
func (g *grower) desc(n uint32) *layout.GroupDesc { return &g.descs[n-g.oldGroups] }

// anyDesc is the descriptor of group n, old or new.
func (g *grower) anyDesc(n uint32) (*layout.GroupDesc, error) {
	if n >= g.oldGroups {
		return g.desc(n), nil
	}
	gr, err := g.t.group(n)
	if err != nil {
		return nil, err
	}
	return &gr.desc, nil
}

// build makes every new structure in memory: descriptors, bitmaps, free
// counts.
func (g *grower) build() error {
	f := g.f
	g.bitmaps, g.touched, g.allocated = map[uint32][]byte{}, map[uint32]bool{}, map[uint32]bool{}
	g.descs = make([]layout.GroupDesc, g.newGroups-g.oldGroups)
	if err := g.checkReserved(); err != nil {
		return err
	}
	// The old last group now runs to its new end.
	if _, err := g.bitmap(g.oldGroups - 1); err != nil {
		return err
	}
	for n := g.oldGroups; n < g.newGroups; n++ {
		d := g.desc(n)
		if g.csum {
			d.Flags = layout.GroupInodeUninit
			if n < g.newGroups-1 {
				d.Flags |= layout.GroupBlockUninit
			}
			d.SetItableUnused(f.geo.ipg)
		}
		d.SetFreeInodesCount(f.geo.ipg)
		if g.superRun(n) > 0 {
			// resize2fs takes a backup group's superblock and
			// descriptor blocks one by one, which initialises its
			// bitmap: so is it here.
			if _, err := g.bitmap(n); err != nil {
				return err
			}
		}
		if err := g.allocTables(n, d); err != nil {
			return err
		}
	}
	if err := g.moveSecondBackup(); err != nil {
		return err
	}
	// The last group is never BLOCK_UNINIT; without uninit flags no
	// group is, and every new group's bitmap is written.
	if _, err := g.bitmap(g.newGroups - 1); err != nil {
		return err
	}
	if !g.csum {
		for n := g.oldGroups; n < g.newGroups; n++ {
			if _, err := g.bitmap(n); err != nil {
				return err
			}
		}
	}
	return g.counts()
}

// counts sets the free block counts of every changed group from its
// bitmap, and the superblock's from the old counts and the changes.
func (g *grower) counts() error {
	f := g.f
	delta := int64(0)
	if err := g.uninitTail(); err != nil {
		return err
	}
	delta += g.uninitDelta
	for n := range g.touched {
		gr, err := g.t.group(n)
		if err != nil {
			return err
		}
		b, _ := g.bitmap(n)
		free := g.groupLen(n) - popCount(b, g.groupLen(n))
		delta += int64(free) - int64(gr.desc.FreeBlocksCount())
		gr.desc.SetFreeBlocksCount(uint32(free))
		gr.desc.Flags &^= layout.GroupBlockUninit
		gr.bbDirty, gr.descDirty = true, true
	}
	if last := g.oldGroups - 1; g.tailGrown > 0 && !g.touched[last] && !g.uninitSet {
		// Still (or now) BLOCK_UNINIT: only its free count changes.
		gr := g.t.space.groups[last]
		gr.desc.SetFreeBlocksCount(gr.desc.FreeBlocksCount() + uint32(g.tailGrown))
		delta += int64(g.tailGrown)
		g.lastDesc = true
	}
	if g.lastDesc {
		g.descOnly = append(g.descOnly, g.oldGroups-1)
	}
	newFree := uint64(0)
	for n := g.oldGroups; n < g.newGroups; n++ {
		d := g.desc(n)
		var used uint64
		if b, ok := g.bitmaps[n]; ok {
			used = popCount(b, g.groupLen(n))
			d.Flags &^= layout.GroupBlockUninit
		} else {
			used = g.superRun(n)
		}
		d.SetFreeBlocksCount(uint32(g.groupLen(n) - used))
		newFree += g.groupLen(n) - used
	}
	free := int64(f.sb.FreeBlocksCount()) + delta + int64(newFree)
	if free < 0 || uint64(free) > g.newBlocks {
		return corrupt("superblock", 0, 0, layout.SuperblockOffset, "free block count would become %d", free)
	}
	g.rep.NewBlocks = g.newBlocks
	g.freeBlocks = uint64(free)
	return nil
}

// uninitTail flags the old last group BLOCK_UNINIT, as resize2fs leaves
// it, when it is no longer last, received no new metadata, holds no
// superblock backup or descriptor block, and its bitmap
// is exactly what an uninitialised group's bitmap is computed to be (its
// superblock backup, descriptors and the flex group's tables it holds).
func (g *grower) uninitTail() error {
	last := g.oldGroups - 1
	// resize2fs leaves a group holding a superblock backup or descriptor
	// blocks initialised (it takes those blocks one by one).
	if !g.csum || g.allocated[last] || g.superRun(last) > 0 {
		return nil
	}
	if _, err := g.bitmap(last); err != nil { // loads the group, clears the padding
		return err
	}
	gr := g.t.space.groups[last]
	real, err := g.bitmap(last)
	if err != nil {
		return err
	}
	oldLen := g.f.groupLen(last)
	// The computed bitmap is checked against the descriptor's count:
	// give it the count the real bitmap has over the old length.
	// A sparse_super2 backup that moved away is computed as the old
	// layout has it and taken out.
	newRun, oldRun := g.superRun(last), g.superRunOld(last)
	saved := gr.desc
	gr.desc.SetFreeBlocksCount(uint32(oldLen - popCount(real, oldLen) - (oldRun - newRun)))
	calc, err := g.t.initBlockBitmap(gr)
	gr.desc = saved
	if err != nil {
		return nil // not expressible as an uninitialised group: keep the bitmap
	}
	for i := newRun; i < oldRun; i++ {
		clearBit(calc, i)
	}
	for i := uint64(0); i < oldLen; i++ {
		if testBit(calc, i) != testBit(real, i) {
			return nil
		}
	}
	// The free count is the real bitmap's over the group's new length
	// (the grown tail, a freed backup).
	free := g.groupLen(last) - popCount(real, g.groupLen(last))
	g.uninitDelta = int64(free) - int64(gr.desc.FreeBlocksCount())
	gr.desc.SetFreeBlocksCount(uint32(free))
	gr.desc.Flags |= layout.GroupBlockUninit
	g.lastDesc, g.uninitSet = true, true
	gr.bb, gr.bbDirty = nil, false
	delete(g.touched, last)
	return nil
}

// popCount counts the set bits among the first n of b.
func popCount(b []byte, n uint64) uint64 {
	c := uint64(0)
	for _, x := range b[:n/8] {
		c += uint64(bits.OnesCount8(x))
	}
	for i := n / 8 * 8; i < n; i++ {
		if testBit(b, i) {
			c++
		}
	}
	return c
}

// checkReserved refuses to grow over blocks the growth will overwrite in
// the old groups unless their bitmaps say they are taken: each backup
// group's superblock, descriptor and reserved GDT blocks (the new
// descriptor blocks and backups land there) and the resize inode's double
// indirect block. On a consistent filesystem they always are; on a
// damaged or hostile one the write could land on file data.
func (g *grower) checkReserved() error {
	f := g.f
	for n := uint32(0); n < g.oldGroups; n++ {
		run := g.superRunOld(n)
		if run == 0 {
			continue
		}
		first := g.groupFirst(n)
		end := min(first+run, f.geo.blocksCount)
		b, err := g.bitmap(n)
		if err != nil {
			return err
		}
		for x := first; x < end; x++ {
			if !testBit(b, x-g.groupFirst(n)) {
				return corrupt("block bitmap", uint64(n), 0, -1, "block %d of group %d's superblock and descriptor area is marked free; run e2fsck before growing", x, n)
			}
		}
	}
	if f.sb.FeatureCompat.Has(layout.CompatResizeInode) {
		in, err := g.t.inode(layout.ResizeIno)
		if err != nil {
			return err
		}
		d := uint64(in.raw.Block[layout.NDirBlocks+1])
		if !f.validBlock(d) {
			return cannotGrow("the resize inode's double indirect block %d is not a valid block; run e2fsck", d)
		}
		grp := f.groupOf(d)
		b, err := g.bitmap(grp)
		if err != nil {
			return err
		}
		if !testBit(b, d-g.groupFirst(grp)) {
			return corrupt("block bitmap", uint64(grp), 0, -1, "the resize inode's double indirect block %d is marked free; run e2fsck before growing", d)
		}
	}
	return nil
}

// moveSecondBackup frees, with sparse_super2, the old second backup's
// superblock and descriptor blocks once the backup has moved to the new
// last group (after the new tables are placed, as resize2fs does).
func (g *grower) moveSecondBackup() error {
	old := g.f.sb.BackupBgs[1]
	if !g.ss2 || old == 0 || old == g.bgs[1] || old >= g.oldGroups || old == g.bgs[0] {
		return nil
	}
	b, err := g.bitmap(old)
	if err != nil {
		return err
	}
	run := g.superRunOld(old)
	for i := uint64(0); i < run; i++ {
		clearBit(b, i)
	}
	g.touched[old] = true
	if old != g.oldGroups-1 {
		g.allocated[old] = true // keep its bitmap; uninitTail judges only the last group
	}
	return nil
}
