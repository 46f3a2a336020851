package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// writeIndex writes the leaf entries and bests of a leaf or node
// directory in the smallest form holding them: one leaf1 block, else
// leafn blocks under a da btree with free-index blocks. Blocks of the
// old index that the new one does not use are freed.
func (d *dirW) writeIndex() error {
	if !slices.IsSortedFunc(d.ents, cmpLeaf) {
		return fmt.Errorf("xfs: directory %d: leaf entries out of hash order (a bug)", d.ino)
	}
	f := d.t.f
	B := int(d.g.dirBlkSize)
	if f.leafHdrSize()+len(d.ents)*layout.DirLeafEntrySize+len(d.bests)*2+layout.DirLeafTailSize <= B {
		return d.writeLeaf1()
	}
	return d.writeNode()
}

// indexBlock returns the buffer of index block fb to be rewritten whole
// and the bytes to build its new contents in (zeroed, header set): the
// mapped block (whatever index block it held) or a new one. putIndex
// then stores them.
func (d *dirW) indexBlock(fb uint64, kind bufKind, magic uint32) (*txBuf, []byte, error) {
	if !d.mapped(fb) {
		b, err := d.newBlock(fb, kind, magic)
		if err != nil {
			return nil, nil, err
		}
		return b, b.data, nil
	}
	off, err := d.blockOff(fb)
	if err != nil {
		return nil, nil, err
	}
	w := d.where(fb)
	w.off = off
	// The block was read and checked by openDirW (or made by this
	// change); its contents are replaced.
	b, err := d.t.buf(off, int(d.g.dirBlkSize), kind, className, w)
	if err != nil {
		return nil, nil, err
	}
	p := make([]byte, len(b.data))
	d.putHeader(p, b.off, kind, magic)
	return b, p, nil
}

// putIndex stores p, built for b by indexBlock, marking b dirty only when
// its contents change: an index rewritten with the same entries in the
// same blocks writes only the blocks that differ.
func (d *dirW) putIndex(b *txBuf, p []byte, kind bufKind) {
	if &p[0] == &b.data[0] {
		d.t.markDirty(b)
		return
	}
	if d.g.crc {
		// LSN and CRC are the stamp's, not the contents.
		lsnOff, crcOff := kind.stampAt()
		copy(p[lsnOff:lsnOff+8], b.data[lsnOff:])
		copy(p[crcOff:crcOff+4], b.data[crcOff:])
	}
	if bytes.Equal(p, b.data) {
		return
	}
	copy(b.data, p)
	d.t.markDirty(b)
}

// putLeafEnts writes entries after a leaf header of p.
func (d *dirW) putLeafEnts(p []byte, ents []leafEnt) {
	f := d.t.f
	binary.BigEndian.PutUint16(p[f.daInfoSize():], uint16(len(ents)))
	binary.BigEndian.PutUint16(p[f.daInfoSize()+2:], 0) // stale
	hdr := f.leafHdrSize()
	for i, e := range ents {
		binary.BigEndian.PutUint32(p[hdr+8*i:], e.hash)
		binary.BigEndian.PutUint32(p[hdr+8*i+4:], e.addr)
	}
}

func bestValue(best int) uint16 {
	if best < 0 {
		return layout.DirNullDataOff
	}
	return uint16(best)
}

// writeLeaf1 writes the leaf form: the leaf1 block at the first leaf
// block, the other index blocks (a former node form's) freed.
func (d *dirW) writeLeaf1() error {
	for _, fb := range append(slices.Clone(d.leafBlks), d.freeBlks...) {
		if err := d.unmap(fb); err != nil {
			return err
		}
	}
	d.leafBlks, d.freeBlks = nil, nil
	b, p, err := d.indexBlock(d.leafFB(), kindDA, d.leaf1Magic())
	if err != nil {
		return err
	}
	d.putLeafEnts(p, d.ents)
	binary.BigEndian.PutUint32(p[len(p)-layout.DirLeafTailSize:], uint32(len(d.bests)))
	at := len(p) - layout.DirLeafTailSize - 2*len(d.bests)
	for i, best := range d.bests {
		binary.BigEndian.PutUint16(p[at+2*i:], bestValue(best))
	}
	d.form = formLeaf
	d.putIndex(b, p, kindDA)
	return nil
}

// spread splits n items into k runs as even as possible and returns the
// run lengths.
func spread(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// daFanout, when set (tests only), caps the entries per leaf and the
// children per da node below what fits, so that deep da btrees are built
// from few names; the blocks stay valid (merely underfull).
var daFanout int

// writeNode writes the node form: hash-ordered leafn blocks linked left
// to right in increasing block order, da nodes above them with the root
// at the first leaf block (a single leafn sits there itself), and the
// free-index blocks.
func (d *dirW) writeNode() error {
	f := d.t.f
	B := int(d.g.dirBlkSize)
	leafCap := (B - f.leafHdrSize()) / layout.DirLeafEntrySize
	nodeCap := (B - f.nodeHdrSize()) / layout.DANodeEntrySize
	if daFanout > 0 {
		leafCap, nodeCap = min(leafCap, daFanout), min(nodeCap, daFanout)
	}
	// Spread leaves are filled to three quarters, so that later changes
	// land in a leaf with room and rewrite it alone (stableRuns).
	fill := max(1, leafCap*3/4)
	nLeaves := (len(d.ents) + fill - 1) / fill
	runs, stable := d.stableRuns(leafCap)
	if stable {
		nLeaves = len(runs)
	} else {
		runs = spread(len(d.ents), nLeaves)
	}
	// Count the nodes each level needs, bottom up.
	var levels []int // nodes per level, level 1 first; the last is the root
	for n := nLeaves; n > 1; {
		n = (n + nodeCap - 1) / nodeCap
		levels = append(levels, n)
	}
	if len(levels) >= maxDANodeDepth {
		return unsupported("directory %d: a da btree of more than %d levels", d.ino, maxDANodeDepth)
	}
	// Blocks: the first leaf block is the root (or the only leaf); the
	// others come from the old index blocks, lowest first, then new ones
	// after the highest leaf-space block in use.
	need := 0 // blocks besides the first leaf block
	if len(levels) > 0 {
		need = nLeaves
		for _, n := range levels[:len(levels)-1] {
			need += n
		}
	}
	pool := slices.Clone(d.leafBlks)
	var keptLeaves []uint64
	if stable {
		// The leaves keep their blocks; the nodes take the others.
		for _, l := range d.oldLeaves {
			keptLeaves = append(keptLeaves, l.fb)
		}
		pool = slices.DeleteFunc(pool, func(fb uint64) bool { return slices.Contains(keptLeaves, fb) })
		need -= nLeaves
	}
	slices.Sort(pool)
	for len(pool) > need {
		if err := d.unmap(pool[len(pool)-1]); err != nil {
			return err
		}
		pool = pool[:len(pool)-1]
	}
	next := d.leafFB() + d.perDB
	if len(pool) > 0 {
		next = pool[len(pool)-1] + d.perDB
	}
	for len(pool) < need {
		if next >= d.freeFB() {
			return unsupported("directory %d: its leaf area is full", d.ino)
		}
		pool = append(pool, next)
		next += d.perDB
	}
	d.leafBlks = append(slices.Clone(pool), keptLeaves...)
	var leafAt []uint64
	switch {
	case stable:
		leafAt = keptLeaves
	case len(levels) == 0:
		leafAt = []uint64{d.leafFB()}
	default:
		leafAt, pool = pool[:nLeaves], pool[nLeaves:]
	}
	// The leaves.
	type child struct {
		fb   uint64
		hash uint32
	}
	var kids []child
	start := 0
	for i, n := range runs {
		b, p, err := d.indexBlock(leafAt[i], kindDA, f.leafNMagic())
		if err != nil {
			return err
		}
		if i > 0 {
			binary.BigEndian.PutUint32(p[4:], uint32(leafAt[i-1])) // back
		}
		if i+1 < nLeaves {
			binary.BigEndian.PutUint32(p[0:], uint32(leafAt[i+1])) // forw
		}
		run := d.ents[start : start+n]
		d.putLeafEnts(p, run)
		d.putIndex(b, p, kindDA)
		kids = append(kids, child{leafAt[i], run[len(run)-1].hash})
		start += n
	}
	// The nodes, level by level.
	for lvl, nNodes := range levels {
		var at []uint64
		if lvl == len(levels)-1 {
			at = []uint64{d.leafFB()}
		} else {
			at, pool = pool[:nNodes], pool[nNodes:]
		}
		var up []child
		start := 0
		for i, n := range spread(len(kids), nNodes) {
			b, p, err := d.indexBlock(at[i], kindDA, f.daNodeMagic())
			if err != nil {
				return err
			}
			if i > 0 {
				binary.BigEndian.PutUint32(p[4:], uint32(at[i-1]))
			}
			if i+1 < nNodes {
				binary.BigEndian.PutUint32(p[0:], uint32(at[i+1]))
			}
			binary.BigEndian.PutUint16(p[f.daInfoSize():], uint16(n))
			binary.BigEndian.PutUint16(p[f.daInfoSize()+2:], uint16(lvl+1))
			hdr := f.nodeHdrSize()
			for j, k := range kids[start : start+n] {
				binary.BigEndian.PutUint32(p[hdr+8*j:], k.hash)
				binary.BigEndian.PutUint32(p[hdr+8*j+4:], uint32(k.fb))
			}
			d.putIndex(b, p, kindDA)
			up = append(up, child{at[i], kids[start+n-1].hash})
			start += n
		}
		kids = up
	}
	d.form = formNode
	return d.writeFree()
}

// writeFree writes the free-index blocks of a node directory: block k
// holds the bests of data blocks k*cap.. onwards.
func (d *dirW) writeFree() error {
	cap := d.freeCap()
	nFree := (len(d.bests) + cap - 1) / cap
	keep := d.freeBlks[:0]
	for _, fb := range d.freeBlks {
		if (fb-d.freeFB())/d.perDB >= uint64(nFree) {
			if err := d.unmap(fb); err != nil {
				return err
			}
			continue
		}
		keep = append(keep, fb)
	}
	d.freeBlks = keep
	hdr := d.freeHdrSize()
	for k := 0; k < nFree; k++ {
		fb := d.freeFB() + uint64(k)*d.perDB
		b, p, err := d.indexBlock(fb, kindDirData, d.freeMagic())
		if err != nil {
			return err
		}
		if !slices.Contains(d.freeBlks, fb) {
			d.freeBlks = append(d.freeBlks, fb)
		}
		first := k * cap
		bests := d.bests[first:min(first+cap, len(d.bests))]
		used := 0
		for i, best := range bests {
			binary.BigEndian.PutUint16(p[hdr+2*i:], bestValue(best))
			if best >= 0 {
				used++
			}
		}
		h := p[4:]
		if d.g.crc {
			h = p[0x30:]
		}
		binary.BigEndian.PutUint32(h[0:], uint32(first))
		binary.BigEndian.PutUint32(h[4:], uint32(len(bests)))
		binary.BigEndian.PutUint32(h[8:], uint32(used))
		d.putIndex(b, p, kindDirData)
	}
	return nil
}

// stableRuns assigns the sorted entries to the node directory's current
// leaves by the hash ranges they hold (each leaf up to its last hash,
// the last leaf the rest), so that a change rewrites only the leaf it
// falls in. It fails (the caller spreads the entries evenly over as many
// leaves as they need) when there are fewer than two leaves, or a leaf
// would overflow or be left empty.
func (d *dirW) stableRuns(leafCap int) ([]int, bool) {
	if len(d.oldLeaves) < 2 {
		return nil, false
	}
	for _, l := range d.oldLeaves {
		if l.fb == d.leafFB() {
			return nil, false // the root's block must hold a node
		}
	}
	runs := make([]int, len(d.oldLeaves))
	i := 0
	for k, l := range d.oldLeaves {
		j := len(d.ents)
		if k+1 < len(d.oldLeaves) {
			j = i + sort.Search(len(d.ents)-i, func(x int) bool { return d.ents[i+x].hash > l.last })
		}
		runs[k] = j - i
		if runs[k] == 0 || runs[k] > leafCap {
			return nil, false
		}
		i = j
	}
	return runs, true
}
