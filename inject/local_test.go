package inject

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/local"
)

// Every injector test also runs against vfs/local on a temporary copy of
// the demo guest.
func init() {
	moreGuests = append(moreGuests, func(t *testing.T) guest {
		fsys, err := local.Open(hostGuest(t))
		must(t, err)
		t.Cleanup(func() { fsys.Close() })
		return guest{"local", fsys}
	})
}

// vfs/local refuses to write a file with several hard links (one may be
// outside the guest root); planning must refuse it too, before /meta.js is
// written, not after.
func TestPlanRefusesMultiLinkedFileOnLocal(t *testing.T) {
	root := hostGuest(t)
	must(t, os.Link(filepath.Join(root, "etc/shadow"), filepath.Join(root, "shadow-link")))
	fsys, err := local.Open(root)
	must(t, err)
	defer fsys.Close()
	before := snapshot(t, fsys)
	data := &Data{Meta: map[string]string{"a": "b"}, AdminPassword: &Password{Plain: "x"}}
	if _, err := Plan(fsys, data, nil); findItemError(err, KindPassword) == nil {
		t.Fatalf("dry run: %v, want a password item error", err)
	}
	_, err = Apply(fsys, data, nil)
	wantErr(t, err, vfs.ErrUnsupported)
	if after := snapshot(t, fsys); after != before {
		t.Error("guest changed by a refused injection")
	}
}
