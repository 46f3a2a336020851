package xfs

import (
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// TestWriteSuite runs vfs/vfstest's whole suite (writes, the attack
// cases and the customise operations) on the XFS write engine, each case
// on a fresh mkfs.xfs image, followed by xfs_repair -n.
func TestWriteSuite(t *testing.T) {
	vfstest.Run(t, func(t *testing.T) vfs.FS {
		img := emptyImage(t)
		f := openRW(t, img)
		t.Cleanup(func() {
			if err := f.Flush(); err != nil {
				t.Errorf("flush: %v", err)
			}
			repairClean(t, img)
		})
		return f
	})
}
