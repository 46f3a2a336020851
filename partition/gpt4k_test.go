package partition

import (
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/guestinject/guestinject/internal/testtool"
)

// testPart is a partition for buildGPT, in LBAs.
type testPart struct {
	typ, guid   string
	first, last uint64
	name        string
	attrs       uint64
}

// guidBytes is the inverse of guidString.
func guidBytes(t testing.TB, s string) [16]byte {
	t.Helper()
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 {
		t.Fatalf("GUID %q: %v", s, err)
	}
	var g [16]byte
	order := [16]int{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	for i, idx := range order {
		g[idx] = raw[i]
	}
	return g
}

// buildGPT writes a protective MBR and both GPT copies for a disk of size
// bytes with ss-byte sectors: what sgdisk would write, were it able to
// make a 4096-byte-sector table in an image file. At ss=512 its output is
// checked against sfdisk and `sgdisk -v`.
func buildGPT(t testing.TB, img string, ss int, size int64, parts []testPart) {
	t.Helper()
	buildGPTEntries(t, img, ss, size, 128, parts)
}

// buildGPTEntries is buildGPT with an entry array of n entries.
func buildGPTEntries(t testing.TB, img string, ss int, size int64, n int, parts []testPart) {
	t.Helper()
	const es = 128
	lbas := uint64(size) / uint64(ss)
	arraySectors := uint64(n*es+ss-1) / uint64(ss)
	entries := make([]byte, n*es)
	for i, p := range parts {
		e := entries[i*es:]
		tg, ug := guidBytes(t, p.typ), guidBytes(t, p.guid)
		copy(e[0:], tg[:])
		copy(e[16:], ug[:])
		binary.LittleEndian.PutUint64(e[0x20:], p.first)
		binary.LittleEndian.PutUint64(e[0x28:], p.last)
		binary.LittleEndian.PutUint64(e[0x30:], p.attrs)
		for j, c := range utf16.Encode([]rune(p.name)) {
			binary.LittleEndian.PutUint16(e[0x38+2*j:], c)
		}
	}
	header := func(my, alt, entriesLBA uint64) []byte {
		h := make([]byte, ss)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[0x08:], 0x00010000)
		binary.LittleEndian.PutUint32(h[0x0C:], 92)
		binary.LittleEndian.PutUint64(h[0x18:], my)
		binary.LittleEndian.PutUint64(h[0x20:], alt)
		binary.LittleEndian.PutUint64(h[0x28:], 2+arraySectors)
		binary.LittleEndian.PutUint64(h[0x30:], lbas-2-arraySectors)
		dg := guidBytes(t, "6E5A1C3B-0F2D-4E8A-9B7C-1D2E3F405162")
		copy(h[0x38:], dg[:])
		binary.LittleEndian.PutUint64(h[0x48:], entriesLBA)
		binary.LittleEndian.PutUint32(h[0x50:], uint32(n))
		binary.LittleEndian.PutUint32(h[0x54:], es)
		binary.LittleEndian.PutUint32(h[0x58:], crc32.ChecksumIEEE(entries))
		binary.LittleEndian.PutUint32(h[0x10:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	pmbr := make([]byte, 512)
	pmbr[0x1BE+4] = 0xEE
	binary.LittleEndian.PutUint32(pmbr[0x1BE+8:], 1)
	binary.LittleEndian.PutUint32(pmbr[0x1BE+12:], uint32(min(lbas-1, 0xFFFFFFFF)))
	pmbr[510], pmbr[511] = 0x55, 0xAA
	f := openFile(t, img)
	writes := []struct {
		b   []byte
		lba uint64
	}{
		{pmbr, 0}, {header(1, lbas-1, 2), 1}, {entries, 2},
		{entries, lbas - 1 - arraySectors}, {header(lbas-1, 1, lbas-1-arraySectors), lbas - 1},
	}
	for _, w := range writes {
		if _, err := f.WriteAt(w.b, int64(w.lba)*int64(ss)); err != nil {
			t.Fatal(err)
		}
	}
}

var parts4k = []testPart{
	{"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "11111111-2222-4333-8444-555555555555", 256, 511, "EFI", 0},
	{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "21111111-2222-4333-8444-555555555555", 512, 2559, "root", 4},
	{"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "31111111-2222-4333-8444-555555555555", 2560, 3071, "", 0},
}

// TestGPTBuilderMatchesTools proves buildGPT against the reference tools at
// 512-byte sectors, where they can read an image file.
func TestGPTBuilderMatchesTools(t *testing.T) {
	img := newImage(t, 4<<20)
	buildGPT(t, img, 512, 4<<20, parts4k)
	if out := testtool.Run(t, "sgdisk", "-v", img); !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v:\n%s", out)
	}
	compareWithSfdisk(t, mustRead(t, img, Options{}), img)
}

func TestGPT4096(t *testing.T) {
	const size = 16 << 20
	img := newImage(t, size)
	buildGPT(t, img, 4096, size, parts4k)
	check := func(tab *Table, wantWarnings int) {
		t.Helper()
		if tab.Scheme != SchemeGPT || tab.SectorSize != 4096 || len(tab.Partitions) != 3 || len(tab.Warnings) != wantWarnings {
			t.Fatalf("scheme %q sector size %d partitions %d warnings %q", tab.Scheme, tab.SectorSize, len(tab.Partitions), tab.Warnings)
		}
		for i, w := range parts4k {
			p := tab.Partitions[i]
			if p.Start != int64(w.first)*4096 || p.End() != int64(w.last+1)*4096 || p.GUID != w.guid || p.Name != w.name || p.Bootable != (w.attrs == 4) {
				t.Errorf("partition %+v, want %+v", p, w)
			}
		}
	}
	check(mustRead(t, img, Options{}), 0)
	check(mustRead(t, img, Options{SectorSize: 4096}), 0)
	if _, err := readImage(t, img, Options{SectorSize: 512}); !isCorrupt(err) {
		t.Errorf("forcing 512-byte sectors on a 4096 GPT: %v, want ErrCorrupt", err)
	}
	corruptAt(t, img, 4096) // the signature: the protective MBR still says GPT
	check(mustRead(t, img, Options{}), 1)
	p2 := parts4k[1]
	mkfsAt(t, img, int64(p2.first)*4096, int64(p2.last-p2.first+1)*4096, "root4k")
	tab := mustRead(t, img, Options{})
	sec, err := tab.Open(openFile(t, img), 2)
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := Identify(sec, sec.Size()); err != nil || sig.Label != "root4k" {
		t.Errorf("Identify partition 2: %+v, %v", sig, err)
	}
}
