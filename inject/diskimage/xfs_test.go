package diskimage

import (
	"bytes"
	"crypto/sha256"
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
// through the XFS engine, a read-only open refuses writes, and inspect
// reports the filesystem and the OS.
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
		t.Fatalf("write through a read-only open of the XFS engine: %v", err)
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

// TestXFSWritableStaged: a writable open of the XFS root of a GPT qcow2
// stages every write: Discard leaves the image byte for byte unchanged,
// Commit writes it and the filesystem reads back what was written.
func TestXFSWritableStaged(t *testing.T) {
	q := xfsGPTQcow2(t)
	before := fileSum(t, q)
	write := func() *Image {
		im, err := Open(q, Options{Writable: true, NoLock: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := im.FS.MakePath("/root/.ssh"); err != nil {
			t.Fatal(err)
		}
		if err := im.FS.AppendFile("/root/.ssh/authorized_keys", []byte("ssh-ed25519 AAAA test\n")); err != nil {
			t.Fatal(err)
		}
		if err := im.FS.ReplaceFile("/etc/os-release", []byte("NAME=rewritten\n")); err != nil {
			t.Fatal(err)
		}
		// The engine's batch reaches the stage (not the image) when
		// flushed: Close flushes it before Commit.
		if err := im.FS.(interface{ Flush() error }).Flush(); err != nil {
			t.Fatal(err)
		}
		if b, _ := im.Staged(); b == 0 {
			t.Fatal("nothing staged")
		}
		return im
	}
	im := write()
	im.Discard()
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, q) != before {
		t.Fatal("a discarded XFS injection changed the image")
	}
	im = write()
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	testtool.Run(t, "qemu-img", "check", q)
	im, err := Open(q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	for p, want := range map[string]string{"/root/.ssh/authorized_keys": "ssh-ed25519 AAAA test\n", "/etc/os-release": "NAME=rewritten\n"} {
		if got, err := im.FS.ReadFile(p); err != nil || string(got) != want {
			t.Fatalf("%s: %q %v", p, got, err)
		}
	}
}

// fileSum is the SHA-256 of a file's bytes.
func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestGrowXFSRoot: --grow on an XFS root extends the GPT partition to
// the grown disk's end and the filesystem into it (new allocation
// groups), in the same staged unit as a write; xfs_repair -n is clean,
// xfs_db sees the new size, sgdisk -v the table, and inspect said
// beforehand that --grow could use the space.
func TestGrowXFSRoot(t *testing.T) {
	q := xfsGPTQcow2(t)
	testtool.Run(t, "qemu-img", "resize", "-q", q, "1G")
	r, err := Inspect(q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var growable bool
	for _, p := range r.Partitions {
		if p.Number == 2 {
			growable = p.Growable
			if !growable {
				t.Errorf("inspect: partition 2 not growable: %s", p.GrowNote)
			}
		}
	}
	im, err := Open(q, Options{Writable: true, Grow: "root"})
	if err != nil {
		t.Fatal(err)
	}
	g := im.Grown
	if g == nil || g.FSType != "xfs" || g.XFS == nil || !g.FS.Changed() || g.XFS.NewAGs <= g.XFS.OldAGs {
		t.Fatalf("growth: %+v", g)
	}
	if err := im.FS.ReplaceFile("/etc/grown", []byte("yes\n")); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	testtool.Run(t, "qemu-img", "check", q)
	raw := filepath.Join(t.TempDir(), "disk.raw")
	testtool.Run(t, "qemu-img", "convert", "-O", "raw", q, raw)
	if out, code := testtool.Output(t, "sgdisk", "-v", raw); code != 0 || !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v: exit %d\n%s", code, out)
	}
	part := filepath.Join(t.TempDir(), "p2.xfs")
	end := g.Partition.NewSize
	testtool.Run(t, "dd", "if="+raw, "of="+part, "bs=512", "skip=34816", "count="+itoa(end/512), "conv=sparse", "status=none")
	testtool.Run(t, "xfs_repair", "-n", "-f", part)
	out := string(testtool.Run(t, "xfs_db", "-r", "-c", "sb 0", "-c", "p dblocks agcount", part))
	if !strings.Contains(out, "dblocks = "+itoa(int64(g.XFS.NewBlocks))) || !strings.Contains(out, "agcount = "+itoa(int64(g.XFS.NewAGs))) {
		t.Fatalf("xfs_db after growth:\n%s\nreport %+v", out, g.XFS)
	}
	im, err = Open(q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if b, err := im.FS.ReadFile("/etc/grown"); err != nil || string(b) != "yes\n" {
		t.Fatalf("/etc/grown: %q, %v", b, err)
	}
}
