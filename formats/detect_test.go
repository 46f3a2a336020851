package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// synthetic builds a file of size bytes with magic at off.
func synthetic(size int64, off int64, magic []byte) []byte {
	b := make([]byte, size)
	copy(b[off:], magic)
	return b
}

func TestDetectSynthetic(t *testing.T) {
	vdi := make([]byte, 4)
	binary.LittleEndian.PutUint32(vdi, 0xbeda107f)
	qcow1 := []byte("QFI\xfb\x00\x00\x00\x01")
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"vmdk-sparse", "vmdk", synthetic(4096, 0, []byte("KDMV"))},
		{"vmdk-descriptor", "vmdk", synthetic(4096, 0, []byte("# Disk DescriptorFile\nversion=1\n"))},
		{"vhd-fixed-footer", "vhd", synthetic(8192, 8192-512, []byte("conectix"))},
		{"vhd-dynamic", "vhd", synthetic(8192, 0, []byte("conectix"))},
		{"vhdx", "vhdx", synthetic(8192, 0, []byte("vhdxfile"))},
		{"vdi", "vdi", synthetic(8192, 0x40, vdi)},
		{"iso", "iso", synthetic(0x10000, 0x8001, []byte("CD001"))},
		{"qcow1", "qcow (version 1)", synthetic(4096, 0, qcow1)},
		{"qed", "qed", synthetic(4096, 0, []byte("QED\x00"))},
		{"luks", "luks", synthetic(4096, 0, []byte("LUKS\xba\xbe"))},
		{"raw-zeros", "raw", make([]byte, 4096)},
		{"raw-tiny", "raw", []byte{1, 2, 3}},
		{"raw-empty", "raw", nil},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Detect(bytes.NewReader(c.data), int64(len(c.data)))
			if err != nil || got != c.want {
				t.Fatalf("Detect = %q, %v; want %q", got, err, c.want)
			}
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, c.data, 0o644)
			d, err := Open(p, Options{ReadOnly: true})
			if c.want == "raw" {
				if err != nil {
					t.Fatal(err)
				}
				d.Close()
				return
			}
			switch {
			case ReadOnlyFormat(c.want):
				// read, but these magic-only files are no valid image
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(strings.ToLower(err.Error()), c.want) {
					t.Fatalf("Open: %v, want ErrCorrupt naming %s", err, c.want)
				}
			case !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), c.want):
				t.Fatalf("Open: %v", err)
			}
			// An explicit format override reads it as raw.
			d, err = Open(p, Options{ReadOnly: true, Format: FormatRaw})
			if err != nil {
				t.Fatal(err)
			}
			if d.Size() != int64(len(c.data)) {
				t.Fatalf("raw size %d", d.Size())
			}
			d.Close()
		})
	}
}

func TestFormatOverride(t *testing.T) {
	dir := t.TempDir()
	img := smallImage(t, dir)
	d, err := Open(img, Options{ReadOnly: true, Format: FormatRaw})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(img)
	if d.Size() != fi.Size() || d.Info().Format != FormatRaw {
		t.Fatalf("raw override: size %d format %s", d.Size(), d.Info().Format)
	}
	d.Close()
	raw := patternRaw(t, dir, "x.raw", 1<<20, 1)
	if _, err := Open(raw, Options{ReadOnly: true, Format: FormatQcow2}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("raw forced as qcow2: %v", err)
	}
	if _, err := Open(raw, Options{ReadOnly: true, Format: "vmdk"}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("forced vmdk: %v", err)
	}
	if _, err := Open(raw, Options{ReadOnly: true, Format: "qed"}); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("forced qed: %v", err)
	}
}

func TestRawDisk(t *testing.T) {
	dir := t.TempDir()
	raw := patternRaw(t, dir, "r.raw", 1<<20, 3)
	want, _ := os.ReadFile(raw)
	d, err := Open(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustEqual(t, readAll(t, d), want, "raw")
	if _, err := d.WriteAt([]byte{1, 2}, d.Size()-1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("write past end: %v", err)
	}
	if _, err := d.WriteAt([]byte{9}, 5); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	d.ReadAt(b, 5)
	if b[0] != 9 {
		t.Fatal("raw write not visible")
	}
}
