package local_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// openGuest makes an empty guest root under a fresh temporary directory
// and returns the backend and the host path of the guest root.
func openGuest(t *testing.T) (*local.FS, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "guest")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dir
}

func TestConformance(t *testing.T) {
	vfstest.RunOptions(t, func(t *testing.T) vfs.FS {
		l, _ := openGuest(t)
		return l
	}, ownerOptions())
}

// ownerOptions tells the suite whether this process can give files away:
// only root can; anyone else's files stay theirs and chown is refused.
func ownerOptions() vfstest.Options {
	if os.Geteuid() == 0 {
		return vfstest.Options{}
	}
	return vfstest.Options{NoChown: true, UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
}

func TestReadOnlySuite(t *testing.T) {
	l, _ := openGuest(t)
	vfstest.Populate(t, l)
	vfstest.RunReadOnly(t, l, ownerOptions())
}
