package xfs

// Batching: with Options.Batch the write operations of facewrite.go add
// to one open transaction instead of committing one each, and Flush
// commits it, so an injection of ten operations costs the barriers of
// one transaction, not of ten. Each operation stays all-or-nothing: a
// mark taken before it (opMark) lets a failing operation roll the
// transaction back to the state the operations before it left. The
// buffers of the transaction are saved lazily, on their first use by the
// operation (tx.buf, tx.newBuf), so an operation costs what it touches;
// the AG headers the allocators hold across operations are saved at the
// mark. An operation that frees space never shares a transaction with
// another (writeorder.go: frees commit in reverse order): one that turns
// out to free is rolled back, the batch committed, and the operation run
// again in a transaction of its own, committed at once. An operation
// whose writes depend on an earlier one's (a file made in a directory the
// batch made: the directory's inode must now follow the file's) stays in
// the batch: the write ranks of txorder.go put each buffer after what it
// names, so the batch costs one barrier per level of such chains. Only
// an operation whose rules cannot be ordered with the batch's (a cycle,
// or a block written first by an earlier operation that must now follow
// this one's owners) commits the batch and starts the next one.

// Batch limits: a batch is committed once it holds this many buffers or
// bytes, so the per-operation mark stays small.
const (
	batchMaxBufs  = 1024
	batchMaxBytes = 32 << 20
)

// savedBuf is a buffer's state at a mark.
type savedBuf struct {
	data  []byte
	kind  bufKind
	class wclass
	dirty bool
	seq   int
}

// opMark is the transaction's state before an operation.
type opMark struct {
	held   map[int64]bool // buffers held at the mark
	saved  map[int64]savedBuf
	nDirty int
	frees  bool
	bytes  int64
	allocs map[uint32]bool
	inos   map[uint32]bool
	nOps   int // operations whose write rules the transaction held
	// conflict: the operation's writes cannot be ordered with those of
	// the operations before it (txorder.go).
	conflict bool
}

// mark records the transaction's state and starts saving the buffers the
// next operation touches.
func (t *tx) mark() *opMark {
	m := &opMark{held: make(map[int64]bool, len(t.bufs)), saved: map[int64]savedBuf{},
		nDirty: t.nDirty, frees: t.frees, bytes: t.bytes, allocs: map[uint32]bool{}, inos: map[uint32]bool{}, nOps: len(t.ops)}
	t.cur, t.seen = opRoles{}, nil
	for off := range t.bufs {
		m.held[off] = true
	}
	for ag, a := range t.allocs {
		m.allocs[ag] = true
		m.save(a.agf)
	}
	for ag, a := range t.inos {
		m.inos[ag] = true
		m.save(a.agi)
	}
	t.undo = m
	return m
}

// save keeps b's state, once, if the mark holds it.
func (m *opMark) save(b *txBuf) {
	if m == nil || !m.held[b.off] {
		return
	}
	if _, ok := m.saved[b.off]; ok {
		return
	}
	m.saved[b.off] = savedBuf{data: append([]byte(nil), b.data...), kind: b.kind, class: b.class, dirty: b.dirty, seq: b.seq}
}

// rollback returns the transaction to mark m: buffers added since are
// dropped, those changed are restored.
func (t *tx) rollback(m *opMark) {
	t.undo = nil
	for off, b := range t.bufs {
		if m.held[off] {
			continue
		}
		delete(t.bufs, off)
		for s := b.off; s < b.off+int64(len(b.data)); s += txUnit {
			if t.sectors[s] == b {
				delete(t.sectors, s)
			}
		}
	}
	for off, sv := range m.saved {
		b := t.bufs[off]
		copy(b.data, sv.data)
		b.kind, b.class, b.dirty, b.seq = sv.kind, sv.class, sv.dirty, sv.seq
	}
	t.nDirty, t.frees, t.bytes = m.nDirty, m.frees, m.bytes
	t.ops, t.cur, t.seen = t.ops[:m.nOps], opRoles{}, nil
	for ag := range t.allocs {
		if !m.allocs[ag] {
			delete(t.allocs, ag)
		}
	}
	for ag := range t.inos {
		if !m.inos[ag] {
			delete(t.inos, ag)
		}
	}
	t.f.blocks.Purge()
	t.f.inodes.Purge()
}

// inBatch runs one operation in the open batch transaction (opening one
// when none is): see the comment at the top of this file.
func (f *FS) inBatch(fn func(t *tx) error) error {
	t := f.tx
	if t == nil {
		var err error
		if t, err = f.begin(); err != nil {
			return err
		}
	}
	m := t.mark()
	err := fn(t)
	if err == nil && !t.endOp() {
		m.conflict = true
	}
	t.undo = nil
	if err != nil {
		t.rollback(m)
		if len(t.bufs) == 0 {
			t.abort()
		}
		return err
	}
	switch {
	case m.conflict:
		// The operation must follow the batch's writes: commit them,
		// then run it again in a new batch.
		t.rollback(m)
		if err := t.commit(); err != nil {
			return err
		}
		return f.inBatch(fn)
	case t.frees && len(m.held) > 0 && !m.frees:
		// This operation frees: alone in a transaction of its own.
		t.rollback(m)
		if err := t.commit(); err != nil {
			return err
		}
		t2, err := f.begin()
		if err != nil {
			return err
		}
		defer t2.abort()
		if err := fn(t2); err != nil {
			return err
		}
		return t2.commit()
	case t.frees, len(t.bufs) >= batchMaxBufs, t.bytes >= batchMaxBytes:
		return t.commit()
	}
	return nil
}

// Flush commits the operations a batching FS (Options.Batch) holds in
// its open transaction; without one it does nothing.
func (f *FS) Flush() error {
	defer f.wlock()()
	if f.tx == nil {
		return nil
	}
	return f.tx.commit()
}
