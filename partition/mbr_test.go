package partition

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestMBRPrimariesMatchSfdisk(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdiskScript(t, img, "label: dos\nlabel-id: 0x1234abcd\nstart=2048, size=8M, type=83, bootable\nsize=4M, type=82\nsize=16M, type=8e\nsize=4M, type=c\n")
	tab := mustRead(t, img, Options{})
	compareWithSfdisk(t, tab, img)
	if tab.DiskGUID != "0x1234abcd" || tab.SectorSize != 512 || len(tab.Warnings) != 0 {
		t.Errorf("disk id %q, sector size %d, warnings %q", tab.DiskGUID, tab.SectorSize, tab.Warnings)
	}
}

func TestMBRLogicalsMatchSfdisk(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdiskScript(t, img, "label: dos\nsize=4M, type=83\nsize=4M, type=82\nsize=4M, type=8e\ntype=5\nsize=4M, type=83\nsize=8M, type=82\nsize=2M, type=8e\nsize=3M, type=83\nsize=1M, type=7\n")
	tab := mustRead(t, img, Options{})
	compareWithSfdisk(t, tab, img)
	var logical []int
	for _, p := range tab.Partitions {
		if p.Logical {
			logical = append(logical, p.Number)
		}
		if p.Number == 4 && !p.Extended {
			t.Errorf("partition 4 not marked extended: %+v", p)
		}
	}
	if len(logical) != 5 || logical[0] != 5 || logical[4] != 9 {
		t.Errorf("logical partitions %v, want 5-9", logical)
	}
}

func TestMBRExtendedLBATypes(t *testing.T) {
	for _, typ := range []string{"f", "85"} {
		t.Run(typ, func(t *testing.T) {
			img := newImage(t, 32<<20)
			sfdiskScript(t, img, "label: dos\nsize=20M, type="+typ+"\nsize=4M, type=83\nsize=4M, type=83\n")
			tab := mustRead(t, img, Options{})
			compareWithSfdisk(t, tab, img)
			if len(tab.Partitions) != 3 {
				t.Fatalf("partitions %+v", tab.Partitions)
			}
		})
	}
}

// TestMBRPartitionsPastEnd mirrors qemu's grub_mbr.raw sample: a 512-byte
// image holding only an MBR whose partitions lie past its end.
func TestMBRPartitionsPastEnd(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdiskScript(t, img, "label: dos\nstart=2048, size=8M, type=83, bootable\nsize=16M, type=8e\n")
	if err := os.Truncate(img, 512); err != nil {
		t.Fatal(err)
	}
	tab := mustRead(t, img, Options{})
	compareWithSfdisk(t, tab, img)
	if len(tab.Warnings) != 2 || !strings.Contains(tab.Warnings[0], "beyond the end") {
		t.Errorf("warnings %q, want one per partition past the 512-byte disk", tab.Warnings)
	}
	if _, err := tab.Open(openFile(t, img), 1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Open of a partition past the disk end: %v, want ErrOutOfRange", err)
	}
}
