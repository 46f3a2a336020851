package diskimage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/internal/testtool"
)

const mib = 1 << 20

// guestTree writes a tiny guest root into a new directory.
func guestTree(t *testing.T, osName string) string {
	t.Helper()
	d := t.TempDir()
	for p, c := range map[string]string{
		"etc/os-release": "NAME=\"" + osName + "\"\nVERSION_ID=\"12\"\nID=debian\nPRETTY_NAME=\"" + osName + " 12 (bookworm)\"\n",
		"etc/passwd":     "root:x:0:0:root:/root:/bin/bash\n",
		"root/.profile":  "# profile\n",
	} {
		if err := os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// dataTree is a filesystem that is not a guest root (no /etc).
func dataTree(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "data.bin"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// part is one partition of a test disk: sfdisk line and content.
type part struct {
	sfdisk string // e.g. "start=2048, size=16M, type=83"
	mkfs   string // "" (empty), "ext4:DIR", "swap"
	start  int64  // bytes, must match sfdisk's start
	size   int64
}

// makeDisk builds a raw disk with sfdisk (label "dos" or "gpt") and fills
// the partitions.
func makeDisk(t *testing.T, label string, size int64, parts []part) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	script := "label: " + label + "\n"
	for _, p := range parts {
		script += p.sfdisk + "\n"
	}
	sfdisk := testtool.Need(t, "sfdisk")[0]
	runStdin(t, script, sfdisk, "--no-reread", "--no-tell-kernel", img)
	for _, p := range parts {
		kind, dir, _ := strings.Cut(p.mkfs, ":")
		switch kind {
		case "ext4":
			testtool.Run(t, "mkfs.ext4", "-q", "-F", "-E", "offset="+itoa(p.start), "-d", dir, img, itoa(p.size/1024)+"k")
		case "swap":
			swap := filepath.Join(t.TempDir(), "swap")
			if err := os.Truncate(mustCreate(t, swap), p.size); err != nil {
				t.Fatal(err)
			}
			testtool.Run(t, "mkswap", swap)
			copyInto(t, swap, img, p.start)
		}
	}
	return img
}

func TestAutoFindsRootOnGPT(t *testing.T) {
	disk := makeDisk(t, "gpt", 64*mib, []part{
		{sfdisk: "start=2048, size=8M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B", start: 2048 * 512, size: 8 * mib},
		{sfdisk: "start=18432, size=8M, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", mkfs: "swap", start: 18432 * 512, size: 8 * mib},
		{sfdisk: "start=34816, size=24M", mkfs: "ext4:" + guestTree(t, "Debian GNU/Linux"), start: 34816 * 512, size: 24 * mib},
	})
	im, err := Open(disk, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Partition.Number != 3 {
		t.Fatalf("root found on partition %d, want 3", im.Partition.Number)
	}
	data, err := im.FS.ReadFile("/etc/passwd")
	if err != nil || !strings.HasPrefix(string(data), "root:") {
		t.Fatalf("read /etc/passwd: %q %v", data, err)
	}
}

func TestAutoFindsLogicalRootOnMBRAndQcow2(t *testing.T) {
	disk := makeDisk(t, "dos", 64*mib, []part{
		{sfdisk: "start=2048, size=16M, type=83", mkfs: "ext4:" + dataTree(t), start: 2048 * 512, size: 16 * mib},
		{sfdisk: "start=34816, size=40M, type=5"},
		{sfdisk: "start=36864, size=8M, type=82", mkfs: "swap", start: 36864 * 512, size: 8 * mib},
		{sfdisk: "start=55296, size=20M, type=83", mkfs: "ext4:" + guestTree(t, "Debian GNU/Linux"), start: 55296 * 512, size: 20 * mib},
	})
	qcow := filepath.Join(t.TempDir(), "disk.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk, qcow)
	for _, img := range []string{disk, qcow} {
		im, err := Open(img, Options{})
		if err != nil {
			t.Fatalf("%s: %v", img, err)
		}
		if im.Partition.Number != 6 || !im.Partition.Logical {
			t.Errorf("%s: root on partition %+v, want logical 6", img, im.Partition)
		}
		if ok, err := im.FS.HasFile("/etc/os-release"); !ok || err != nil {
			t.Errorf("%s: /etc/os-release: %v %v", img, ok, err)
		}
		im.Close()
	}
	r, err := Inspect(qcow, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != "qcow2" || r.Table.Scheme != "mbr" || r.Root == nil || r.Root.Partition != 6 ||
		r.Root.OSName != "Debian GNU/Linux" || r.Root.OSVersion != "12" {
		t.Fatalf("inspect: %+v root %+v", r, r.Root)
	}
	kinds := map[int]string{}
	for _, p := range r.Partitions {
		kinds[p.Number] = p.Content.Kind
	}
	if kinds[1] != "ext4" || kinds[5] != "swap" || kinds[6] != "ext4" {
		t.Fatalf("partition contents: %v", kinds)
	}
}

func TestRootDetectionErrors(t *testing.T) {
	two := makeDisk(t, "dos", 48*mib, []part{
		{sfdisk: "start=2048, size=20M, type=83", mkfs: "ext4:" + guestTree(t, "One"), start: 2048 * 512, size: 20 * mib},
		{sfdisk: "start=43008, size=20M, type=83", mkfs: "ext4:" + guestTree(t, "Two"), start: 43008 * 512, size: 20 * mib},
	})
	_, err := Open(two, Options{})
	if !errors.Is(err, ErrManyRoots) || !strings.Contains(err.Error(), "partition 1") || !strings.Contains(err.Error(), "partition 2") {
		t.Fatalf("two roots: %v", err)
	}
	im, err := Open(two, Options{Partition: "2"})
	if err != nil {
		t.Fatalf("--partition 2: %v", err)
	}
	if data, _ := im.FS.ReadFile("/etc/os-release"); !strings.Contains(string(data), "Two") {
		t.Fatalf("--partition 2 opened the wrong filesystem: %q", data)
	}
	im.Close()

	none := makeDisk(t, "dos", 32*mib, []part{
		{sfdisk: "start=2048, size=8M, type=82", mkfs: "swap", start: 2048 * 512, size: 8 * mib},
		{sfdisk: "start=18432, size=12M, type=83", mkfs: "ext4:" + dataTree(t), start: 18432 * 512, size: 12 * mib},
	})
	_, err = Open(none, Options{})
	if !errors.Is(err, ErrNoRoot) || !strings.Contains(err.Error(), "swap") || !strings.Contains(err.Error(), "no /etc") {
		t.Fatalf("no root: %v", err)
	}
	if _, err := Open(none, Options{Partition: "7"}); !errors.Is(err, ErrBadPartition) {
		t.Fatalf("missing partition: %v", err)
	}
	if _, err := Open(none, Options{Partition: "1"}); err == nil {
		t.Fatal("opening swap as ext succeeded")
	}
	if _, err := Open(none, Options{Partition: "x"}); !errors.Is(err, ErrBadPartition) {
		t.Fatalf("bad selector: %v", err)
	}
}

func TestWholeDiskAndOffset(t *testing.T) {
	img := filepath.Join(t.TempDir(), "fs.img")
	mustCreate(t, img)
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", guestTree(t, "Whole"), img, "16M")
	im, err := Open(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if im.Partition.Number != 0 || im.Table.Scheme != "none" {
		t.Fatalf("whole disk: %+v %s", im.Partition, im.Table.Scheme)
	}
	im.Close()
	if _, err := Open(img, Options{Partition: "1"}); !errors.Is(err, ErrBadPartition) {
		t.Fatalf("partition 1 of a table-less disk: %v", err)
	}
	disk := makeDisk(t, "dos", 32*mib, []part{
		{sfdisk: "start=4096, size=20M, type=83", mkfs: "ext4:" + guestTree(t, "Off"), start: 4096 * 512, size: 20 * mib},
	})
	im, err = Open(disk, Options{Offset: 4096 * 512})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := im.FS.HasFile("/etc/passwd"); !ok {
		t.Fatal("--offset: /etc/passwd missing")
	}
	im.Close()
	if _, err := Open(disk, Options{Offset: 64 * mib}); !errors.Is(err, ErrBadPartition) {
		t.Fatalf("offset past the end: %v", err)
	}
}

func TestBackingPolicyApplies(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	mustCreate(t, base)
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", guestTree(t, "Base"), base, "16M")
	over := filepath.Join(dir, "over.qcow2")
	testtool.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, over)
	if _, err := Open(over, Options{Backing: formats.BackingDeny}); !errors.Is(err, formats.ErrBackingDenied) {
		t.Fatalf("deny: %v", err)
	}
	im, err := Open(over, Options{Backing: formats.BackingAllow})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if ok, _ := im.FS.HasFile("/etc/os-release"); !ok {
		t.Fatal("overlay does not show the base's files")
	}
}

func TestParseOSRelease(t *testing.T) {
	kv := ParseOSRelease([]byte("# c\nNAME=\"Debian \\\"GNU\\\"/Linux\"\nID=debian\nVERSION_ID='12'\nbroken\n\n"))
	if kv["NAME"] != `Debian "GNU"/Linux` || kv["ID"] != "debian" || kv["VERSION_ID"] != "12" || len(kv) != 3 {
		t.Fatalf("%q", kv)
	}
}

// TestLoneFS: with LoneFS, a disk whose only ext filesystem has no guest
// root markers (beside a swap partition) is served, with a warning; two
// such filesystems are still refused, and without LoneFS nothing changes.
func TestLoneFS(t *testing.T) {
	one := makeDisk(t, "dos", 32*mib, []part{
		{sfdisk: "start=2048, size=8M, type=82", mkfs: "swap", start: 2048 * 512, size: 8 * mib},
		{sfdisk: "start=18432, size=12M, type=83", mkfs: "ext4:" + dataTree(t), start: 18432 * 512, size: 12 * mib},
	})
	if _, err := Open(one, Options{}); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("without LoneFS: %v", err)
	}
	var warned []string
	im, err := Open(one, Options{LoneFS: true, Warn: func(s string) { warned = append(warned, s) }})
	if err != nil {
		t.Fatalf("LoneFS: %v", err)
	}
	defer im.Close()
	if im.Partition.Number != 2 || len(warned) != 1 || !strings.Contains(warned[0], "partition 2") {
		t.Fatalf("LoneFS served partition %d, warnings %q", im.Partition.Number, warned)
	}
	two := makeDisk(t, "dos", 32*mib, []part{
		{sfdisk: "start=2048, size=12M, type=83", mkfs: "ext4:" + dataTree(t), start: 2048 * 512, size: 12 * mib},
		{sfdisk: "start=26624, size=12M, type=83", mkfs: "ext4:" + dataTree(t), start: 26624 * 512, size: 12 * mib},
	})
	if _, err := Open(two, Options{LoneFS: true}); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("two data filesystems with LoneFS: %v", err)
	}
}
