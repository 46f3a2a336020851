package ext

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// FuzzLeafOps runs the leaf primitives on arbitrary blocks: they must
// never panic, and on a block that walks cleanly they must leave one that
// still does, holding what they say they did.
func FuzzLeafOps(f *testing.F) {
	lf := leafFmt{bs: 1024, filetype: true, tail: true}
	b := make([]byte, 1024)
	initDotLeaf(b, lf, 12, 2)
	for i := 0; i < 10; i++ {
		leafInsert(b, lf, []byte(fmt.Sprint("name", i)), uint32(20+i), 1)
	}
	leafRemove(b, lf, exact("name3"))
	f.Add(b, "new", uint8(0))
	f.Add(b, "name4", uint8(1))
	f.Add(b[:64], "x", uint8(2))
	f.Add(bytes.Repeat([]byte{0xFF}, 256), "y", uint8(3))
	f.Fuzz(func(t *testing.T, block []byte, name string, op uint8) {
		if len(block) < 16 || len(block) > 4096 || len(block)%4 != 0 || name == "" || len(name) > 255 {
			return
		}
		lf := leafFmt{bs: len(block), filetype: op&4 == 0, tail: op&8 != 0}
		b := append([]byte(nil), block...)
		valid := walkLeaf(b, lf, func(slot) bool { return false }) == nil
		leafEntries(b, lf)
		leafHasNames(b, lf)
		switch op & 3 {
		case 0, 2:
			_, present, _ := leafFind(b, lf, exact(name))
			ok, err := leafInsert(b, lf, []byte(name), 99, 1)
			if valid && (err != nil || ok && walkLeaf(b, lf, func(slot) bool { return false }) != nil) {
				t.Fatalf("insert broke a valid leaf: %v", err)
			}
			if ok && !present {
				if _, found, _ := leafFind(b, lf, exact(name)); !found {
					t.Fatal("inserted name not found")
				}
			}
		default:
			ino, found, err := leafRemove(b, lf, exact(name))
			if valid && (err != nil || walkLeaf(b, lf, func(slot) bool { return false }) != nil) {
				t.Fatalf("remove broke a valid leaf: %v", err)
			}
			if found && ino == 0 {
				t.Fatal("removed an unused entry")
			}
		}
	})
}

// FuzzHtreeWrite damages an indexed directory (XOR patches at fuzzed
// offsets of its blocks) and adds and removes names: the writer must
// refuse or succeed, never panic or loop.
func FuzzHtreeWrite(f *testing.F) {
	f.Add([]byte{}, "fresh")
	f.Add([]byte{0, 0x22, 0x10}, "x")          // root count/limit
	f.Add([]byte{0, 0x25, 0x7F}, "y")          // an index entry's block
	f.Add([]byte{1, 0x04, 0x40, 2, 0, 1}, "z") // a leaf's rec_len
	f.Fuzz(func(t *testing.T, patches []byte, name string) {
		if name == "" || len(name) > 255 {
			return
		}
		w, st := newIndexed(1024, false, layout.DxMaxLevels, layout.HashHalfMD4)
		for i := 0; i < 120; i++ {
			w.dxAdd([]byte(longName(i)), exact(longName(i)), uint32(100+i), 1)
		}
		for i := 0; i+2 < len(patches); i += 3 {
			blk := int(patches[i]) % len(st.blks)
			off := int(patches[i+1]) * 4 % 1024
			st.blks[blk][off] ^= patches[i+2]
		}
		st.maxBlk = len(st.blks) + 64
		for i := 0; i < 20; i++ {
			n := fmt.Sprint(name, i)
			w.dxAdd([]byte(n), exact(n), 7, 1)
		}
		w.dxRemove([]byte(longName(5)), exact(longName(5)))
		w.hasNames()
	})
}
