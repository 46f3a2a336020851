package image

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs"
	"github.com/guestinject/guestinject/vfs/xfs/oracletest"
)

// xfsGPTQcow2 builds a qcow2 GPT disk: partition 1 an ext4 data
// filesystem, partition 2 an XFS guest root (mkfs.xfs -p of guestTree,
// label "xfsroot"), and returns its path.
func xfsGPTQcow2(t *testing.T) string {
	t.Helper()
	const xfsStart, xfsSize = 34816 * 512, 320 * mib
	disk := makeDisk(t, "gpt", 400*mib, []part{
		{sfdisk: "start=2048, size=16M", mkfs: "ext4:" + dataTree(t), start: 2048 * 512, size: 16 * mib},
		{sfdisk: "start=34816, size=320M", start: xfsStart, size: xfsSize},
	})
	dir := t.TempDir()
	var proto bytes.Buffer
	if err := oracletest.WriteProtofile(&proto, guestTree(t, "Debian XFS")); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(dir, "proto")
	if err := os.WriteFile(pf, proto.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fsImg := filepath.Join(dir, "xfs.img")
	if err := os.Truncate(mustCreate(t, fsImg), xfsSize); err != nil {
		t.Fatal(err)
	}
	testtool.Run(t, "mkfs.xfs", "-q", "-f", "-L", "xfsroot", "-p", pf, fsImg)
	testtool.Run(t, "dd", "if="+fsImg, "of="+disk, "bs=1M", "seek="+itoa(xfsStart/mib), "conv=sparse,notrunc", "status=none")
	q := filepath.Join(dir, "disk.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-O", "qcow2", disk, q)
	return q
}

// TestXFSRootInGPTQcow2: root detection finds the XFS root, reads go
// through the read-only XFS engine, a writable open is refused before
// anything is written, and inspect reports the filesystem and the OS.
func TestXFSRootInGPTQcow2(t *testing.T) {
	q := xfsGPTQcow2(t)
	im, err := Open(q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Partition.Number != 2 {
		t.Fatalf("root found on partition %d, want 2", im.Partition.Number)
	}
	if _, ok := im.FS.(*xfs.FS); !ok {
		t.Fatalf("the root is served by %T", im.FS)
	}
	if data, err := im.FS.ReadFile("/etc/os-release"); err != nil || !strings.Contains(string(data), "Debian XFS") {
		t.Fatalf("read /etc/os-release: %q %v", data, err)
	}
	if err := im.FS.ReplaceFile("/etc/motd", []byte("x")); !errors.Is(err, vfs.ErrReadOnly) {
		t.Fatalf("write through the XFS engine: %v", err)
	}
	if _, err := Open(q, Options{Writable: true, NoLock: true}); !errors.Is(err, vfs.ErrReadOnly) {
		t.Fatalf("writable open of an XFS root: %v, want a read-only refusal", err)
	}
	r, err := Inspect(q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Root == nil || r.Root.Partition != 2 || r.Root.OSName != "Debian XFS" {
		t.Fatalf("inspect root: %+v (%s)", r.Root, r.RootError)
	}
	var fsr *FSReport
	for _, p := range r.Partitions {
		if p.Number == 2 {
			fsr = p.Filesystem
		}
	}
	if fsr == nil || fsr.Type != "xfs" || fsr.Label != "xfsroot" || !fsr.Clean || len(fsr.UUID) != 36 || fsr.BlockSize != 4096 {
		t.Fatalf("inspect filesystem: %+v", fsr)
	}
}
