package xfs

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/guestinject/guestinject/vfs/xfs/layout"
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

// indexBlock returns the buffer of index block fb to be rewritten whole:
// the mapped block (whatever index block it held) or a new one.
func (d *dirW) indexBlock(fb uint64, kind bufKind, magic uint32) (*txBuf, error) {
	if !d.mapped(fb) {
		return d.newBlock(fb, kind, magic)
	}
	off, err := d.blockOff(fb)
	if err != nil {
		return nil, err
	}
	w := d.where(fb)
	w.off = off
	// The block was read and checked by openDirW (or made by this
	// change); its contents are replaced.
	b, err := d.t.buf(off, int(d.g.dirBlkSize), kind, className, w)
	if err != nil {
		return nil, err
	}
	clear(b.data)
	d.initHeader(b, kind, magic)
	return b, nil
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
	b, err := d.indexBlock(d.leafFB(), kindDA, d.leaf1Magic())
	if err != nil {
		return err
	}
	p := b.data
	d.putLeafEnts(p, d.ents)
	binary.BigEndian.PutUint32(p[len(p)-layout.DirLeafTailSize:], uint32(len(d.bests)))
	at := len(p) - layout.DirLeafTailSize - 2*len(d.bests)
	for i, best := range d.bests {
		binary.BigEndian.PutUint16(p[at+2*i:], bestValue(best))
	}
	d.form = formLeaf
	d.t.markDirty(b)
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
	nLeaves := (len(d.ents) + leafCap - 1) / leafCap
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
	d.leafBlks = slices.Clone(pool)
	var leafAt []uint64
	if len(levels) == 0 {
		leafAt = []uint64{d.leafFB()}
	} else {
		leafAt, pool = pool[:nLeaves], pool[nLeaves:]
	}
	// The leaves.
	type child struct {
		fb   uint64
		hash uint32
	}
	var kids []child
	start := 0
	for i, n := range spread(len(d.ents), nLeaves) {
		b, err := d.indexBlock(leafAt[i], kindDA, f.leafNMagic())
		if err != nil {
			return err
		}
		if i > 0 {
			binary.BigEndian.PutUint32(b.data[4:], uint32(leafAt[i-1])) // back
		}
		if i+1 < nLeaves {
			binary.BigEndian.PutUint32(b.data[0:], uint32(leafAt[i+1])) // forw
		}
		run := d.ents[start : start+n]
		d.putLeafEnts(b.data, run)
		d.t.markDirty(b)
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
			b, err := d.indexBlock(at[i], kindDA, f.daNodeMagic())
			if err != nil {
				return err
			}
			if i > 0 {
				binary.BigEndian.PutUint32(b.data[4:], uint32(at[i-1]))
			}
			if i+1 < nNodes {
				binary.BigEndian.PutUint32(b.data[0:], uint32(at[i+1]))
			}
			p := b.data
			binary.BigEndian.PutUint16(p[f.daInfoSize():], uint16(n))
			binary.BigEndian.PutUint16(p[f.daInfoSize()+2:], uint16(lvl+1))
			hdr := f.nodeHdrSize()
			for j, k := range kids[start : start+n] {
				binary.BigEndian.PutUint32(p[hdr+8*j:], k.hash)
				binary.BigEndian.PutUint32(p[hdr+8*j+4:], uint32(k.fb))
			}
			d.t.markDirty(b)
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
		b, err := d.indexBlock(fb, kindDirData, d.freeMagic())
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
			binary.BigEndian.PutUint16(b.data[hdr+2*i:], bestValue(best))
			if best >= 0 {
				used++
			}
		}
		h := b.data[4:]
		if d.g.crc {
			h = b.data[0x30:]
		}
		binary.BigEndian.PutUint32(h[0:], uint32(first))
		binary.BigEndian.PutUint32(h[4:], uint32(len(bests)))
		binary.BigEndian.PutUint32(h[8:], uint32(used))
		d.t.markDirty(b)
	}
	return nil
}
