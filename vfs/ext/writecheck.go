package ext

import (
	"fmt"
	"sort"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Writes through on-disk pointers.
//
// Most blocks the write engine changes or frees are reached through a
// pointer read from the image: a file's, directory's (leaf or htree
// node) or slow symlink's data block through its extent tree or block
// map, an indirect block through i_block or another indirect block, an
// xattr block through i_file_acl, the old extent-tree nodes and indirect
// blocks a rewrite or truncation frees. A damaged or hostile pointer can
// name any block: the group descriptor table, an inode table, the
// journal. Every such block is checked (checkTarget) when the pointer is
// followed; the first two checks run again at commit, before the first
// write, on every block the transaction is about to write (checkWrites):
//
//   - it is not filesystem metadata: a superblock copy, the group
//     descriptor table and its reserved blocks, a block or inode bitmap,
//     an inode table, the internal journal, the MMP block, the resize
//     inode's double-indirect block; nor outside the filesystem or at or
//     before s_first_data_block;
//   - it is marked in use in its group's block bitmap (a mapped block
//     marked free is corruption, and the allocator may already have given
//     it away);
//   - it is not a block the engine read recently for another inode, or
//     as another kind of block (FS.cache.owners: a bounded LRU filled by
//     FS.block with directory blocks, extent nodes, indirect and xattr
//     blocks, emptied of the blocks each commit frees). A lookup reads
//     every directory on its path, so a file mapped onto one of them is
//     caught.
//
// Frees through pointers get the same checks (checkFree), the allocator
// refuses the same metadata when a bitmap calls it free (checkFreeRun),
// and the bitmaps and inode table blocks a group descriptor locates must
// not overlap other metadata (checkPlaced).
//
// Metadata locations are computed per group from the superblock and the
// descriptors of the group's flex group (what initBlockBitmap assumes
// too), not by scanning: the cost follows the groups an operation
// touches. What these checks cannot see is a block in use by another
// inode the engine has not read (another file's data, a directory off
// the operation's paths): that needs every inode's map, e2fsck's pass 1.

// ErrBadTarget: an on-disk pointer names a block the engine must not write
// or free (metadata, a block its bitmap marks free, another inode's
// block). It wraps vfs.ErrCorrupt.
var ErrBadTarget = fmt.Errorf("ext: on-disk pointer names a block that must not be written: %w", vfs.ErrCorrupt)

// metaKind says what a metadata run holds.
type metaKind uint8

const (
	metaSuperDesc metaKind = iota // superblock copy + descriptor (and reserved GDT) blocks of group g
	metaBlockBitmap
	metaInodeBitmap
	metaInodeTable
	metaJournal
	metaMMP
	metaResize
	metaOutside
)

// metaRun is a run of blocks holding one piece of filesystem metadata.
type metaRun struct {
	start, n uint64
	kind     metaKind
	g        uint32 // the group it belongs to, for the group kinds
}

func (r metaRun) String() string {
	switch r.kind {
	case metaSuperDesc:
		return fmt.Sprintf("the superblock and group descriptor blocks of group %d", r.g)
	case metaBlockBitmap:
		return fmt.Sprintf("the block bitmap of group %d", r.g)
	case metaInodeBitmap:
		return fmt.Sprintf("the inode bitmap of group %d", r.g)
	case metaInodeTable:
		return fmt.Sprintf("the inode table of group %d", r.g)
	case metaJournal:
		return "the journal"
	case metaMMP:
		return "the MMP block"
	case metaResize:
		return "the resize inode's double-indirect block"
	}
	return "outside the filesystem's data blocks"
}

// groupMeta returns the metadata runs that may lie in group g: its own
// superblock copy and descriptor blocks, and the bitmaps and inode
// tables of every group of its flex group. They are computed once per
// transaction and group.
func (t *tx) groupMeta(g uint32) ([]metaRun, error) {
	if r, ok := t.space.meta[g]; ok {
		return r, nil
	}
	f := t.f
	var runs []metaRun
	if s, n := f.superAndDescBlocks(g); n > 0 {
		runs = append(runs, metaRun{s, n, metaSuperDesc, g})
	}
	lo, hi := f.flexRange(g)
	itn := f.itableBlocks()
	for h := lo; h < hi; h++ {
		d, err := f.groupDesc(h)
		if err != nil {
			return nil, err
		}
		runs = append(runs, metaRun{d.BlockBitmap(), 1, metaBlockBitmap, h},
			metaRun{d.InodeBitmap(), 1, metaInodeBitmap, h}, metaRun{d.InodeTable(), itn, metaInodeTable, h})
	}
	if t.space.meta == nil {
		t.space.meta = map[uint32][]metaRun{}
	}
	t.space.meta[g] = runs
	return runs, nil
}

// fixedMeta returns the metadata not tied to a group's descriptor, sorted
// and without overlaps: the internal journal's blocks, the MMP block and
// the resize inode's double-indirect block. It is computed once per FS,
// on the first check (writes are serialised by wr.mu; nothing the
// engine writes moves them).
func (f *FS) fixedMeta() ([]metaRun, error) {
	if f.wr.fixedMeta != nil {
		return f.wr.fixedMeta.runs, f.wr.fixedMeta.err
	}
	runs, err := f.loadFixedMeta()
	f.wr.fixedMeta = &fixedMetaCache{runs, err}
	return runs, err
}

type fixedMetaCache struct {
	runs []metaRun
	err  error
}

func (f *FS) loadFixedMeta() ([]metaRun, error) {
	sb := f.sb
	var runs []metaRun
	if sb.FeatureIncompat.Has(layout.IncompatMMP) {
		runs = append(runs, metaRun{start: sb.MMPBlock, n: 1, kind: metaMMP})
	}
	if sb.FeatureCompat.Has(layout.CompatResizeInode) {
		in, err := f.inode(layout.ResizeIno)
		if err != nil {
			return nil, err
		}
		if d := in.raw.Block[layout.DIndBlock]; d != 0 {
			runs = append(runs, metaRun{start: uint64(d), n: 1, kind: metaResize})
		}
	}
	if js := f.journalStatus(); js.Kind == JournalInternal {
		jr, err := f.journalRuns(js.Inode)
		if err != nil {
			return nil, err
		}
		runs = append(runs, jr...)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].start < runs[j].start })
	out := runs[:0]
	for _, r := range runs {
		if k := len(out); k > 0 && out[k-1].start+out[k-1].n > r.start {
			out[k-1].n = max(out[k-1].n, r.start+r.n-out[k-1].start)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// journalRuns maps the internal journal inode's blocks (bounded: at most
// maxJournalRuns pieces, holes included, as the replay's map).
func (f *FS) journalRuns(ino uint32) ([]metaRun, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	m, err := f.mapperFor(in)
	if err != nil {
		return nil, err
	}
	bs := uint64(f.geo.blockSize)
	end := min((uint64(in.size)+bs-1)/bs, maxLblk)
	var runs []metaRun
	for l, pieces := uint64(0), 0; l < end; pieces++ {
		if pieces == maxJournalRuns {
			return nil, unsupported("journal inode %d in more than %d pieces", ino, maxJournalRuns)
		}
		r, err := m.mapBlock(l)
		if err != nil {
			return nil, err
		}
		n := min(r.n, end-l)
		if n == 0 {
			return nil, corrupt("inode", uint64(ino), 0, -1, "journal block map makes no progress at logical block %d", l)
		}
		if !r.zero {
			runs = append(runs, metaRun{start: r.pblk, n: n, kind: metaJournal})
		}
		l += n
	}
	return runs, nil
}

// metadataIn returns the first metadata run overlapping blocks
// [start, start+n), if any. The range must lie inside the filesystem.
func (t *tx) metadataIn(start, n uint64) (metaRun, bool, error) {
	f := t.f
	end := start + n
	if !f.validRange(start, n) {
		return metaRun{start: start, n: n, kind: metaOutside}, true, nil
	}
	for g := f.groupOf(start); g <= f.groupOf(end-1); g++ {
		runs, err := t.groupMeta(g)
		if err != nil {
			return metaRun{}, false, err
		}
		for _, r := range runs {
			if r.start < end && start < r.start+r.n {
				return r, true, nil
			}
		}
	}
	return f.fixedAt(start, n)
}

// fixedAt returns the fixedMeta run overlapping [start, start+n), if any.
func (f *FS) fixedAt(start, n uint64) (metaRun, bool, error) {
	fixed, err := f.fixedMeta()
	if err != nil {
		return metaRun{}, false, err
	}
	i := sort.Search(len(fixed), func(i int) bool { return fixed[i].start+fixed[i].n > start })
	if i < len(fixed) && fixed[i].start < start+n {
		return fixed[i], true, nil
	}
	return metaRun{}, false, nil
}

// firstFree returns the first block of [start, start+n) its group's
// block bitmap (as this transaction sees it) marks free.
func (t *tx) firstFree(start, n uint64) (uint64, bool, error) {
	f := t.f
	for b := start; b < start+n; {
		g := f.groupOf(b)
		gr, err := t.group(g)
		if err != nil {
			return 0, false, err
		}
		bm, err := t.blockBitmap(gr)
		if err != nil {
			return 0, false, err
		}
		first := f.groupFirst(g)
		for stop := min(start+n, first+f.groupLen(g)); b < stop; b = f.clusterStart(b) + f.ratio() {
			if !testBit(bm, f.clusterBit(g, b)) {
				return b, true, nil
			}
		}
	}
	return 0, false, nil
}

// targetProblem says why blocks [p, p+n) must not be written or freed
// through an on-disk pointer, or "" when they may. With bigalloc the
// whole clusters holding them are looked at: a cluster is metadata's or a
// file's, never both.
func (t *tx) targetProblem(p, n uint64) (string, error) {
	if t.f.validRange(p, n) {
		p, n = t.f.clusterSpan(p, n)
	}
	r, meta, err := t.metadataIn(p, n)
	if err != nil {
		return "", err
	}
	if meta {
		if r.kind == metaOutside {
			return fmt.Sprintf("block %d (+%d) is outside the filesystem's data blocks (%d..%d)", p, n, t.f.geo.firstData+1, t.f.geo.blocksCount-1), nil
		}
		at := max(p, r.start)
		return fmt.Sprintf("block %d is filesystem metadata (%s)", at, r), nil
	}
	b, free, err := t.firstFree(p, n)
	if err != nil || !free {
		return "", err
	}
	return fmt.Sprintf("block %d is marked free in the block bitmap of group %d", b, t.f.groupOf(b)), nil
}

// ownerConflict says whether block p, about to be written as a block of
// the given kind of inode ino, was read by the engine as a block of
// another inode, or as another kind of block of the same one. Only
// blocks read recently (FS.cache.owners is a bounded LRU) are known; xattr
// blocks are shared between inodes by design and not checked.
func (t *tx) ownerConflict(kind blockKind, ino uint32, p uint64) (string, bool) {
	if kind == kindXattr {
		return "", false
	}
	o, ok := t.f.cache.owners.Get(p)
	if !ok {
		return "", false
	}
	if x := o.other; x != nil {
		return fmt.Sprintf("block %d is in use as %s of inode %d and as %s of inode %d", p, article(o.what), o.ino, article(x.what), x.ino), true
	}
	if o.ino != ino || o.what != kind.String() {
		return fmt.Sprintf("block %d is in use as %s of inode %d", p, article(o.what), o.ino), true
	}
	return "", false
}

func article(what string) string {
	switch what {
	case "extent node", "indirect block", "xattr block":
		return "an " + what
	}
	return "a " + what
}

// checkPlaced refuses to write block p as the metadata self (a bitmap or
// inode table a group descriptor locates) when another piece of metadata
// lies there too: a damaged descriptor naming, say, another group's
// bitmap or the descriptor table itself.
func (t *tx) checkPlaced(p uint64, self metaRun) error {
	if !t.f.validBlock(p) {
		return corrupt("group descriptor", uint64(self.g), 0, -1, "%s at block %d is outside the filesystem", self, p)
	}
	runs, err := t.groupMeta(t.f.groupOf(p))
	if err != nil {
		return err
	}
	if r, ok, err := t.f.fixedAt(p, 1); err != nil || ok {
		if err == nil {
			err = &CorruptError{What: "group descriptor", Num: uint64(self.g), Offset: -1,
				Detail: fmt.Sprintf("%s at block %d, which is also %s", self, p, r), Err: ErrBadTarget}
		}
		return err
	}
	for _, r := range runs {
		if r != self && p >= r.start && p-r.start < r.n {
			return &CorruptError{What: "group descriptor", Num: uint64(self.g), Offset: -1,
				Detail: fmt.Sprintf("%s at block %d, which is also %s", self, p, r), Err: ErrBadTarget}
		}
	}
	return nil
}

// mapKind is the kind of block a mapping of in leads to.
func mapKind(in *inode) blockKind {
	if in.isDir() {
		return kindDir
	}
	return kindData
}

// checkTarget refuses block p, reached through an on-disk pointer of
// inode ino as a block of the given kind, when it is filesystem metadata,
// marked free, or known to be another inode's block (ownerConflict). lblk is the logical block of the inode that maps to p
// (for data and directory blocks), or the logical block an indirect
// block leads to; -1 when none.
func (t *tx) checkTarget(kind blockKind, ino uint32, lblk int64, p uint64) error {
	why, err := t.targetProblem(p, 1)
	if err != nil {
		return err
	}
	if why == "" {
		var clash bool
		if why, clash = t.ownerConflict(kind, ino, p); !clash {
			return nil
		}
	}
	via := "an on-disk pointer names it"
	switch {
	case lblk >= 0 && (kind == kindData || kind == kindDir):
		via = fmt.Sprintf("logical block %d maps to physical block %d", lblk, p)
	case lblk >= 0:
		via = fmt.Sprintf("the block map to logical block %d goes through physical block %d", lblk, p)
	}
	return &CorruptError{What: kind.String(), Num: p, Ino: ino, Offset: -1,
		Detail: via + ", but " + why + "; refusing to write through it", Err: ErrBadTarget}
}

// checkFree refuses to free blocks [start, start+n) of inode ino that
// are filesystem metadata, marked free already, or known to be another
// inode's (ownerConflict; xattr blocks are shared by design and left to
// their reference count).
func (t *tx) checkFree(ino uint32, start, n uint64) error {
	r, meta, err := t.metadataIn(start, n)
	if err != nil {
		return err
	}
	var why string
	switch {
	case meta && r.kind == metaOutside:
		why = "they lie outside the filesystem's data blocks"
	case meta:
		why = fmt.Sprintf("block %d is filesystem metadata (%s)", max(start, r.start), r)
	default:
		if b, free, err := t.firstFree(start, n); err != nil {
			return err
		} else if free {
			why = fmt.Sprintf("block %d is marked free in the block bitmap of group %d", b, t.f.groupOf(b))
			break
		}
		b, o, found := t.f.cache.ownedElsewhere(ino, start, n)
		if !found {
			return nil
		}
		why = fmt.Sprintf("block %d is in use as %s of inode %d", b, article(o.what), o.ino)
		if x := o.other; x != nil {
			why += fmt.Sprintf(" and as %s of inode %d", article(x.what), x.ino)
		}
	}
	return &CorruptError{What: "block", Num: start, Ino: ino, Offset: -1,
		Detail: fmt.Sprintf("freeing %d blocks from block %d, but %s", n, start, why), Err: ErrBadTarget}
}

// checkWrites checks, at commit before the first write, every block the
// transaction will write: data, extent-tree, indirect, xattr and
// directory blocks must be neither filesystem metadata nor marked free
// (they were checked when their pointers were followed; this catches any
// path that did not), and the bitmaps and inode table blocks it locates
// through group descriptors must not overlap other metadata (checkPlaced).
// Call it after the frees are applied and before the bitmaps and inodes
// are registered as blocks.
func (t *tx) checkWrites() error {
	for g, gr := range t.space.groups {
		if gr.bbDirty {
			if err := t.checkPlaced(gr.desc.BlockBitmap(), metaRun{gr.desc.BlockBitmap(), 1, metaBlockBitmap, g}); err != nil {
				return err
			}
		}
		if gr.ibDirty {
			if err := t.checkPlaced(gr.desc.InodeBitmap(), metaRun{gr.desc.InodeBitmap(), 1, metaInodeBitmap, g}); err != nil {
				return err
			}
		}
	}
	for ino := range t.inodes.dirty {
		blk, _, err := t.inodeLoc(ino)
		if err != nil {
			return err
		}
		gr, err := t.group((ino - 1) / t.f.geo.ipg)
		if err != nil {
			return err
		}
		if err := t.checkPlaced(blk, metaRun{gr.desc.InodeTable(), t.f.itableBlocks(), metaInodeTable, gr.g}); err != nil {
			return err
		}
	}
	for _, b := range t.blocks {
		switch b.kind {
		case kindData, kindExtent, kindIndirect, kindXattr, kindDir:
		default:
			continue
		}
		why, err := t.targetProblem(b.num, 1)
		if err != nil {
			return err
		}
		if why != "" {
			return &CorruptError{What: b.kind.String(), Num: b.num, Offset: -1,
				Detail: "the transaction would write it, but " + why, Err: ErrBadTarget}
		}
	}
	return nil
}
