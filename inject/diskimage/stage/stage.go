// Package stage holds a filesystem engine's writes in memory until the
// whole operation has succeeded, so that a failure found only while
// writing (no space left for the last file, a corrupt block met in the
// third item) leaves the device byte for byte unchanged.
//
// A Stage sits between a device (a partition section) and the engine:
//
//	device ◀─Commit── Stage ◀─ReadAt/WriteAt/Sync── engine
//
// Every WriteAt is logged with a copy of its bytes, and reads see the
// logged writes. Sync, the engine's ordering barrier, is logged too. On
// Commit the writes reach the device in their original order, each
// barrier a sync of the device, so the order the engine promises for a
// crash (data before the metadata naming it) still holds on the device;
// on Discard they are dropped. The staged bytes are bounded by a limit:
// a write past it fails with ErrLimit, as any other write error would,
// and nothing reaches the device.
package stage

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/guestinject/guestinject/errs"
)

// DefaultLimit bounds the bytes a Stage holds when New is given no limit.
const DefaultLimit = 1 << 30

// Errors of the package; test with errors.Is.
var (
	// ErrLimit: the staged writes would exceed the Stage's limit.
	ErrLimit = errs.New(errs.ErrNoSpace, "staged writes exceed the staging limit")
	// ErrDone: the Stage was already committed or discarded.
	ErrDone = errs.New(errs.ErrInvalid, "staging area already committed or discarded")
	// ErrOutOfRange: a write outside the device.
	ErrOutOfRange = errs.New(errs.ErrOutOfRange, "write outside the staged device")
)

// Device is what a Stage reads from and, on Commit, writes to.
type Device interface {
	io.ReaderAt
	io.WriterAt
}

// Checker is served by a Device that can judge a write before it is made
// (a qcow2 image refuses a write landing on its own metadata). Commit
// asks it about every logged write before it makes the first, so such a
// refusal leaves the device unchanged.
type Checker interface {
	CheckWrite(off, n int64) error
}

// entryOverhead is what one logged write costs beyond its bytes (the log
// entry and its index slots), counted against the limit.
const entryOverhead = 64

// chunkShift sizes the read index's chunks (1 MiB): a read looks only at
// the writes that touched the chunks it spans.
const chunkShift = 20

// entry is one logged write, or a barrier (data nil, barrier set).
type entry struct {
	off     int64
	data    []byte
	barrier bool
}

// Stage is an io.ReaderAt and io.WriterAt (and a syncer) over a device
// that keeps every write in memory until Commit. It is safe for
// concurrent use.
type Stage struct {
	mu     sync.Mutex
	dev    Device
	size   int64
	sync   func() error
	limit  int64
	log    []entry
	chunks map[int64][]int32 // chunk -> indices of the writes touching it, ascending
	staged int64             // bytes held, overhead included
	writes int
	done   bool
}

// New stages writes to the first size bytes of dev. sync (may be nil) is
// called for each barrier on Commit; limit bounds the staged bytes
// (DefaultLimit when <= 0).
func New(dev Device, size int64, sync func() error, limit int64) *Stage {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Stage{dev: dev, size: size, sync: sync, limit: limit, chunks: map[int64][]int32{}}
}

// Limit returns the most bytes the Stage holds.
func (s *Stage) Limit() int64 { return s.limit }

// Staged returns the bytes held now (logged data and bookkeeping) and the
// number of writes logged.
func (s *Stage) Staged() (bytes int64, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.staged, s.writes
}

// WriteAt logs a copy of p at off; nothing reaches the device.
func (s *Stage) WriteAt(p []byte, off int64) (int, error) { return s.log1(p, off, false) }

// WriteAtOwned is WriteAt for a caller that gives p away: the Stage logs
// p itself, not a copy, and neither it nor the caller changes p after.
// The ext engine writes its transaction's blocks this way (they are
// fresh buffers it drops, or keeps read-only in its cache, after commit).
func (s *Stage) WriteAtOwned(p []byte, off int64) (int, error) { return s.log1(p, off, true) }

func (s *Stage) log1(p []byte, off int64, owned bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.done:
		return 0, ErrDone
	case off < 0 || off > s.size || int64(len(p)) > s.size-off:
		return 0, fmt.Errorf("stage: %d bytes at offset %d of a %d-byte device: %w", len(p), off, s.size, ErrOutOfRange)
	case len(p) == 0:
		return 0, nil
	}
	cost := int64(len(p)) + entryOverhead
	if cost > s.limit-s.staged {
		return 0, fmt.Errorf("stage: %d bytes at offset %d on top of %d staged would pass the %d-byte limit: %w", len(p), off, s.staged, s.limit, ErrLimit)
	}
	if len(s.log) >= 1<<31-1 {
		return 0, fmt.Errorf("stage: too many writes: %w", ErrLimit)
	}
	idx := int32(len(s.log))
	if !owned {
		p = slices.Clone(p)
	}
	s.log = append(s.log, entry{off: off, data: p})
	for c := off >> chunkShift; c <= (off+int64(len(p))-1)>>chunkShift; c++ {
		s.chunks[c] = append(s.chunks[c], idx)
	}
	s.staged += cost
	s.writes++
	return len(p), nil
}

// Sync logs an ordering barrier: on Commit the device is synced there.
func (s *Stage) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return ErrDone
	}
	if n := len(s.log); n > 0 && !s.log[n-1].barrier {
		s.log = append(s.log, entry{barrier: true})
	}
	return nil
}

// ReadAt reads the device as the logged writes leave it: staged bytes
// from memory, the rest from the device.
func (s *Stage) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p) == 0 || len(s.log) == 0 || off < 0 {
		return s.dev.ReadAt(p, off)
	}
	end := off + int64(len(p))
	var cand []int32
	for c := off >> chunkShift; c <= (end-1)>>chunkShift; c++ {
		cand = append(cand, s.chunks[c]...)
	}
	if len(cand) == 0 {
		return s.dev.ReadAt(p, off)
	}
	slices.Sort(cand)
	cand = slices.Compact(cand)
	// Oldest first, so a later write's bytes win; remember what was
	// covered and read only the gaps from the device.
	var covered [][2]int64
	for _, i := range cand {
		e := &s.log[i]
		a, b := max(e.off, off), min(e.off+int64(len(e.data)), end)
		if a >= b {
			continue
		}
		copy(p[a-off:b-off], e.data[a-e.off:b-e.off])
		covered = append(covered, [2]int64{a - off, b - off})
	}
	slices.SortFunc(covered, func(x, y [2]int64) int { return cmp.Compare(x[0], y[0]) })
	pos := int64(0)
	for _, c := range append(covered, [2]int64{int64(len(p)), int64(len(p))}) {
		if c[0] > pos {
			n, err := s.dev.ReadAt(p[pos:c[0]], off+pos)
			if err != nil && !(errors.Is(err, io.EOF) && int64(n) == c[0]-pos) {
				return int(pos) + n, err
			}
		}
		pos = max(pos, c[1])
	}
	return len(p), nil
}

// Commit writes the logged writes to the device in their order, syncing
// the device at each barrier (not after the last write: the caller
// flushes the device when it closes it); writes that touch end to end
// between two barriers go out as one (see write). After an error the
// device holds a prefix of the writes (in order, so within the engine's
// crash-order promise); the error says how far it got.
func (s *Stage) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return ErrDone
	}
	s.done = true
	log := s.log
	s.log, s.chunks, s.staged, s.writes = nil, nil, 0, 0
	if c, ok := s.dev.(Checker); ok {
		for i, e := range log {
			if e.barrier {
				continue
			}
			if err := c.CheckWrite(e.off, int64(len(e.data))); err != nil {
				return fmt.Errorf("stage: write %d of %d (offset %d) refused before anything was written: %w", i+1, len(log), e.off, err)
			}
		}
	}
	return s.write(len(log), func(i int) Op { return Op{Off: log[i].off, Data: log[i].data, Sync: log[i].barrier} }, "write")
}

// Written returns the byte ranges ([offset, end)) the logged writes
// cover, sorted and merged: what a journaled commit reads back (through
// ReadAt) and writes its own way with CommitOps.
func (s *Stage) Written() [][2]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r [][2]int64
	for _, e := range s.log {
		if !e.barrier {
			r = append(r, [2]int64{e.off, e.off + int64(len(e.data))})
		}
	}
	slices.SortFunc(r, func(x, y [2]int64) int { return cmp.Compare(x[0], y[0]) })
	out := r[:0]
	for _, w := range r {
		if n := len(out); n > 0 && w[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], w[1])
			continue
		}
		out = append(out, w)
	}
	return out
}

// Base returns the device under the Stage: reads of it do not see the
// logged writes.
func (s *Stage) Base() io.ReaderAt { return s.dev }

// Op is one write of a plan given to CommitOps, or (Sync) a flush.
type Op struct {
	Off  int64
	Data []byte
	Sync bool
}

// CommitOps ends the Stage as Commit does, but writes ops instead of the
// logged writes: a plan built from them (a journaled commit: the same
// final bytes, plus a log). Every write is checked first (Checker, the
// device's bounds), so a refusal leaves the device unchanged; each Sync
// flushes the device.
func (s *Stage) CommitOps(ops []Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return ErrDone
	}
	s.done = true
	s.log, s.chunks, s.staged, s.writes = nil, nil, 0, 0
	c, _ := s.dev.(Checker)
	for i, o := range ops {
		if o.Sync {
			continue
		}
		if o.Off < 0 || o.Off > s.size || int64(len(o.Data)) > s.size-o.Off {
			return fmt.Errorf("stage: planned write %d of %d: %d bytes at offset %d of a %d-byte device: %w", i+1, len(ops), len(o.Data), o.Off, s.size, ErrOutOfRange)
		}
		if c != nil {
			if err := c.CheckWrite(o.Off, int64(len(o.Data))); err != nil {
				return fmt.Errorf("stage: planned write %d of %d (offset %d) refused before anything was written: %w", i+1, len(ops), o.Off, err)
			}
		}
	}
	return s.write(len(ops), func(i int) Op { return ops[i] }, "planned write")
}

// MaxRun bounds the bytes of adjacent writes Commit and CommitOps join
// into one device write (the copy they make to join them).
const MaxRun = 1 << 20

// write makes the n ops at(0..n-1) on the device in order, each Sync a
// flush. Writes that follow one another and touch end to end (one ending
// where the next begins, no flush between) reach the device as one write
// of the run, up to MaxRun bytes: one pwrite per block run instead of one
// per block. The bytes and their order relative to the flushes are the
// same; between two flushes a device may reorder or tear writes anyway,
// so joining them promises nothing less. An error names the first of the
// ops the failed write carried.
func (s *Stage) write(n int, at func(int) Op, what string) error {
	var run []byte
	for i := 0; i < n; {
		o := at(i)
		if o.Sync {
			if err := s.syncDev(); err != nil {
				return fmt.Errorf("stage: committing %s %d of %d (a flush): %w", what, i+1, n, err)
			}
			i++
			continue
		}
		end, j := o.Off+int64(len(o.Data)), i+1
		for ; j < n; j++ {
			next := at(j)
			if next.Sync || next.Off != end || end-o.Off+int64(len(next.Data)) > MaxRun {
				break
			}
			end += int64(len(next.Data))
		}
		data := o.Data
		if j > i+1 {
			run = slices.Grow(run[:0], int(end-o.Off))
			for k := i; k < j; k++ {
				run = append(run, at(k).Data...)
			}
			data = run
		}
		w, err := s.dev.WriteAt(data, o.Off)
		if err == nil && w != len(data) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fmt.Errorf("stage: committing %s %d of %d (offset %d, %d bytes joined with the %d after it): %w", what, i+1, n, o.Off, len(data), j-i-1, err)
		}
		i = j
	}
	return nil
}

func (s *Stage) syncDev() error {
	if s.sync == nil {
		return nil
	}
	return s.sync()
}

// Discard drops the logged writes: the device stays as it was.
func (s *Stage) Discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	s.log, s.chunks, s.staged, s.writes = nil, nil, 0, 0
}
