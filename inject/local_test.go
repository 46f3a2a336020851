package inject

import (
	"testing"

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
