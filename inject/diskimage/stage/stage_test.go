package stage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// memDev is a device in memory that records what reaches it.
type memDev struct {
	b   []byte
	ops []string // "w OFF LEN" and "sync", in order
}

func (d *memDev) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(d.b)) {
		return 0, io.EOF
	}
	n := copy(p, d.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *memDev) WriteAt(p []byte, off int64) (int, error) {
	d.ops = append(d.ops, fmt.Sprintf("w %d %d", off, len(p)))
	return copy(d.b[off:], p), nil
}

func (d *memDev) sync() error { d.ops = append(d.ops, "sync"); return nil }

func newDev(size int) *memDev {
	d := &memDev{b: make([]byte, size)}
	for i := range d.b {
		d.b[i] = byte(i * 7)
	}
	return d
}

// Random overlapping writes (copied, or owned) and reads against a plain
// byte slice given the same writes: every read sees the latest bytes; the device is untouched
// until Commit, then equals the model, written in the engine's order with
// its barriers.
func TestStageReadsSeeWritesAndCommitKeepsOrder(t *testing.T) {
	const size = 3<<chunkShift + 12345
	rng := rand.New(rand.NewPCG(1, 2))
	dev := newDev(size)
	orig := bytes.Clone(dev.b)
	model := bytes.Clone(dev.b)
	s := New(dev, size, dev.sync, 0)
	var want []string
	for i := 0; i < 2000; i++ {
		off := rng.IntN(size)
		n := 1 + rng.IntN(min(size-off, 1<<rng.IntN(22)))
		switch rng.IntN(10) {
		case 0:
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			if len(want) > 0 && want[len(want)-1] != "sync" {
				want = append(want, "sync")
			}
		case 1, 2, 3, 4:
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			// WriteAt keeps a copy: the caller may reuse p at once.
			// WriteAtOwned keeps p, which the caller leaves alone.
			write, reuse := s.WriteAt, true
			if i%2 == 1 {
				write, reuse = s.WriteAtOwned, false
			}
			if _, err := write(p, int64(off)); err != nil {
				t.Fatal(err)
			}
			copy(model[off:], p)
			if reuse {
				clear(p)
			}
			want = append(want, fmt.Sprintf("w %d %d", off, n))
		default:
			p := make([]byte, n)
			if _, err := s.ReadAt(p, int64(off)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, model[off:off+n]) {
				t.Fatalf("read %d bytes at %d after %d operations: differs from the writes", n, off, i)
			}
		}
	}
	if !bytes.Equal(dev.b, orig) || len(dev.ops) != 0 {
		t.Fatal("the device changed before Commit")
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dev.b, model) {
		t.Fatal("committed device differs from the writes")
	}
	if fmt.Sprint(dev.ops) != fmt.Sprint(joinRuns(want)) {
		t.Fatalf("commit order differs from the engine's:\n got %v\nwant %v", dev.ops, joinRuns(want))
	}
	if _, err := s.WriteAt([]byte{1}, 0); !errors.Is(err, ErrDone) {
		t.Errorf("write after commit: %v, want ErrDone", err)
	}
}

func TestStageDiscardLeavesDeviceUnchanged(t *testing.T) {
	dev := newDev(1 << 16)
	orig := bytes.Clone(dev.b)
	s := New(dev, int64(len(dev.b)), dev.sync, 0)
	for off := int64(0); off < 1<<16; off += 4096 {
		if _, err := s.WriteAt(bytes.Repeat([]byte{0xee}, 4096), off); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	s.Discard()
	if !bytes.Equal(dev.b, orig) || len(dev.ops) != 0 {
		t.Fatalf("discard wrote to the device: %v", dev.ops)
	}
	p := make([]byte, 16)
	if _, err := s.ReadAt(p, 0); err != nil || !bytes.Equal(p, orig[:16]) {
		t.Fatalf("read after discard: %v", err)
	}
	if err := s.Commit(); !errors.Is(err, ErrDone) {
		t.Errorf("commit after discard: %v, want ErrDone", err)
	}
}

func TestStageLimitAndBounds(t *testing.T) {
	dev := newDev(1 << 20)
	s := New(dev, 1<<20, nil, 10000)
	if _, err := s.WriteAt(make([]byte, 5000), 0); err != nil {
		t.Fatal(err)
	}
	_, err := s.WriteAt(make([]byte, 5000), 8192)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("write past the limit: %v, want ErrLimit", err)
	}
	if b, n := s.Staged(); n != 1 || b != 5000+entryOverhead {
		t.Errorf("staged %d bytes in %d writes after the refused one", b, n)
	}
	for _, c := range []struct{ off, n int64 }{{-1, 1}, {1 << 20, 1}, {1<<20 - 1, 2}} {
		if _, err := s.WriteAt(make([]byte, c.n), c.off); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("write %d at %d: %v, want ErrOutOfRange", c.n, c.off, err)
		}
	}
	if New(dev, 1, nil, 0).Limit() != DefaultLimit {
		t.Error("no limit given: want DefaultLimit")
	}
}

// A read past the device's end still reports io.EOF with the staged bytes
// before it in place.
func TestStageReadAtEnd(t *testing.T) {
	dev := newDev(100)
	s := New(dev, 100, nil, 0)
	if _, err := s.WriteAt([]byte("abc"), 97); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	n, err := s.ReadAt(p, 95)
	if n != 5 || !errors.Is(err, io.EOF) || string(p[2:5]) != "abc" {
		t.Fatalf("read at end: %d %v %q", n, err, p[:n])
	}
}

// checkDev refuses any write that touches [badOff, badOff+badLen).
type checkDev struct {
	*memDev
	badOff, badLen int64
	asked          int
}

var errBadTarget = errors.New("lands on metadata")

func (d *checkDev) CheckWrite(off, n int64) error {
	d.asked++
	if off < d.badOff+d.badLen && d.badOff < off+n {
		return errBadTarget
	}
	return nil
}

// TestStageCommitChecksEveryWriteFirst: a device that judges writes
// (qcow2's metadata overlap) is asked about every logged write before the
// first reaches it, so a refusal of the last one leaves the device
// unchanged; without a refusal everything is written.
func TestStageCommitChecksEveryWriteFirst(t *testing.T) {
	for _, refuse := range []bool{true, false} {
		dev := &checkDev{memDev: newDev(1 << 16), badOff: 40000, badLen: 10}
		if !refuse {
			dev.badOff = 1 << 20
		}
		orig := bytes.Clone(dev.b)
		s := New(dev, int64(len(dev.b)), dev.sync, 0)
		for i, off := range []int64{0, 8192, 512, 39990} {
			if _, err := s.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 4096), off); err != nil {
				t.Fatal(err)
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		err := s.Commit()
		if dev.asked != 4 {
			t.Errorf("refuse=%v: the device was asked about %d writes, want 4", refuse, dev.asked)
		}
		if !refuse {
			if err != nil || bytes.Equal(dev.b, orig) {
				t.Fatalf("healthy commit: %v (device changed: %v)", err, !bytes.Equal(dev.b, orig))
			}
			continue
		}
		if !errors.Is(err, errBadTarget) {
			t.Fatalf("Commit: %v, want the device's refusal", err)
		}
		if len(dev.ops) != 0 || !bytes.Equal(dev.b, orig) {
			t.Fatalf("a refused commit reached the device: %v", dev.ops)
		}
	}
}

// TestWrittenAndCommitOps: Written merges the logged ranges; CommitOps
// writes the plan with its flushes, after checking every planned write,
// so a refused one (or one outside the device) leaves the device as it
// was.
func TestWrittenAndCommitOps(t *testing.T) {
	dev := newDev(1 << 16)
	s := New(dev, 1<<16, dev.sync, 0)
	for _, w := range [][2]int{{100, 50}, {120, 100}, {4096, 10}, {0, 10}, {10, 5}} {
		if _, err := s.WriteAt(make([]byte, w[1]), int64(w[0])); err != nil {
			t.Fatal(err)
		}
	}
	s.Sync()
	if got, want := fmt.Sprint(s.Written()), "[[0 15] [100 220] [4096 4106]]"; got != want {
		t.Fatalf("Written = %s, want %s", got, want)
	}
	plan := []Op{{Off: 5, Data: []byte{1}}, {Sync: true}, {Off: 9000, Data: []byte{2, 3}}, {Sync: true}}
	if err := s.CommitOps(plan); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(dev.ops), "[w 5 1 sync w 9000 2 sync]"; got != want {
		t.Fatalf("device saw %s, want %s", got, want)
	}
	if err := s.CommitOps(plan); !errors.Is(err, ErrDone) {
		t.Fatalf("second CommitOps: %v, want ErrDone", err)
	}
	for name, p := range map[string][]Op{
		"refused":      {{Off: 5, Data: []byte{1}}, {Sync: true}, {Off: 700, Data: []byte{1, 2}}},
		"out of range": {{Off: 5, Data: []byte{1}}, {Off: 1<<16 - 1, Data: []byte{1, 2}}},
	} {
		d := newDev(1 << 16)
		orig := bytes.Clone(d.b)
		s := New(&checkDev{memDev: d, badOff: 701, badLen: 1}, 1<<16, d.sync, 0)
		if err := s.CommitOps(p); err == nil {
			t.Fatalf("%s: CommitOps succeeded", name)
		}
		if len(d.ops) != 0 || !bytes.Equal(d.b, orig) {
			t.Fatalf("%s: the device was written: %v", name, d.ops)
		}
	}
}

// joinRuns is what the device sees of the writes log ("w OFF LEN" and
// "sync"): consecutive writes touching end to end joined, up to MaxRun.
func joinRuns(log []string) []string {
	var out []string
	var off, n int64
	open := false
	for _, l := range log {
		var o, k int64
		if _, err := fmt.Sscanf(l, "w %d %d", &o, &k); err != nil {
			if open {
				out = append(out, fmt.Sprintf("w %d %d", off, n))
				open = false
			}
			out = append(out, l)
			continue
		}
		if open && o == off+n && n+k <= MaxRun {
			n += k
			continue
		}
		if open {
			out = append(out, fmt.Sprintf("w %d %d", off, n))
		}
		off, n, open = o, k, true
	}
	if open {
		out = append(out, fmt.Sprintf("w %d %d", off, n))
	}
	return out
}

// TestCommitJoinsBlockRuns: writes that touch end to end, with no barrier
// between, reach the device as one write per run (Commit and CommitOps),
// up to MaxRun bytes; a barrier, a gap, an overlap or a write going
// backwards ends a run; the device ends with the same bytes as write by
// write.
func TestCommitJoinsBlockRuns(t *testing.T) {
	const bs = 4096
	blk := func(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n*bs) }
	plan := []Op{
		{Off: 10 * bs, Data: blk(1, 1)}, {Off: 11 * bs, Data: blk(2, 2)}, {Off: 13 * bs, Data: blk(1, 3)}, // one run of 4
		{Off: 20 * bs, Data: blk(1, 4)}, // a gap: a new run
		{Off: 19 * bs, Data: blk(1, 5)}, // backwards: a new run
		{Sync: true},
		{Off: 20 * bs, Data: blk(1, 6)}, // after the barrier: a new run though it follows 19
		{Off: 21 * bs, Data: blk(1, 7)},
		{Off: 21*bs + 100, Data: []byte{8, 8}},                                                  // overlaps the last: not joined
		{Off: 40 * bs, Data: blk(MaxRun/bs-1, 9)}, {Off: 40*bs + MaxRun - bs, Data: blk(1, 10)}, // exactly MaxRun: joined
		{Off: 40*bs + MaxRun, Data: blk(1, 11)}, // would pass MaxRun: a new run
		{Sync: true},
	}
	want := "[w 40960 16384 w 81920 4096 w 77824 4096 sync w 81920 8192 w 86116 2 w 163840 1048576 w 1212416 4096 sync]"
	const size = 2 << 20
	model := newDev(size)
	for _, o := range plan {
		if !o.Sync {
			copy(model.b[o.Off:], o.Data)
		}
	}
	dev := newDev(size)
	if err := New(dev, size, dev.sync, 0).CommitOps(plan); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(dev.ops); got != want {
		t.Fatalf("CommitOps: the device saw\n %s\nwant\n %s", got, want)
	}
	if !bytes.Equal(dev.b, model.b) {
		t.Fatal("CommitOps: the device's bytes differ from the plan's, write by write")
	}
	dev = newDev(size)
	s := New(dev, size, dev.sync, 0)
	for _, o := range plan {
		var err error
		if o.Sync {
			err = s.Sync()
		} else {
			_, err = s.WriteAt(o.Data, o.Off)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(dev.ops); got != want {
		t.Fatalf("Commit: the device saw\n %s\nwant\n %s", got, want)
	}
	if !bytes.Equal(dev.b, model.b) {
		t.Fatal("Commit: the device's bytes differ from the writes, write by write")
	}
}
