//go:build linux

package vmdk

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// TestFIFOExtentRefused: an extent file that is a FIFO is refused at
// once (open(2) of a FIFO would block until a writer came).
func TestFIFOExtentRefused(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "x-flat.vmdk"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "d.vmdk")
	os.WriteFile(p, []byte("# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 2 FLAT \"x-flat.vmdk\" 0\n"), 0o644)
	done := make(chan error, 1)
	go func() { _, err := openPath(t, p); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, diskerr.ErrUnsupported) {
			t.Fatalf("FIFO extent: %v, want ErrUnsupported", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO extent blocked")
	}
}
