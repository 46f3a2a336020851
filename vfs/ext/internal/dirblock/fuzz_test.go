package dirblock

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzLeafOps runs the leaf primitives on arbitrary blocks: they must
// never panic, and on a block that walks cleanly they must leave one that
// still does, holding what they say they did.
func FuzzLeafOps(f *testing.F) {
	lf := Format{BlockSize: 1024, Filetype: true, Tail: true}
	b := make([]byte, 1024)
	InitDot(b, lf, 12, 2)
	for i := 0; i < 10; i++ {
		Insert(b, lf, []byte(fmt.Sprint("name", i)), uint32(20+i), 1)
	}
	Remove(b, lf, exact("name3"))
	f.Add(b, "new", uint8(0))
	f.Add(b, "name4", uint8(1))
	f.Add(b[:64], "x", uint8(2))
	f.Add(bytes.Repeat([]byte{0xFF}, 256), "y", uint8(3))
	f.Fuzz(func(t *testing.T, block []byte, name string, op uint8) {
		if len(block) < 16 || len(block) > 4096 || len(block)%4 != 0 || name == "" || len(name) > 255 {
			return
		}
		lf := Format{BlockSize: len(block), Filetype: op&4 == 0, Tail: op&8 != 0}
		b := append([]byte(nil), block...)
		valid := Walk(b, lf, func(Slot) bool { return false }) == nil
		Entries(b, lf)
		HasNames(b, lf)
		switch op & 3 {
		case 0, 2:
			_, present, _ := Find(b, lf, exact(name))
			ok, err := Insert(b, lf, []byte(name), 99, 1)
			if valid && (err != nil || ok && Walk(b, lf, func(Slot) bool { return false }) != nil) {
				t.Fatalf("insert broke a valid leaf: %v", err)
			}
			if ok && !present {
				if _, found, _ := Find(b, lf, exact(name)); !found {
					t.Fatal("inserted name not found")
				}
			}
		default:
			ino, found, err := Remove(b, lf, exact(name))
			if valid && (err != nil || Walk(b, lf, func(Slot) bool { return false }) != nil) {
				t.Fatalf("remove broke a valid leaf: %v", err)
			}
			if found && ino == 0 {
				t.Fatal("removed an unused entry")
			}
		}
	})
}
