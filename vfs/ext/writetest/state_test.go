package writetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext"
)

// TestUncleanRefusedUnlessForce: a filesystem whose superblock says it was
// not cleanly unmounted (state 0) or has errors (state 3) is refused with
// ErrUnclean and left byte-for-byte unchanged; with Force it is written.
func TestUncleanRefusedUnlessForce(t *testing.T) {
	for _, state := range []int{0, 3} {
		t.Run(fmt.Sprintf("state%d", state), func(t *testing.T) {
			t.Parallel()
			c := newChecker(t)
			img := mkfs(t, specByName(t, "ext4"), sharedGuest(t))
			testtool.Run(t, "debugfs", "-w", "-R", fmt.Sprintf("ssv state %d", state), img)
			sum := fileSHA(t, img)
			im, fsys, err := openImage(t, img, ext.Options{})
			if err == nil {
				err = fsys.ReplaceFile("/etc/motd", []byte("x\n"))
			}
			if !errors.Is(err, ext.ErrUnclean) {
				c.Errorf("state %d without Force: %v, want ErrUnclean", state, err)
			}
			if im.writeCount() != 0 || fileSHA(t, img) != sum {
				c.Errorf("state %d without Force: refused (%v) but the image changed", state, err)
			}
			_, fsys, err = openImage(t, img, ext.Options{Force: true})
			if err == nil {
				err = fsys.ReplaceFile("/etc/motd", []byte("forced\n"))
			}
			if err != nil {
				c.Errorf("state %d with Force: %v", state, err)
				return
			}
			if b, err := debugfsOut(t, img, "cat /etc/motd"); err != nil || string(b) != "forced\n" {
				c.Errorf("state %d with Force: debugfs cat /etc/motd: %q %v", state, b, err)
			}
		})
	}
}
