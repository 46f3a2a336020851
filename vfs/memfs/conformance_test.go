package memfs_test

import (
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/memfs"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

func TestConformance(t *testing.T) {
	vfstest.Run(t, func(t *testing.T) vfs.FS { return memfs.New() })
}

func TestReadOnlySuite(t *testing.T) {
	f := memfs.New()
	vfstest.Populate(t, f)
	vfstest.RunReadOnly(t, f, vfstest.Options{})
}
