package formats_test

import (
	"errors"
	"fmt"

	"github.com/guestinject/guestinject/formats"
)

// Open an image for writing; the backing chain is opened read-only under the
// default policy (relative names inside the image's directory only).
func ExampleOpen() {
	img, err := formats.Open("disk.qcow2", formats.Options{})
	switch {
	case errors.Is(err, formats.ErrInUse):
		fmt.Println("a running VM holds the image")
		return
	case err != nil:
		fmt.Println(err)
		return
	}
	defer img.Close() // flushes pending metadata in crash-safe order
	info := img.Info()
	fmt.Println(info.Format, info.VirtualSize, len(info.BackingChain))
	buf := make([]byte, 512)
	img.ReadAt(buf, 0)
	img.WriteAt(buf, 0)
}

// The nova flow: a qcow2 overlay on a shared base, grown to 20 GiB.
func ExampleCreateOverlay() {
	err := formats.CreateOverlay("instance.qcow2", "base.img", formats.OverlayOptions{Size: 20 << 30})
	if errors.Is(err, formats.ErrTooSmall) {
		fmt.Println("the base is larger than the requested size")
	}
}
