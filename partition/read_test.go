package partition

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

func TestWholeDiskFilesystem(t *testing.T) {
	img := newImage(t, 16<<20)
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-L", "whole", img)
	tab := mustRead(t, img, Options{})
	if tab.Scheme != SchemeNone || len(tab.Partitions) != 1 {
		t.Fatalf("scheme %q partitions %+v", tab.Scheme, tab.Partitions)
	}
	p := tab.Partitions[0]
	if p.Number != 0 || p.Start != 0 || p.Size != 16<<20 {
		t.Errorf("pseudo-partition %+v", p)
	}
	sec, err := tab.Open(openFile(t, img), 0)
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := Identify(sec, sec.Size()); err != nil || sig.Kind != "ext4" || sig.Label != "whole" {
		t.Errorf("Identify = %+v, %v", sig, err)
	}
}

func TestNoTable(t *testing.T) {
	for _, size := range []int64{0, 1, 511, 512, 4096, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			tab, err := Read(bytes.NewReader(make([]byte, size)), size)
			if err != nil || tab.Scheme != SchemeNone || len(tab.Partitions) != 0 {
				t.Fatalf("Read of %d zero bytes = %+v, %v", size, tab, err)
			}
		})
	}
	if _, err := Read(bytes.NewReader(nil), -1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("negative size: %v", err)
	}
	if _, err := ReadOptions(bytes.NewReader(nil), 0, Options{SectorSize: 2048}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("sector size 2048: %v", err)
	}
}

// mkfsAt writes an ext4 filesystem of size bytes at byte offset off.
func mkfsAt(t testing.TB, img string, off, size int64, label string) {
	t.Helper()
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-L", label, "-E", fmt.Sprintf("offset=%d", off), img, fmt.Sprintf("%dk", size>>10))
}

// TestFilesystemsInPartitions: GPT and MBR logical partitions opened as
// sections show the filesystems mkfs put there, and writing through one
// leaves its neighbours alone.
func TestFilesystemsInPartitions(t *testing.T) {
	img := gptImage(t)
	tab := mustRead(t, img, Options{})
	root, _ := tab.Partition(2)
	mkfsAt(t, img, root.Start, root.Size, "gptroot")
	sec, err := tab.Open(openFile(t, img), 2)
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := Identify(sec, sec.Size()); err != nil || sig.Kind != "ext4" || sig.Label != "gptroot" {
		t.Errorf("GPT partition 2: %+v, %v", sig, err)
	}

	img, _, _, _ = logicalImage(t)
	tab = mustRead(t, img, Options{})
	l6, _ := tab.Partition(6)
	mkfsAt(t, img, l6.Start, l6.Size, "logical6")
	sec, err = tab.Open(openFile(t, img), 6)
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := Identify(sec, sec.Size()); err != nil || sig.Kind != "ext4" || sig.Label != "logical6" {
		t.Errorf("logical partition 6: %+v, %v", sig, err)
	}
	if _, err := tab.Open(openFile(t, img), 4); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Open of the extended partition: %v, want ErrUnsupported", err)
	}
	if _, err := tab.Open(openFile(t, img), 9); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a missing partition: %v, want ErrNotFound", err)
	}
	// e2fsck agrees the filesystem is intact after Read and Open.
	testtool.Run(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, l6.Start))
}

// TestMBR4096 puts an MBR with logical partitions on a disk with 4096-byte
// sectors: sfdisk writes the table for 512-byte sectors (it has no option
// for an image file), then the EBRs are moved to where 4096-byte LBAs put
// them, and filesystems are made at the 4096-byte offsets.
func TestMBR4096(t *testing.T) {
	img, _, _, ebrs := logicalImage(t)
	want := mustRead(t, img, Options{})
	if err := os.Truncate(img, 8*(32<<20)); err != nil {
		t.Fatal(err)
	}
	f := openFile(t, img)
	for _, lba := range ebrs {
		b := make([]byte, 512)
		if _, err := f.ReadAt(b, lba*512); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, 512), lba*512); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, lba*4096); err != nil {
			t.Fatal(err)
		}
	}
	p1, _ := want.Partition(1)
	mkfsAt(t, img, p1.Start*8, p1.Size*8, "four-k")
	for _, o := range []Options{{SectorSize: 4096}, {}} {
		got := mustRead(t, img, o)
		if got.SectorSize != 4096 || len(got.Partitions) != len(want.Partitions) {
			t.Fatalf("options %+v: sector size %d, %d partitions; want 4096, %d", o, got.SectorSize, len(got.Partitions), len(want.Partitions))
		}
		for i, w := range want.Partitions {
			g := got.Partitions[i]
			if g.Number != w.Number || g.Start != w.Start*8 || g.Size != w.Size*8 || g.Logical != w.Logical {
				t.Errorf("partition %+v, want %+v scaled by 8", g, w)
			}
		}
		detected := len(got.Warnings) == 1 && strings.Contains(got.Warnings[0], "4096-byte sectors")
		if detected != (o.SectorSize == 0) {
			t.Errorf("options %+v: warnings %q", o, got.Warnings)
		}
	}
}

// TestIOErrorsPropagate: a read failure anywhere Read looks is returned as
// the disk's error (never taken for corruption or absence), located.
func TestIOErrorsPropagate(t *testing.T) {
	mbrImg, _, _, ebrs := logicalImage(t)
	gptImg := gptImage(t)
	corruptAt(t, gptImg, 512+0x10) // the backup header must be read
	cases := []struct {
		name     string
		img      string
		from, to int64
	}{
		{"MBR", mbrImg, 0, 1},
		{"LBA 1 of an MBR disk", mbrImg, 512, 513},
		{"second EBR", mbrImg, ebrs[1] * 512, ebrs[1]*512 + 1},
		{"GPT backup header", gptImg, gptDiskSize - 512, gptDiskSize - 511},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := openFile(t, c.img)
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			_, err = Read(&failingReader{r: f, from: c.from, to: c.to}, st.Size())
			var pe *Error
			if !errors.Is(err, errDisk) || isCorrupt(err) || !errors.As(err, &pe) {
				t.Fatalf("err %v, want the disk's error", err)
			}
			if pe.Offset > c.from || pe.Offset+4096 < c.from {
				t.Errorf("error located at offset %d, failure at %d", pe.Offset, c.from)
			}
		})
	}
}

// TestReadCostFollowsTheTable: reading the table of a 1 TiB disk costs a
// few KiB, like that of a small one.
func TestReadCostFollowsTheTable(t *testing.T) {
	const size = 1 << 40
	gpt := newImage(t, size)
	buildGPT(t, gpt, 512, size, parts4k)
	mbr := newImage(t, size)
	sfdiskScript(t, mbr, "label: dos\nsize=100G, type=83\ntype=5\nsize=200G, type=83\nsize=300G, type=8e\n")
	for _, img := range []string{gpt, mbr} {
		total := &totalReader{r: openFile(t, img)}
		tab, err := Read(total, size)
		if err != nil || len(tab.Partitions) < 3 {
			t.Fatalf("Read: %+v, %v", tab, err)
		}
		t.Logf("%s: %d bytes", tab.Scheme, total.n)
		if total.n > 128<<10 {
			t.Errorf("%s: Read read %d bytes of a 1 TiB disk", tab.Scheme, total.n)
		}
	}
}
