package ext

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/guestinject/guestinject/vfs/ext/internal/dirblock"
)

// memDir is an in-memory dirStore.
type memDir struct {
	bs     int
	blks   [][]byte
	maxBlk int // grow fails past this many blocks (0: no limit)
}

func (m *memDir) block(lblk uint64) ([]byte, error) {
	if lblk >= uint64(len(m.blks)) {
		return nil, fmt.Errorf("block %d of %d", lblk, len(m.blks))
	}
	return m.blks[lblk], nil
}

func (m *memDir) peek(lblk uint64) ([]byte, error) { return m.block(lblk) }

func (m *memDir) grow() (uint64, []byte, error) {
	if m.maxBlk > 0 && len(m.blks) >= m.maxBlk {
		return 0, nil, errors.New("memDir full")
	}
	b := make([]byte, m.bs)
	m.blks = append(m.blks, b)
	return uint64(len(m.blks) - 1), b, nil
}

func (m *memDir) blocks() uint64 { return uint64(len(m.blks)) }

func exact(name string) func([]byte) bool {
	return func(b []byte) bool { return string(b) == name }
}

// names lists the live names of leaf b (dirblock tests its own copy).
func names(t *testing.T, b []byte, lf dirblock.Format) []string {
	t.Helper()
	es, err := dirblock.Entries(b, lf)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Name)
	}
	return out
}

func newLinear(bs int, csum bool) (*dirw, *memDir) {
	st := &memDir{bs: bs}
	w := &dirw{st: st, ino: 12, lf: dirblock.Format{BlockSize: bs, Filetype: true, Tail: csum}, csum: csum, seed: 0xABCD}
	_, b, _ := st.grow()
	dirblock.InitDot(b, w.lf, 12, 2)
	w.sealLeaf(b)
	return w, st
}

func TestLinearAddGrowsAndRemoves(t *testing.T) {
	w, st := newLinear(1024, true)
	const n = 200
	for i := 0; i < n; i++ {
		if err := w.linearAdd([]byte(fmt.Sprintf("file-%03d", i)), exact(fmt.Sprintf("file-%03d", i)), uint32(100+i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.linearAdd([]byte("file-007"), exact("file-007"), 1, 1); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("duplicate: %v", err)
	}
	if st.blocks() < 4 {
		t.Fatalf("%d names in %d blocks", n, st.blocks())
	}
	for i := 0; i < n; i += 2 {
		ino, err := w.linearRemove(exact(fmt.Sprintf("file-%03d", i)))
		if err != nil || ino != uint32(100+i) {
			t.Fatalf("remove %d: %d %v", i, ino, err)
		}
	}
	if _, err := w.linearRemove(exact("file-000")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second remove: %v", err)
	}
	blocks := st.blocks()
	for i := 0; i < n; i += 2 { // the freed space is reused: no new block
		if err := w.linearAdd([]byte(fmt.Sprintf("file-%03d", i)), exact(fmt.Sprintf("file-%03d", i)), uint32(100+i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if st.blocks() != blocks {
		t.Errorf("reinserting grew the directory from %d to %d blocks", blocks, st.blocks())
	}
	seen := 0
	for lblk := uint64(0); lblk < st.blocks(); lblk++ {
		b, err := w.leaf(lblk) // checksum verified
		if err != nil {
			t.Fatal(err)
		}
		seen += len(names(t, b, w.lf))
	}
	if seen != n+2 {
		t.Errorf("%d entries, want %d", seen, n+2)
	}
	for i := 0; i < n; i++ {
		w.linearRemove(exact(fmt.Sprintf("file-%03d", i)))
	}
	if has, err := w.hasNames(); has || err != nil {
		t.Errorf("emptied directory: has names %v, %v", has, err)
	}
}

func TestLinearLeafChecksumChecked(t *testing.T) {
	w, st := newLinear(1024, true)
	st.blks[0][30] ^= 1
	err := w.linearAdd([]byte("x"), exact("x"), 5, 1)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("damaged block: %v", err)
	}
}
