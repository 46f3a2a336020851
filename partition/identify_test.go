package partition

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// blkid returns what `blkid -p` says of an image (TYPE, LABEL, UUID).
func blkid(t testing.TB, img string) map[string]string {
	t.Helper()
	out, rc := testtool.Output(t, "blkid", "-p", "-o", "export", img)
	kv := map[string]string{}
	if rc != 0 {
		return kv
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

func identifyFile(t testing.TB, img string) Signature {
	t.Helper()
	f := openFile(t, img)
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Identify(f, st.Size())
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	return sig
}

// TestIdentifyMatchesBlkid makes real filesystems and swap areas and
// compares Identify with blkid.
func TestIdentifyMatchesBlkid(t *testing.T) {
	cases := []struct {
		name string
		tool string
		args []string
	}{
		{"ext2", "mkfs.ext2", []string{"-L", "twolabel"}},
		{"ext3", "mkfs.ext3", []string{"-L", "three"}},
		{"ext4", "mkfs.ext4", []string{"-L", "root"}},
		{"ext4 no journal", "mkfs.ext4", []string{"-O", "^has_journal"}},
		{"ext3 no journal", "mkfs.ext3", []string{"-O", "^has_journal"}},
		{"ext4 64bit csum", "mkfs.ext4", []string{"-O", "64bit,metadata_csum", "-L", "a-sixteen-char-l"}},
		{"swap", "mkswap", []string{"-L", "swaplabel"}},
		{"swap no label", "mkswap", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := newImage(t, 8<<20)
			args := append([]string{}, c.args...)
			if c.tool != "mkswap" {
				args = append(args, "-q", "-F")
			}
			testtool.Run(t, c.tool, append(args, img)...)
			want := blkid(t, img)
			got := identifyFile(t, img)
			if got.Kind != want["TYPE"] || got.Label != want["LABEL"] || got.UUID != want["UUID"] {
				t.Errorf("Identify %+v, blkid %v", got, want)
			}
		})
	}
}

// crafted builds a 128 KiB partition image with bytes placed at offsets.
func crafted(parts map[int][]byte) []byte {
	b := make([]byte, 128<<10)
	for off, v := range parts {
		copy(b[off:], v)
	}
	return b
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// fatBoot is a FAT boot sector with the extended BPB at ebpb.
func fatBoot(fat32 bool, serial uint32, label string) []byte {
	b := make([]byte, 512)
	copy(b, []byte{0xEB, 0x3C, 0x90})
	copy(b[3:], "mkfs.fat")
	copy(b[0x0B:], le16(512))
	b[0x0D] = 4
	copy(b[0x0E:], le16(4))
	b[0x10] = 2
	b[0x15] = 0xF8
	ebpb := 0x24
	if fat32 {
		ebpb = 0x40
	} else {
		copy(b[0x16:], le16(32))
	}
	b[ebpb+2] = 0x29
	copy(b[ebpb+3:], le32(serial))
	copy(b[ebpb+7:], (label + "           ")[:11])
	b[510], b[511] = 0x55, 0xAA
	return b
}

// TestIdentifyCrafted checks the signatures no mkfs tool in CI can make,
// from byte layouts written by hand.
func TestIdentifyCrafted(t *testing.T) {
	uuid := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	const uuidStr = "01234567-89ab-cdef-0123-456789abcdef"
	pvHeader := append([]byte("LABELONE"), make([]byte, 24)...)
	copy(pvHeader[0x14:], le32(32))
	copy(pvHeader[24:], "LVM2 001")
	pvHeader = append(pvHeader, "abcdefghijklmnopqrstuvwxyzABCDEF"...)
	cases := []struct {
		name string
		img  []byte
		want Signature
	}{
		{"xfs", crafted(map[int][]byte{0: []byte("XFSB"), 0x20: uuid, 0x6C: []byte("xfsroot")}), Signature{"xfs", "xfsroot", uuidStr}},
		{"btrfs", crafted(map[int][]byte{0x10040: []byte("_BHRfS_M"), 0x10020: uuid, 0x1012B: []byte("btr")}), Signature{"btrfs", "btr", uuidStr}},
		{"iso9660", crafted(map[int][]byte{0x8000: []byte("\x01CD001\x01"), 0x8028: []byte("CDROM_LABEL          ")}), Signature{"iso9660", "CDROM_LABEL", ""}},
		{"luks1", crafted(map[int][]byte{0: []byte("LUKS\xba\xbe\x00\x01"), 0xA8: []byte(uuidStr)}), Signature{"luks", "", uuidStr}},
		{"luks2", crafted(map[int][]byte{0: []byte("LUKS\xba\xbe\x00\x02"), 0x18: []byte("cryptroot"), 0xA8: []byte(uuidStr)}), Signature{"luks", "cryptroot", uuidStr}},
		{"lvm2 sector 1", crafted(map[int][]byte{512: pvHeader}), Signature{"lvm2", "", "abcdef-ghij-klmn-opqr-stuv-wxyz-ABCDEF"}},
		{"ntfs", crafted(map[int][]byte{0: []byte("\xEB\x52\x90NTFS    "), 0x48: []byte{0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01}, 510: []byte{0x55, 0xAA}}), Signature{"ntfs", "", "0123456789ABCDEF"}},
		{"fat16", crafted(map[int][]byte{0: fatBoot(false, 0x1234ABCD, "BOOT")}), Signature{"vfat", "BOOT", "1234-ABCD"}},
		{"fat32 no name", crafted(map[int][]byte{0: fatBoot(true, 0xDEADBEEF, "NO NAME")}), Signature{"vfat", "", "DEAD-BEEF"}},
		{"nothing", crafted(nil), Signature{}},
		{"ext magic only past the end", make([]byte, 1000), Signature{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Identify(bytes.NewReader(c.img), int64(len(c.img)))
			if err != nil || got != c.want {
				t.Errorf("Identify = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// TestIdentifyReadsLittle: Identify reads a few small blocks, never the
// partition.
func TestIdentifyReadsLittle(t *testing.T) {
	img := newImage(t, 8<<20)
	testtool.Run(t, "mkswap", img)
	cr := &countingReader{r: openFile(t, img)}
	total := &totalReader{r: cr}
	if _, err := Identify(total, 8<<20); err != nil {
		t.Fatal(err)
	}
	if cr.max > 4096 || total.n > 16<<10 {
		t.Errorf("largest read %d bytes, %d bytes in all", cr.max, total.n)
	}
}

type totalReader struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n int
}

func (r *totalReader) ReadAt(p []byte, off int64) (int, error) {
	r.n += len(p)
	return r.r.ReadAt(p, off)
}
