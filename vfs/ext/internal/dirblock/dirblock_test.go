package dirblock

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

func exact(name string) func([]byte) bool {
	return func(b []byte) bool { return string(b) == name }
}

// names lists the live names of leaf b.
func names(t *testing.T, b []byte, lf Format) []string {
	t.Helper()
	es, err := Entries(b, lf)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, string(e.Name))
	}
	return out
}

func TestLeafInsertSplitsSlackAndReusesDeadEntries(t *testing.T) {
	for _, lf := range []Format{{BlockSize: 1024, Filetype: true, Tail: true}, {BlockSize: 1024}, {BlockSize: 65536, Filetype: true, Tail: true}} {
		b := make([]byte, lf.BlockSize)
		InitDot(b, lf, 12, 2)
		for i := 0; i < 3; i++ {
			ok, err := Insert(b, lf, []byte(fmt.Sprintf("name%d", i)), uint32(20+i), layout.FTRegular)
			if err != nil || !ok {
				t.Fatalf("%+v: insert %d: %v %v", lf, i, ok, err)
			}
		}
		if got := names(t, b, lf); fmt.Sprint(got) != "[. .. name0 name1 name2]" {
			t.Fatalf("%+v: names %v", lf, got)
		}
		ino, found, err := Remove(b, lf, exact("name1"))
		if err != nil || !found || ino != 21 {
			t.Fatalf("remove: %d %v %v", ino, found, err)
		}
		// The freed slack (merged into name0) is reused first.
		if ok, _ := Insert(b, lf, []byte("x"), 30, layout.FTDir); !ok {
			t.Fatal("reinsert failed")
		}
		if got := names(t, b, lf); fmt.Sprint(got) != "[. .. name0 x name2]" {
			t.Fatalf("%+v: names after reuse %v", lf, got)
		}
		if lf.Tail {
			Seal(b, 0x1234)
			if ok, has := ChecksumOK(b, 0x1234); !ok || !has {
				t.Fatalf("%+v: tail after seal: ok %v has %v", lf, ok, has)
			}
		}
	}
}

func TestLeafRemoveFirstEntryMarksUnused(t *testing.T) {
	lf := Format{BlockSize: 1024, Filetype: true}
	b := make([]byte, 1024)
	Init(b, lf)
	Insert(b, lf, []byte("a"), 11, 1)
	Insert(b, lf, []byte("b"), 12, 1)
	if ino, found, _ := Remove(b, lf, exact("a")); !found || ino != 11 {
		t.Fatal("remove a")
	}
	d, _ := layout.DecodeDirent(b)
	if d.Inode != 0 || d.RecLength(1024) != 12 {
		t.Fatalf("first entry after remove: %+v", d)
	}
	// The dead first entry is reused by a name that fits it.
	Insert(b, lf, []byte("c"), 13, 1)
	if got := names(t, b, lf); fmt.Sprint(got) != "[c b]" {
		t.Fatalf("names %v", got)
	}
	if _, found, _ := Remove(b, lf, exact("zz")); found {
		t.Fatal("removed a missing name")
	}
}

func TestLeafFullAndHasNames(t *testing.T) {
	lf := Format{BlockSize: 1024, Filetype: true, Tail: true}
	b := make([]byte, 1024)
	InitDot(b, lf, 12, 2)
	if has, _ := HasNames(b, lf); has {
		t.Fatal("fresh directory block has names")
	}
	n := 0
	for ; n < 100; n++ {
		ok, err := Insert(b, lf, bytes.Repeat([]byte{'a' + byte(n)}, 100), 20, 1)
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
	if has, _ := HasNames(b, lf); !has {
		t.Fatal("full block has no names")
	}
	if err := Walk(b, lf, func(Slot) bool { return false }); err != nil {
		t.Fatal(err)
	}
}

func TestWalkLeafRejectsBadRecLen(t *testing.T) {
	lf := Format{BlockSize: 1024, Filetype: true}
	for _, rl := range []int{0, 6, 13, 2048} {
		b := make([]byte, 1024)
		layout.PutDirent(b, 5, 1024, []byte("a"), 1, true)
		b[4], b[5] = byte(rl), byte(rl>>8)
		if ok, err := Insert(b, lf, []byte("new"), 9, 1); err == nil || ok {
			t.Errorf("rec_len %d: insert %v, err %v", rl, ok, err)
		}
	}
}
