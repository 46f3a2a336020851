package memfs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/memfs"
)

// TestLinkLimit: the 65000th extra name is refused with vfs.ErrLinkLimit,
// as ext4 refuses it, and nothing is created.
func TestLinkLimit(t *testing.T) {
	f := memfs.New()
	if err := f.ReplaceFile("/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < vfs.MaxLinks; i++ {
		if err := f.Link("/f", fmt.Sprintf("/l%d", i)); err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
	}
	err := f.Link("/f", "/over")
	if !errors.Is(err, vfs.ErrLinkLimit) {
		t.Fatalf("link past %d names: %v", vfs.MaxLinks, err)
	}
	if ok, _ := f.HasFile("/over"); ok {
		t.Error("the refused link was created")
	}
}

// TestTruncateBound: a size memfs would have to allocate beyond its bound
// is refused before any allocation.
func TestTruncateBound(t *testing.T) {
	f := memfs.New()
	if err := f.ReplaceFile("/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate("/f", 1<<50); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Truncate to 1 PiB: %v", err)
	}
	if b, _ := f.ReadFile("/f"); string(b) != "x" {
		t.Errorf("content %q after a refused truncate", b)
	}
}
