package ext

import (
	"fmt"
	"testing"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

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
