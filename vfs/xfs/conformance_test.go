package xfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// TestReadOnlySuite runs vfs/vfstest's read-only conformance cases on an
// image mkfs.xfs -p made of Populate's tree (built through vfs/local).
func TestReadOnlySuite(t *testing.T) {
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
	vfstest.Populate(t, l)
	l.Close()
	img := filepath.Join(t.TempDir(), "fs.img")
	mkfsTree(t, img, dir, 300<<20)
	opts := vfstest.Options{}
	if os.Geteuid() != 0 { // the protofile copies the host owner: not root's
		opts = vfstest.Options{NoChown: true, UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	}
	vfstest.RunReadOnly(t, openImage(t, img, nil), opts)
}
