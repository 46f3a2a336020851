package ext

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/dirhash"
	"github.com/guestinject/guestinject/vfs/ext/internal/dirblock"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var testSeed = [4]uint32{0x1234, 0x5678, 0x9abc, 0xdef0}

// newIndexed builds an empty indexed directory in memory: a root and one
// empty leaf.
func newIndexed(bs int, csum bool, maxLevels int, version uint8) (*dirw, *memDir) {
	st := &memDir{bs: bs}
	w := &dirw{st: st, ino: 12, lf: dirblock.Format{BlockSize: bs, Filetype: true, Tail: csum}, csum: csum, seed: 0x5eed,
		indexed: true, maxLevels: maxLevels,
		hashName: func(name []byte, v uint8) (uint32, error) {
			h, _, err := dirhash.Hash(name, dirhash.Version(v), testSeed)
			return h, err
		}}
	_, root, _ := st.grow()
	_, leaf, _ := w.newLeaf()
	w.sealLeaf(leaf)
	w.initDxRoot(root, 12, 2, version, 1)
	return w, st
}

// checkTree walks the whole index, checking every count/limit and
// checksum, that every leaf is referenced once, and that each leaf's
// names hash inside the range its index entry gives it. It returns the
// number of names and the index depth.
func checkTree(t *testing.T, w *dirw) (int, int) {
	t.Helper()
	root, info, err := w.dxRoot()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	fr, err := w.dxFrameAt(root, 0, layout.DxRootEntries, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := checkNode(t, w, fr, int(info.IndirectLevels), 0, 1<<32, false, info.HashVersion, seen)
	return n, int(info.IndirectLevels) + 1
}

func checkNode(t *testing.T, w *dirw, fr dxFrame, levels int, lo, hi uint64, hiIncl bool, v uint8, seen map[uint64]bool) int {
	t.Helper()
	total := 0
	for i := 0; i < fr.count; i++ {
		e := fr.entry(i)
		elo, ehi, incl := lo, hi, hiIncl
		if i > 0 {
			elo = uint64(e.Hash &^ 1)
			if elo < lo {
				t.Fatalf("node %d entry %d: hash %#x below the node's range %#x", fr.lblk, i, e.Hash, lo)
			}
		}
		if i+1 < fr.count {
			nx := fr.entry(i + 1).Hash
			ehi, incl = uint64(nx&^1), nx&1 != 0
		}
		blk := uint64(e.Block)
		if seen[blk] {
			t.Fatalf("block %d referenced twice", blk)
		}
		seen[blk] = true
		b, err := w.st.block(blk)
		if err != nil {
			t.Fatal(err)
		}
		if levels > 0 {
			child, err := w.dxFrameAt(b, blk, layout.DxNodeEntries, 0)
			if err != nil {
				t.Fatal(err)
			}
			total += checkNode(t, w, child, levels-1, elo, ehi, incl, v, seen)
			continue
		}
		if b, err = w.leaf(blk); err != nil {
			t.Fatal(err)
		}
		es, err := dirblock.Entries(b, w.lf)
		if err != nil {
			t.Fatal(err)
		}
		for _, le := range es {
			h, _ := w.hashName(le.Name, v)
			if uint64(h) < elo || uint64(h) > ehi || uint64(h) == ehi && !incl {
				t.Fatalf("leaf %d: %q hashes to %#x outside [%#x, %#x] (inclusive %v)", blk, le.Name, h, elo, ehi, incl)
			}
		}
		total += len(es)
	}
	return total
}

func longName(i int) string { return fmt.Sprintf("%06d-%s", i, strings.Repeat("n", 240)) }

func TestHtreeAddSplitsLeavesAndNodes(t *testing.T) {
	w, st := newIndexed(1024, true, layout.DxMaxLevels, layout.HashHalfMD4)
	const n = 3000
	for i := 0; i < n; i++ {
		name := longName(i)
		if err := w.dxAdd([]byte(name), exact(name), uint32(100+i), layout.FTRegular); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	got, depth := checkTree(t, w)
	if got != n || depth != 2 {
		t.Fatalf("%d names at depth %d, want %d at depth 2", got, depth, n)
	}
	if err := w.dxAdd([]byte(longName(77)), exact(longName(77)), 5, 1); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("duplicate: %v", err)
	}
	for i := 0; i < n; i += 3 {
		ino, err := w.dxRemove([]byte(longName(i)), exact(longName(i)))
		if err != nil || ino != uint32(100+i) {
			t.Fatalf("remove %d: %d %v", i, ino, err)
		}
	}
	if _, err := w.dxRemove([]byte(longName(0)), exact(longName(0))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second remove: %v", err)
	}
	for i := 0; i < n; i++ {
		_, found, err := w.dxFind([]byte(longName(i)), exact(longName(i)))
		if err != nil || found != (i%3 != 0) {
			t.Fatalf("find %d: %v %v", i, found, err)
		}
	}
	if got, _ := checkTree(t, w); got != n-n/3 {
		t.Fatalf("%d names after removing, want %d", got, n-n/3)
	}
	t.Logf("%d blocks", st.blocks())
}

func TestHtreeIndexFullAndThirdLevel(t *testing.T) {
	for _, levels := range []int{layout.DxMaxLevels, layout.DxMaxLevelsLarge} {
		// 1 KiB blocks without checksums: root limit 124, node limit 127.
		w, _ := newIndexed(1024, false, levels, layout.HashTea)
		var err error
		i := 0
		for ; i < 60000; i++ {
			name := longName(i)
			if err = w.dxAdd([]byte(name), exact(name), uint32(100+i), 1); err != nil {
				break
			}
			if levels == layout.DxMaxLevelsLarge {
				if _, info, _ := w.dxRoot(); info.IndirectLevels == 2 {
					break
				}
			}
		}
		got, depth := checkTree(t, w)
		switch levels {
		case layout.DxMaxLevels:
			if !errors.Is(err, vfs.ErrNoSpace) || depth != 2 || got != i {
				t.Fatalf("2 levels: stopped after %d names (tree holds %d, depth %d): %v", i, got, depth, err)
			}
		default:
			if err != nil || depth != 3 || got != i+1 {
				t.Fatalf("3 levels: %d names, tree holds %d at depth %d: %v", i, got, depth, err)
			}
			// Keep going until the node under the root splits: the root
			// then indexes two second-level nodes.
			for i++; ; i++ {
				name := longName(i)
				if err := w.dxAdd([]byte(name), exact(name), uint32(100+i), 1); err != nil {
					t.Fatalf("add %d at 3 levels: %v", i, err)
				}
				if root, _, _ := w.dxRoot(); root[layout.DxRootEntries+2] >= 2 {
					break
				}
			}
			if got, depth = checkTree(t, w); got != i+1 || depth != 3 {
				t.Fatalf("after a split under the root: %d names (want %d), depth %d", got, i+1, depth)
			}
		}
		t.Logf("levels %d: %d names, depth %d", levels, got, depth)
	}
}

func TestHtreeCollisionsStayFindable(t *testing.T) {
	// The legacy hash of these names collides often in a small space: use a
	// tiny hash instead to force long runs of equal hashes.
	w, _ := newIndexed(1024, true, layout.DxMaxLevels, layout.HashLegacy)
	w.hashName = func(name []byte, _ uint8) (uint32, error) { return uint32(len(name)%3) << 20, nil }
	const n = 60
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%03d%s", i, strings.Repeat("c", 100+i%3))
		if err := w.dxAdd([]byte(name), exact(name), uint32(100+i), 1); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if got, _ := checkTree(t, w); got != n {
		t.Fatalf("%d names, want %d", got, n)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%03d%s", i, strings.Repeat("c", 100+i%3))
		if _, found, err := w.dxFind([]byte(name), exact(name)); !found || err != nil {
			t.Fatalf("find %q: %v %v", name[:3], found, err)
		}
	}
}

func TestHtreeDamagedNodeRefused(t *testing.T) {
	w, st := newIndexed(1024, true, layout.DxMaxLevels, layout.HashHalfMD4)
	for i := 0; i < 50; i++ {
		w.dxAdd([]byte(longName(i)), exact(longName(i)), uint32(100+i), 1)
	}
	st.blks[0][layout.DxRootEntries+8] ^= 0x80 // an index entry's hash: the dx tail no longer matches
	if err := w.dxAdd([]byte("x"), exact("x"), 5, 1); !errors.Is(err, ErrChecksum) {
		t.Fatalf("damaged root: %v", err)
	}
	w, st = newIndexed(1024, false, layout.DxMaxLevels, layout.HashHalfMD4)
	for i := 0; i < 50; i++ {
		w.dxAdd([]byte(longName(i)), exact(longName(i)), uint32(100+i), 1)
	}
	cnt := st.blks[0][layout.DxRootEntries+2]
	for i := 0; i < int(cnt); i++ { // every entry points past the end
		st.blks[0][layout.DxRootEntries+8*i+5] = 0x70
	}
	if err := w.dxAdd([]byte("x"), exact("x"), 5, 1); !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("bad block pointer: %v", err)
	}
	st.blks[0][layout.DxRootEntries+2] = 0 // count 0
	if err := w.dxAdd([]byte("x"), exact("x"), 5, 1); !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("count 0: %v", err)
	}
}

func TestLinearBecomesIndexed(t *testing.T) {
	w, st := newLinear(1024, true)
	w.maxLevels = layout.DxMaxLevels
	w.hashName = func(name []byte, v uint8) (uint32, error) {
		h, _, err := dirhash.Hash(name, dirhash.Version(v), testSeed)
		return h, err
	}
	marked := false
	w.makeIndexed = func() uint8 { marked = true; return layout.HashTea }
	const n = 500
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%04d", i)
		var err error
		if w.indexed {
			err = w.dxAdd([]byte(name), exact(name), uint32(100+i), 1)
		} else {
			err = w.linearAdd([]byte(name), exact(name), uint32(100+i), 1)
		}
		if err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if !marked || !w.indexed {
		t.Fatal("the directory was not indexed")
	}
	if got, depth := checkTree(t, w); got != n || depth != 1 {
		t.Fatalf("%d names at depth %d", got, depth)
	}
	root, _ := st.block(0)
	if names := names(t, root, dirblock.Format{BlockSize: 1024, Filetype: true}); fmt.Sprint(names) != "[. ..]" {
		t.Fatalf("root entries %v", names)
	}
}
