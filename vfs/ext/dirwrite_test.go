package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
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

// names lists the live names of leaf b.
func names(t *testing.T, b []byte, lf leafFmt) []string {
	t.Helper()
	es, err := leafEntries(b, lf)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, string(e.name))
	}
	return out
}

func TestLeafInsertSplitsSlackAndReusesDeadEntries(t *testing.T) {
	for _, lf := range []leafFmt{{bs: 1024, filetype: true, tail: true}, {bs: 1024}, {bs: 65536, filetype: true, tail: true}} {
		b := make([]byte, lf.bs)
		initDotLeaf(b, lf, 12, 2)
		for i := 0; i < 3; i++ {
			ok, err := leafInsert(b, lf, []byte(fmt.Sprintf("name%d", i)), uint32(20+i), layout.FTRegular)
			if err != nil || !ok {
				t.Fatalf("%+v: insert %d: %v %v", lf, i, ok, err)
			}
		}
		if got := names(t, b, lf); fmt.Sprint(got) != "[. .. name0 name1 name2]" {
			t.Fatalf("%+v: names %v", lf, got)
		}
		ino, found, err := leafRemove(b, lf, exact("name1"))
		if err != nil || !found || ino != 21 {
			t.Fatalf("remove: %d %v %v", ino, found, err)
		}
		// The freed slack (merged into name0) is reused first.
		if ok, _ := leafInsert(b, lf, []byte("x"), 30, layout.FTDir); !ok {
			t.Fatal("reinsert failed")
		}
		if got := names(t, b, lf); fmt.Sprint(got) != "[. .. name0 x name2]" {
			t.Fatalf("%+v: names after reuse %v", lf, got)
		}
		if lf.tail {
			sealLeaf(b, 0x1234)
			if ok, has := leafChecksumOK(b, 0x1234); !ok || !has {
				t.Fatalf("%+v: tail after seal: ok %v has %v", lf, ok, has)
			}
		}
	}
}

func TestLeafRemoveFirstEntryMarksUnused(t *testing.T) {
	lf := leafFmt{bs: 1024, filetype: true}
	b := make([]byte, 1024)
	initLeaf(b, lf)
	leafInsert(b, lf, []byte("a"), 11, 1)
	leafInsert(b, lf, []byte("b"), 12, 1)
	if ino, found, _ := leafRemove(b, lf, exact("a")); !found || ino != 11 {
		t.Fatal("remove a")
	}
	d, _ := layout.DecodeDirent(b)
	if d.Inode != 0 || d.RecLength(1024) != 12 {
		t.Fatalf("first entry after remove: %+v", d)
	}
	// The dead first entry is reused by a name that fits it.
	leafInsert(b, lf, []byte("c"), 13, 1)
	if got := names(t, b, lf); fmt.Sprint(got) != "[c b]" {
		t.Fatalf("names %v", got)
	}
	if _, found, _ := leafRemove(b, lf, exact("zz")); found {
		t.Fatal("removed a missing name")
	}
}

func TestLeafFullAndHasNames(t *testing.T) {
	lf := leafFmt{bs: 1024, filetype: true, tail: true}
	b := make([]byte, 1024)
	initDotLeaf(b, lf, 12, 2)
	if has, _ := leafHasNames(b, lf); has {
		t.Fatal("fresh directory block has names")
	}
	n := 0
	for ; n < 100; n++ {
		ok, err := leafInsert(b, lf, bytes.Repeat([]byte{'a' + byte(n)}, 100), 20, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
	}
	// 1024 - 12 (tail) - 12 (".") - 12 ("..") = 988 = 8 entries of 108 plus 124 slack.
	if n != 9 {
		t.Errorf("fit %d 100-byte names, want 9", n)
	}
	if has, _ := leafHasNames(b, lf); !has {
		t.Fatal("full block has no names")
	}
	if err := walkLeaf(b, lf, func(slot) bool { return false }); err != nil {
		t.Fatal(err)
	}
}

func TestWalkLeafRejectsBadRecLen(t *testing.T) {
	lf := leafFmt{bs: 1024, filetype: true}
	for _, rl := range []int{0, 6, 13, 2048} {
		b := make([]byte, 1024)
		layout.PutDirent(b, 5, 1024, []byte("a"), 1, true)
		b[4], b[5] = byte(rl), byte(rl>>8)
		if ok, err := leafInsert(b, lf, []byte("new"), 9, 1); err == nil || ok {
			t.Errorf("rec_len %d: insert %v, err %v", rl, ok, err)
		}
	}
}

func newLinear(bs int, csum bool) (*dirw, *memDir) {
	st := &memDir{bs: bs}
	w := &dirw{st: st, ino: 12, lf: leafFmt{bs: bs, filetype: true, tail: csum}, csum: csum, seed: 0xABCD}
	_, b, _ := st.grow()
	initDotLeaf(b, w.lf, 12, 2)
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
