package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// logicalImage makes an MBR disk whose 4th partition is extended and holds
// three logical partitions; it returns the image and the LBAs of the
// extended partition's start and of each EBR.
func logicalImage(t *testing.T) (img string, extStart, extSize int64, ebrs []int64) {
	t.Helper()
	img = newImage(t, 32<<20)
	sfdiskScript(t, img, "label: dos\nsize=4M, type=83\nsize=1M, type=83\nsize=1M, type=83\ntype=5\nsize=4M, type=83\nsize=4M, type=83\nsize=4M, type=83\n")
	tab := mustRead(t, img, Options{})
	for _, p := range tab.Partitions {
		if p.Extended {
			extStart, extSize = p.Start/512, p.Size/512
		}
	}
	f := openFile(t, img)
	for lba := extStart; ; {
		ebrs = append(ebrs, lba)
		e := make([]byte, 16)
		if _, err := f.ReadAt(e, lba*512+0x1CE); err != nil {
			t.Fatal(err)
		}
		rel := binary.LittleEndian.Uint32(e[8:])
		if rel == 0 {
			break
		}
		lba = extStart + int64(rel)
	}
	if len(ebrs) != 3 {
		t.Fatalf("sfdisk made %d EBRs, want 3", len(ebrs))
	}
	return img, extStart, extSize, ebrs
}

// setLink points the link entry of the EBR at lba to rel (relative to the
// extended partition).
func setLink(t *testing.T, img string, lba int64, rel uint32) {
	t.Helper()
	e := make([]byte, 16)
	e[4] = 0x05
	binary.LittleEndian.PutUint32(e[8:], rel)
	binary.LittleEndian.PutUint32(e[12:], 2048)
	if _, err := openFile(t, img).WriteAt(e, lba*512+0x1CE); err != nil {
		t.Fatal(err)
	}
}

func TestEBRHostileChains(t *testing.T) {
	cases := []struct {
		name    string
		ebr     int                              // which EBR to edit
		rel     func(ext, size, ebr int64) int64 // new link
		loopLBA func(ext int64, ebrs []int64) int64
	}{
		{"self loop first", 0, func(ext, _, ebr int64) int64 { return ebr - ext }, func(ext int64, e []int64) int64 { return e[0] }},
		{"self loop second", 1, func(ext, _, ebr int64) int64 { return ebr - ext }, func(ext int64, e []int64) int64 { return e[1] }},
		{"two-cycle", 2, func(ext, _, _ int64) int64 { return 0 }, func(ext int64, e []int64) int64 { return e[2] }},
		{"past the extended end", 1, func(_, size, _ int64) int64 { return size }, func(ext int64, e []int64) int64 { return e[1] }},
		{"2^32-1", 0, func(_, _, _ int64) int64 { return 1<<32 - 1 }, func(ext int64, e []int64) int64 { return e[0] }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, ext, size, ebrs := logicalImage(t)
			setLink(t, img, ebrs[c.ebr], uint32(c.rel(ext, size, ebrs[c.ebr])))
			_, err := readImage(t, img, Options{})
			var pe *Error
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &pe) {
				t.Fatalf("err %v, want ErrCorrupt", err)
			}
			if want := c.loopLBA(ext, ebrs); pe.LBA != want || pe.Where != "ebr" {
				t.Errorf("error at %s LBA %d, want ebr LBA %d: %v", pe.Where, pe.LBA, want, err)
			}
		})
	}
}

// TestEBRChainTooLong: 130 well-formed EBRs in a row are refused after 128.
func TestEBRChainTooLong(t *testing.T) {
	const n, base = 130, 64
	disk := make([]byte, (base+2*n+8)*512)
	mbrAt := func(lba int64, i int, typ byte, rel, sectors uint32) {
		e := disk[lba*512+0x1BE+int64(i)*16:]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], rel)
		binary.LittleEndian.PutUint32(e[12:], sectors)
		disk[lba*512+510], disk[lba*512+511] = 0x55, 0xAA
	}
	mbrAt(0, 0, 0x05, base, 2*n+4)
	for i := int64(0); i < n; i++ {
		lba := base + 2*i
		mbrAt(lba, 0, 0x83, 1, 1)
		mbrAt(lba, 1, 0x05, uint32(2*(i+1)), 2)
	}
	_, err := Read(bytes.NewReader(disk), int64(len(disk)))
	var pe *Error
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &pe) || pe.LBA != base+2*127 {
		t.Fatalf("err %v, want ErrCorrupt at the 128th EBR, LBA %d", err, base+2*127)
	}
}

func TestEBRWithoutSignatureEndsChain(t *testing.T) {
	img, _, _, ebrs := logicalImage(t)
	if _, err := openFile(t, img).WriteAt([]byte{0, 0}, ebrs[1]*512+510); err != nil {
		t.Fatal(err)
	}
	tab := mustRead(t, img, Options{})
	if len(tab.Partitions) != 5 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "no 0x55AA") {
		t.Fatalf("partitions %d warnings %q; want 4 primaries, logical 5 and a warning", len(tab.Partitions), tab.Warnings)
	}
}
