package xfs

import "slices"

// Write ranks: the barrier groups of a transaction that frees nothing,
// computed from what each operation wrote instead of from the classes
// alone, so that a batch of operations whose writes chain (a directory
// made by one operation, a file made in it by the next) commits as one
// transaction with as many barriers as the chain is deep, not as one
// transaction per link with three groups each.
//
// The rule each operation adds is the one writeorder.go gives a single
// transaction: every owner it writes (an inode, a bmap block) lands
// before every name it writes (a directory block, a directory inode
// holding entries), after a barrier. A buffer's role in an operation is
// the class of its first request in that operation. Fresh blocks and the
// allocation state (rank 0) are written first whatever the operations
// say: nothing on disk references them until an owner or a name of a
// later rank does. The ranks are the longest paths of the graph the
// operations' rules make (owners → operation → names); the primary
// superblock's counters go with the last rank. An operation whose rule
// would close a cycle, or would need a buffer that an earlier operation
// wrote at rank 0 (a fresh directory block, an inode of a new chunk) to
// follow its owners, is a conflict: the batch commits before it, as
// batch.go describes.

// opRoles are the buffers an operation asked for as owners and names.
type opRoles struct {
	owners []int64
	names  []int64
	held   map[int64]bool // names held before the operation began
}

// role records b's role in the open operation at its first request.
func (t *tx) role(b *txBuf, class wclass) {
	if t.seen == nil {
		t.seen = map[int64]bool{}
	}
	if t.seen[b.off] {
		return
	}
	t.seen[b.off] = true
	switch class {
	case classOwner:
		t.cur.owners = append(t.cur.owners, b.off)
	case className:
		t.cur.names = append(t.cur.names, b.off)
		if t.undo != nil && t.undo.held[b.off] {
			if t.cur.held == nil {
				t.cur.held = map[int64]bool{}
			}
			t.cur.held[b.off] = true
		}
	}
}

// endOp closes the open operation's roles: its dirty owners and names
// join the transaction's rules. It reports false when the rules then
// admit no order (a conflict); the operation's rules are kept either
// way (rollback drops them with the operation).
func (t *tx) endOp() bool {
	op := opRoles{held: t.cur.held}
	keep := func(offs []int64) []int64 {
		var out []int64
		for _, off := range offs {
			if b := t.bufs[off]; b != nil && b.dirty {
				out = append(out, off)
			}
		}
		return out
	}
	op.owners, op.names = keep(t.cur.owners), keep(t.cur.names)
	t.cur, t.seen = opRoles{}, nil
	if len(op.owners) == 0 && len(op.names) == 0 {
		return true
	}
	t.ops = append(t.ops, op)
	if len(op.owners) == 0 || len(op.names) == 0 {
		return true
	}
	for _, n := range op.names {
		if op.held[n] && fixedRank(t.bufs[n].class) {
			return false
		}
	}
	_, ok := t.ranks()
	return ok
}

// fixedRank reports whether buffers of class c always go in rank 0.
func fixedRank(c wclass) bool { return c == classFresh || c == classAlloc }

// ranks computes every dirty buffer's rank from the operations' rules;
// false when they hold a cycle.
func (t *tx) ranks() (map[int64]int, bool) {
	// Nodes: buffers by offset, operations as -(index+1).
	type edge struct {
		to int64
		w  int
	}
	succ := map[int64][]edge{}
	indeg := map[int64]int{}
	rank := map[int64]int{}
	node := func(id int64) {
		if _, ok := rank[id]; ok {
			return
		}
		switch {
		case id < 0:
			rank[id] = 0
		case fixedRank(t.bufs[id].class):
			rank[id] = 0
		default:
			rank[id] = 1
		}
	}
	for i, op := range t.ops {
		hub := -int64(i) - 1
		node(hub)
		for _, o := range op.owners {
			node(o)
			succ[o] = append(succ[o], edge{hub, 0})
			indeg[hub]++
		}
		for _, n := range op.names {
			node(n)
			if fixedRank(t.bufs[n].class) {
				continue // written first; what names it follows the owners
			}
			succ[hub] = append(succ[hub], edge{n, 1})
			indeg[n]++
		}
	}
	var queue []int64
	for id := range rank {
		if indeg[id] == 0 {
			queue = append(queue, id)
		}
	}
	done := 0
	for len(queue) > 0 {
		id := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		done++
		for _, e := range succ[id] {
			rank[e.to] = max(rank[e.to], rank[id]+e.w)
			if indeg[e.to]--; indeg[e.to] == 0 {
				queue = append(queue, e.to)
			}
		}
	}
	return rank, done == len(rank)
}

// rankOrder returns the dirty buffers of a transaction that frees
// nothing in commit order with each one's rank: by rank, class and first
// dirtying; the superblock with the last rank.
func (t *tx) rankOrder() ([]*txBuf, []int) {
	t.endOp() // a transaction run without batching is one operation
	rank, ok := t.ranks()
	var out []*txBuf
	top := 1
	for _, b := range t.bufs {
		if !b.dirty {
			continue
		}
		out = append(out, b)
		if !ok {
			// Not reached (a conflicting operation is committed on
			// its own): the classes' order.
			rank[b.off] = t.group(b.class)
		} else if _, in := rank[b.off]; !in {
			rank[b.off] = 1
			if fixedRank(b.class) {
				rank[b.off] = 0
			}
		}
		if b.class != classSuper {
			top = max(top, rank[b.off])
		}
	}
	for _, b := range out {
		if b.class == classSuper {
			rank[b.off] = top
		}
	}
	slices.SortFunc(out, func(a, b *txBuf) int {
		if ra, rb := rank[a.off], rank[b.off]; ra != rb {
			return ra - rb
		}
		if a.class != b.class {
			return int(a.class) - int(b.class)
		}
		return a.seq - b.seq
	})
	rs := make([]int, len(out))
	for i, b := range out {
		rs[i] = rank[b.off]
	}
	return out, rs
}
