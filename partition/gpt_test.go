package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

const gptDiskSize = 20 << 20

// gptTemplate holds the head (MBR, primary header and entries) and tail
// (backup entries and header) of the disk gptImage makes: sgdisk takes a
// second per call, so it runs once per test binary.
var gptTemplate struct {
	once       sync.Once
	head, tail []byte
}

// gptImage returns a GPT disk built by sgdisk: an EFI system partition, a
// bootable Linux root, swap, LVM, RAID and a Microsoft basic data one.
func gptImage(t testing.TB) string {
	t.Helper()
	gptTemplate.once.Do(func() {
		img := newImage(t, gptDiskSize)
		testtool.Run(t, "sgdisk",
			"-n", "1:2048:+2M", "-t", "1:ef00", "-c", "1:EFI system",
			"-n", "2:0:+8M", "-t", "2:8300", "-c", "2:root fs", "-A", "2:set:2",
			"-n", "3:0:+1M", "-t", "3:8200", "-c", "3:swap",
			"-n", "5:0:+2M", "-t", "5:8e00", "-c", "5:lvm ünïcode",
			"-n", "6:0:+1M", "-t", "6:fd00",
			"-n", "7:0:+1M", "-t", "7:0700", "-c", "7:data",
			img)
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		gptTemplate.head = b[:34*512]
		gptTemplate.tail = b[len(b)-33*512:]
	})
	if gptTemplate.head == nil {
		t.Fatal("building the GPT template failed")
	}
	img := newImage(t, gptDiskSize)
	f := openFile(t, img)
	if _, err := f.WriteAt(gptTemplate.head, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(gptTemplate.tail, gptDiskSize-int64(len(gptTemplate.tail))); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestGPTMatchSfdisk(t *testing.T) {
	img := gptImage(t)
	tab := mustRead(t, img, Options{})
	compareWithSfdisk(t, tab, img)
	if id := sfdiskJSON(t, img).PartitionTable.ID; tab.DiskGUID != id {
		t.Errorf("disk GUID %q, sfdisk says %q", tab.DiskGUID, id)
	}
	if tab.Hybrid || tab.SectorSize != 512 || len(tab.Warnings) != 0 {
		t.Errorf("hybrid %v, sector size %d, warnings %q", tab.Hybrid, tab.SectorSize, tab.Warnings)
	}
}

func TestGPTHybridMBR(t *testing.T) {
	img := gptImage(t)
	testtool.Run(t, "sgdisk", "-h", "2:3", img)
	st := sfdiskJSON(t, img)
	tab := mustRead(t, img, Options{})
	if !tab.Hybrid || tab.Scheme != SchemeGPT || st.PartitionTable.Label != "gpt" {
		t.Fatalf("hybrid %v scheme %q (sfdisk %q)", tab.Hybrid, tab.Scheme, st.PartitionTable.Label)
	}
	compareWithSfdisk(t, tab, img)
}

// corruptAt flips one byte of an image.
func corruptAt(t testing.TB, img string, off int64) {
	t.Helper()
	f := openFile(t, img)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestGPTPrimaryCorruptUsesBackup(t *testing.T) {
	cases := map[string]int64{
		"signature":   512,
		"header CRC":  512 + 0x10,
		"entry count": 512 + 0x50,
		"entries":     1024 + 0x20, // first entry's first LBA
		"last entry":  1024 + 127*128,
	}
	for name, off := range cases {
		t.Run(name, func(t *testing.T) {
			img := gptImage(t)
			want := mustRead(t, img, Options{})
			corruptAt(t, img, off)
			got := mustRead(t, img, Options{})
			if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "used the backup") {
				t.Fatalf("warnings %q, want one saying the backup was used", got.Warnings)
			}
			if len(got.Partitions) != len(want.Partitions) {
				t.Fatalf("backup gives %d partitions, primary gave %d", len(got.Partitions), len(want.Partitions))
			}
			for i := range want.Partitions {
				if got.Partitions[i] != want.Partitions[i] {
					t.Errorf("backup partition %+v, primary %+v", got.Partitions[i], want.Partitions[i])
				}
			}
		})
	}
}

func TestGPTBothCorrupt(t *testing.T) {
	img := gptImage(t)
	corruptAt(t, img, 512+0x10)
	corruptAt(t, img, gptDiskSize-512+0x10)
	_, err := readImage(t, img, Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("both headers corrupt: %v, want ErrCorrupt", err)
	}
}

func TestGPTBackupCorruptWarns(t *testing.T) {
	img := gptImage(t)
	corruptAt(t, img, gptDiskSize-512+0x10)
	tab := mustRead(t, img, Options{})
	if len(tab.Partitions) != 6 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "backup GPT unusable") {
		t.Fatalf("partitions %d, warnings %q", len(tab.Partitions), tab.Warnings)
	}
}

// TestGPTDiskGrown: an image enlarged after partitioning keeps its backup
// where it was; the table is read, with a warning.
func TestGPTDiskGrown(t *testing.T) {
	img := gptImage(t)
	if err := os.Truncate(img, 2*gptDiskSize); err != nil {
		t.Fatal(err)
	}
	tab := mustRead(t, img, Options{})
	if len(tab.Partitions) != 6 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "disk resized") {
		t.Fatalf("partitions %d, warnings %q", len(tab.Partitions), tab.Warnings)
	}
}

// rewriteHeader edits the primary header at LBA 1 with fn and fixes its
// CRC, so that only the edited field is wrong.
func rewriteHeader(t testing.TB, img string, lba int64, fn func(h []byte)) {
	t.Helper()
	f := openFile(t, img)
	h := make([]byte, 92)
	if _, err := f.ReadAt(h, lba*512); err != nil {
		t.Fatal(err)
	}
	fn(h)
	binary.LittleEndian.PutUint32(h[0x10:], 0)
	binary.LittleEndian.PutUint32(h[0x10:], crc32.ChecksumIEEE(h))
	if _, err := f.WriteAt(h, lba*512); err != nil {
		t.Fatal(err)
	}
}

// hostileHeaders are CRC-valid headers claiming what no table holds.
var hostileHeaders = map[string]func(h []byte){
	"2^32-1 entries":  func(h []byte) { binary.LittleEndian.PutUint32(h[0x50:], 1<<32-1) },
	"entry size 0":    func(h []byte) { binary.LittleEndian.PutUint32(h[0x54:], 0) },
	"entry size 2^32": func(h []byte) { binary.LittleEndian.PutUint32(h[0x54:], 1<<32-1) },
	"entry size 132":  func(h []byte) { binary.LittleEndian.PutUint32(h[0x54:], 132) },
	"entries past end": func(h []byte) {
		binary.LittleEndian.PutUint64(h[0x48:], 1<<40)
	},
	"entries on header": func(h []byte) { binary.LittleEndian.PutUint64(h[0x48:], 1) },
	"my LBA wrong":      func(h []byte) { binary.LittleEndian.PutUint64(h[0x18:], 7) },
	"header size 2^32":  func(h []byte) { binary.LittleEndian.PutUint32(h[0x0C:], 1<<32-1) },
	"revision 2":        func(h []byte) { binary.LittleEndian.PutUint32(h[0x08:], 0x00020000) },
}

// countingReader records the largest read asked of it.
type countingReader struct {
	r   *os.File
	max int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.max = max(c.max, len(p))
	return c.r.ReadAt(p, off)
}

func TestGPTHostileHeaders(t *testing.T) {
	for name, fn := range hostileHeaders {
		t.Run(name, func(t *testing.T) {
			img := gptImage(t)
			rewriteHeader(t, img, 1, fn)
			cr := &countingReader{r: openFile(t, img)}
			tab, err := Read(cr, gptDiskSize)
			if err != nil {
				t.Fatalf("hostile primary with a good backup: %v", err)
			}
			if len(tab.Partitions) != 6 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "used the backup") {
				t.Errorf("partitions %d, warnings %q", len(tab.Partitions), tab.Warnings)
			}
			if cr.max > 64<<10 {
				t.Errorf("largest read %d bytes", cr.max)
			}
			rewriteHeader(t, img, gptDiskSize/512-1, fn)
			if _, err := Read(cr, gptDiskSize); !errors.Is(err, ErrCorrupt) {
				t.Errorf("both copies hostile: %v, want ErrCorrupt", err)
			}
			if cr.max > 64<<10 {
				t.Errorf("largest read %d bytes", cr.max)
			}
		})
	}
}

// failingReader fails every read touching [from, to).
type failingReader struct {
	r        *os.File
	from, to int64
}

var errDisk = errors.New("disk on fire")

func (f *failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off < f.to && off+int64(len(p)) > f.from {
		return 0, errDisk
	}
	return f.r.ReadAt(p, off)
}

func TestGPTIOErrorDoesNotFallBack(t *testing.T) {
	img := gptImage(t)
	fr := &failingReader{r: openFile(t, img), from: 1024, to: 1025}
	_, err := Read(fr, gptDiskSize)
	if !errors.Is(err, errDisk) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("I/O error on the primary entries: %v, want the disk's error and no fallback", err)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Offset != 1024 {
		t.Errorf("error %v does not locate offset 1024", err)
	}
}

func TestGPTStaleWithoutProtectiveMBR(t *testing.T) {
	img := gptImage(t)
	// A dos label written over a GPT disk leaves the GPT headers in place
	// unless told to wipe them; the MBR is what counts.
	sfdiskScript(t, img, "label: dos\nstart=2048, size=8M, type=83\n")
	tab := mustRead(t, img, Options{})
	st := sfdiskJSON(t, img)
	if tab.Scheme != SchemeMBR || st.PartitionTable.Label != "dos" || len(tab.Partitions) != 1 {
		t.Fatalf("scheme %q partitions %d; sfdisk %q", tab.Scheme, len(tab.Partitions), st.PartitionTable.Label)
	}
}

// TestGPTDiskGrownPrimaryCorrupt: on a grown disk the backup is not at the
// last LBA; a primary whose header is intact but whose entries are corrupt
// still says where it is.
func TestGPTDiskGrownPrimaryCorrupt(t *testing.T) {
	img := gptImage(t)
	if err := os.Truncate(img, 2*gptDiskSize); err != nil {
		t.Fatal(err)
	}
	corruptAt(t, img, 1024+0x20)
	tab := mustRead(t, img, Options{})
	want := fmt.Sprintf("used the backup at LBA %d", gptDiskSize/512-1)
	if len(tab.Partitions) != 6 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], want) {
		t.Fatalf("partitions %d, warnings %q", len(tab.Partitions), tab.Warnings)
	}
}

// TestGPTEmptyMBR: a GPT behind an MBR with the boot signature but no
// entries (a wiped protective MBR) is still read, with a warning.
func TestGPTEmptyMBR(t *testing.T) {
	img := gptImage(t)
	if _, err := openFile(t, img).WriteAt(make([]byte, 64), 0x1BE); err != nil {
		t.Fatal(err)
	}
	tab := mustRead(t, img, Options{})
	if tab.Scheme != SchemeGPT || len(tab.Partitions) != 6 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "no protective MBR") {
		t.Fatalf("scheme %q partitions %d warnings %q", tab.Scheme, len(tab.Partitions), tab.Warnings)
	}
}
