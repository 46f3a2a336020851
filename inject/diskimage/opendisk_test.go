package diskimage

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/internal/testtool"
)

// countingDisk counts the flushes of the disk below.
type countingDisk struct {
	formats.Disk
	flushes, closes int
}

func (d *countingDisk) Flush() error { d.flushes++; return d.Disk.Flush() }
func (d *countingDisk) Close() error { d.closes++; return d.Disk.Close() }

// TestOpenDiskAndClose: OpenDisk serves the root of a disk the caller
// opened; Close flushes it to stable storage, then closes it.
func TestOpenDiskAndClose(t *testing.T) {
	disk := makeDisk(t, "gpt", 48*mib, []part{
		{sfdisk: "start=2048, size=8M, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", mkfs: "swap", start: 2048 * 512, size: 8 * mib},
		{sfdisk: "start=18432, size=24M", mkfs: "ext4:" + guestTree(t, "Opened"), start: 18432 * 512, size: 24 * mib},
	})
	d, err := formats.Open(disk, formats.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	cd := &countingDisk{Disk: d}
	im, err := OpenDisk(cd, Options{})
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	if im.Partition.Number != 2 {
		t.Errorf("root on partition %d, want 2", im.Partition.Number)
	}
	if data, err := im.FS.ReadFile("/etc/os-release"); err != nil || !strings.Contains(string(data), "Opened") {
		t.Errorf("os-release: %q %v", data, err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if cd.flushes != 1 || cd.closes != 1 {
		t.Errorf("Close: %d flushes, %d closes; want 1 and 1", cd.flushes, cd.closes)
	}
}

// TestInspectJSONNames pins the JSON names `inject inspect --json` prints.
func TestInspectJSONNames(t *testing.T) {
	disk := makeDisk(t, "gpt", 32*mib, []part{
		{sfdisk: "start=2048, size=24M, name=rootfs", mkfs: "ext4:" + guestTree(t, "Named"), start: 2048 * 512, size: 24 * mib},
	})
	qcow := filepath.Join(t.TempDir(), "d.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", disk, qcow)
	r, err := Inspect(qcow, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"format":"qcow2"`, `"virtual_size":33554432`, `"cluster_size":4096`, `"scheme":"gpt"`,
		`"number":1`, `"name":"rootfs"`, `"type_name":"Linux filesystem"`, `"filesystem":{"type":"ext4"`, `"clean":true`,
		`"journal":"internal"`, `"root":{"partition":1`, `"os_name":"Named"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("inspect JSON lacks %s:\n%s", want, b)
		}
	}
	// A partition that is not there: the table is described, the root says why not.
	r, err = Inspect(qcow, Options{Partition: "4"})
	if err != nil || r.Root != nil || !strings.Contains(r.RootError, "no such partition") {
		t.Fatalf("--partition 4: %v root %+v %q", err, r.Root, r.RootError)
	}
	if _, err := Inspect(qcow, Options{Backing: formats.BackingDeny}); err != nil {
		t.Fatalf("an image without backing file under deny: %v", err)
	}
	if _, err := Inspect(filepath.Join(t.TempDir(), "missing"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing image: %v", err)
	}
}
