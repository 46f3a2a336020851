package ext

import (
	"fmt"
	"sort"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Clusters (bigalloc).
//
// With bigalloc the allocation unit is a cluster of 2^n blocks: a block
// bitmap has one bit per cluster, and a group descriptor's free count
// counts clusters (the superblock's free count still counts blocks). The
// rules e2fsck enforces, and this engine keeps:
//
//   - the blocks of one logical cluster of a file (logical blocks
//     [k*ratio, (k+1)*ratio)) map into one physical cluster, each at its
//     own offset in it: a hole in a logical cluster that already has a
//     physical cluster is filled there, without an allocation;
//   - a cluster belongs to one file, and within it to one logical cluster
//     or to one metadata block (an extent-tree node, an xattr block): each
//     metadata block takes a cluster of its own;
//   - i_blocks counts every cluster a file uses, in full;
//   - a cluster is freed only when no block of it is still mapped.
//
// Clusters are aligned on absolute block numbers (s_first_data_block is 0
// and a group holds whole clusters). Without bigalloc a cluster is one
// block and every function here reduces to the block case.

// ratio is the number of blocks per cluster (1 without bigalloc).
func (f *FS) ratio() uint64 { return uint64(f.geo.clusterSize / f.geo.blockSize) }

// bigalloc reports whether clusters are larger than blocks.
func (f *FS) bigalloc() bool { return f.geo.clusterSize > f.geo.blockSize }

// clusterStart is the first block of the cluster holding block b.
func (f *FS) clusterStart(b uint64) uint64 { return b &^ (f.ratio() - 1) }

// clusterBit is the bit of block b in the block bitmap of its group g.
func (f *FS) clusterBit(g uint32, b uint64) uint64 { return (b - f.groupFirst(g)) / f.ratio() }

// groupClusters is how many bits of group g's block bitmap stand for
// clusters of the filesystem (the last group may be short).
func (f *FS) groupClusters(g uint32) uint64 {
	r := f.ratio()
	return (f.groupLen(g) + r - 1) / r
}

// clusterMate returns, on a bigalloc filesystem, the physical block where
// hole l of file map fm must go because another block of its logical
// cluster is mapped already (at is where an extent starting at l would be
// inserted): the same physical cluster, at l's offset. ok is false when
// no block of the logical cluster is mapped (the caller allocates a
// cluster). A neighbour that breaks the cluster rule is refused as
// corruption, naming the inode and block; a cluster that also holds
// filesystem metadata is refused by checkTarget (targetProblem looks at
// whole clusters).
func (t *tx) clusterMate(fm *fileMap, at int, l uint64) (uint64, bool, error) {
	f := t.f
	if !f.bigalloc() {
		return 0, false, nil
	}
	mask := f.ratio() - 1
	lc := l &^ mask
	var lq, pq uint64
	switch {
	case at > 0 && fm.exts[at-1].end() > lc:
		e := fm.exts[at-1]
		lq, pq = e.end()-1, e.pblk+e.n-1
	case at < len(fm.exts) && fm.exts[at].lblk <= lc+mask:
		e := fm.exts[at]
		lq, pq = e.lblk, e.pblk
	default:
		return 0, false, nil
	}
	if lq&mask != pq&mask {
		return 0, false, corrupt("inode", uint64(fm.in.num), 0, -1,
			"logical block %d maps to physical block %d, at another offset of its %d-block cluster", lq, pq, f.ratio())
	}
	p := pq&^mask | l&mask
	if err := t.checkTarget(mapKind(fm.in), fm.in.num, int64(l), p); err != nil {
		return 0, false, err
	}
	return p, true, nil
}

// releaseRuns frees the physical runs a truncation dropped from file in,
// whose remaining extents are kept. Without bigalloc every block is
// freed. With bigalloc a cluster is freed (and i_blocks lowered by a
// whole cluster) only when no kept extent still maps a block of it, and
// once even when two dropped runs share it. The work is on runs of
// clusters: it follows the number of extents, not their length.
func (t *tx) releaseRuns(in *inode, kept []xext, dropped []blockRun) error {
	f := t.f
	if !f.bigalloc() {
		for _, r := range dropped {
			if err := t.freeFileBlocks(in, r.start, r.n); err != nil {
				return err
			}
		}
		return nil
	}
	drop := make([]blockRun, 0, len(dropped))
	for _, r := range dropped {
		if !f.validRange(r.start, r.n) {
			return t.freeFileBlocks(in, r.start, r.n) // refused, naming the run
		}
		s, n := f.clusterSpan(r.start, r.n)
		drop = append(drop, blockRun{s, n})
	}
	drop = mergeRuns(drop)
	if len(drop) == 0 {
		return nil
	}
	lo, hi := drop[0].start, drop[len(drop)-1].start+drop[len(drop)-1].n
	var keep []blockRun
	for _, e := range kept {
		if e.pblk < hi && e.pblk+e.n > lo {
			s, n := f.clusterSpan(e.pblk, e.n)
			keep = append(keep, blockRun{s, n})
		}
	}
	for _, r := range subtractRuns(drop, mergeRuns(keep)) {
		if err := t.freeFileBlocks(in, r.start, r.n); err != nil {
			return err
		}
	}
	return nil
}

// mergeRuns sorts runs and joins those that overlap or touch.
func mergeRuns(runs []blockRun) []blockRun {
	sort.Slice(runs, func(i, j int) bool { return runs[i].start < runs[j].start })
	out := runs[:0]
	for _, r := range runs {
		if k := len(out); k > 0 && r.start <= out[k-1].start+out[k-1].n {
			out[k-1].n = max(out[k-1].n, r.start+r.n-out[k-1].start)
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtractRuns returns the parts of a (sorted, disjoint) not in b (sorted,
// disjoint).
func subtractRuns(a, b []blockRun) []blockRun {
	var out []blockRun
	j := 0
	for _, r := range a {
		s, end := r.start, r.start+r.n
		for j < len(b) && b[j].start+b[j].n <= s {
			j++
		}
		for k := j; k < len(b) && b[k].start < end; k++ {
			if b[k].start > s {
				out = append(out, blockRun{s, b[k].start - s})
			}
			s = max(s, b[k].start+b[k].n)
		}
		if s < end {
			out = append(out, blockRun{s, end - s})
		}
	}
	return out
}

// checkClusterMapping refuses, on a bigalloc filesystem, an inode the
// engine cannot map by clusters: a block-mapped one (bigalloc requires
// extents).
func (f *FS) checkClusterMapping(in *inode) error {
	if f.bigalloc() && !in.flag(layout.FlagExtents) && !in.flag(layout.FlagInlineData) {
		return fmt.Errorf("%w: block-mapped inode %d on a bigalloc filesystem (bigalloc needs extents)", ErrUnsupportedFeature, in.num)
	}
	return nil
}

// clusterSpan widens blocks [start, start+n) to the whole clusters
// holding them.
func (f *FS) clusterSpan(start, n uint64) (uint64, uint64) {
	r := f.ratio()
	s := f.clusterStart(start)
	end := (start + n + r - 1) &^ (r - 1)
	return s, end - s
}
