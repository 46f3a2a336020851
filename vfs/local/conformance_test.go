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
	if os.Geteuid() != 0 {
		t.Fatal("the conformance suite sets guest owners (root:root, 1000:50): run the tests as root, as .ci/run does")
	}
	vfstest.Run(t, func(t *testing.T) vfs.FS {
		l, _ := openGuest(t)
		return l
	})
}
