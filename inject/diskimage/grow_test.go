package diskimage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// growDisk is a raw GPT disk grown from 256 MiB to 1 GiB: partition 1
// (ext4 guest root, 1-192 MiB) and, when swap, a swap partition after it.
func growDisk(t *testing.T, swap bool) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.Truncate(mustCreate(t, img), 256<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"-n1:2048:+191M"}
	if swap {
		args = append(args, "-n2:0:0", "-t2:8200")
	}
	testtool.Run(t, "sgdisk", append(args, img)...)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\n"), 0o644)
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-E", "offset=1048576", "-d", root, img, "195584k")
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestInspectGrowInfo(t *testing.T) {
	r, err := Inspect(growDisk(t, false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := r.Partitions[0]
	if !p.Growable || p.FreeAfter != (1<<30)-(1<<20)-(191<<20)-33*512 || !strings.Contains(p.GrowNote, "blocks") {
		t.Errorf("last ext4 partition: free %d, growable %v, note %q", p.FreeAfter, p.Growable, p.GrowNote)
	}
	r, err = Inspect(growDisk(t, true), Options{})
	if err != nil {
		t.Fatal(err)
	}
	root, swap := r.Partitions[0], r.Partitions[1]
	if root.Growable || root.FreeAfter != 0 || !strings.Contains(root.GrowNote, "partition 2") {
		t.Errorf("root with swap after it: free %d, growable %v, note %q", root.FreeAfter, root.Growable, root.GrowNote)
	}
	if swap.Growable || swap.FreeAfter == 0 || !strings.Contains(swap.GrowNote, "only ext") {
		t.Errorf("swap at the end: free %d, growable %v, note %q", swap.FreeAfter, swap.Growable, swap.GrowNote)
	}
}

func TestOpenGrowRefusedLeavesDiskUnchanged(t *testing.T) {
	img := growDisk(t, true)
	before, _ := os.ReadFile(img)
	_, err := Open(img, Options{Writable: true, Grow: "root"})
	if !errors.Is(err, ErrCannotGrow) {
		t.Fatalf("growing a root with a partition after it: %v", err)
	}
	after, _ := os.ReadFile(img)
	if string(before) != string(after) {
		t.Fatal("a refused growth changed the disk")
	}
}

func TestOpenGrowCommitAndDiscard(t *testing.T) {
	img := growDisk(t, false)
	before, _ := os.ReadFile(img)
	im, err := Open(img, Options{Writable: true, Grow: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if im.Grown == nil || !im.Grown.Partition.Changed() || !im.Grown.FS.Changed() || im.Partition.Size != im.Grown.Partition.NewSize {
		t.Fatalf("growth: %+v, partition %+v", im.Grown, im.Partition)
	}
	im.Discard()
	im.Close()
	if after, _ := os.ReadFile(img); string(before) != string(after) {
		t.Fatal("a discarded growth changed the disk")
	}
	im, err = Open(img, Options{Writable: true, Grow: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if out, code := testtool.Output(t, "e2fsck", "-fn", img+"?offset=1048576"); code != 0 {
		t.Fatalf("e2fsck after growth: exit %d\n%s", code, out)
	}
	if out, code := testtool.Output(t, "sgdisk", "-v", img); code != 0 || !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v after growth: exit %d\n%s", code, out)
	}
}
