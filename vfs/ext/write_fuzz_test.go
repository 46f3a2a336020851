package ext

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// writeMemImage is an in-memory image, readable and writable.
type writeMemImage []byte

func (m writeMemImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, os.ErrInvalid
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, os.ErrInvalid
	}
	return n, nil
}

func (m writeMemImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, os.ErrInvalid
	}
	return copy(m[off:], p), nil
}

var (
	writeFuzzOnce sync.Once
	writeFuzzBase map[string][]byte
)

// fuzzImages builds the small images the write fuzzer damages.
func writeFuzzImages(t testing.TB) map[string][]byte {
	writeFuzzOnce.Do(func() {
		writeFuzzBase = map[string][]byte{}
		src := t.TempDir()
		os.MkdirAll(filepath.Join(src, "etc"), 0o755)
		os.WriteFile(filepath.Join(src, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
		os.WriteFile(filepath.Join(src, "big"), make([]byte, 70000), 0o644)
		os.Symlink("/etc/passwd", filepath.Join(src, "link"))
		for name, args := range map[string][]string{
			"ext4": {"-t", "ext4", "-O", "^has_journal", "-b", "1024"},
			"ext2": {"-t", "ext2", "-b", "1024"},
		} {
			img := filepath.Join(t.TempDir(), name+".img")
			all := append([]string{"-q", "-F", "-E", "root_owner=0:0", "-d", src, "-N", "64"}, args...)
			testtool.Run(t, "mke2fs", append(all, img, "1M")...)
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			writeFuzzBase[name] = b
		}
	})
	return writeFuzzBase
}

// FuzzWrite damages metadata of a small image (pairs of a 32-bit offset
// into the first 64 KiB and a byte) and runs every write operation on
// it: errors are expected, panics, hangs and writes outside the image
// are not.
func FuzzWrite(f *testing.F) {
	imgs := writeFuzzImages(f)
	f.Add(false, []byte{})
	f.Add(true, []byte{0x30, 0x04, 0, 0, 0xFF})  // superblock free blocks
	f.Add(false, []byte{0x00, 0x0C, 0, 0, 0x00}) // a bitmap
	f.Add(true, []byte{0x28, 0x14, 0, 0, 0x07})  // an inode
	f.Fuzz(func(t *testing.T, ext2 bool, damage []byte) {
		base := imgs["ext4"]
		if ext2 {
			base = imgs["ext2"]
		}
		img := writeMemImage(append([]byte(nil), base...))
		for len(damage) >= 5 {
			off := int(binary.LittleEndian.Uint32(damage) % (64 << 10))
			img[off] = damage[4]
			damage = damage[5:]
		}
		fsys, err := Open(img, int64(len(img)), &Options{Writable: true, Force: true})
		if err != nil {
			return
		}
		w := wfs{fsys}
		_ = w.MakePath("/a/b")
		_ = w.ReplaceFile("/a/b/f", make([]byte, 3000))
		_ = w.AppendFile("/etc/passwd", []byte("al:x:1000:1000::/home/al:/bin/sh\n"))
		_ = w.ReplaceFile("/big", []byte("small"))
		_ = w.Symlink("/a/b/f", "/a/l")
		_ = w.SetPermissions("/etc/passwd", 0o600)
		_ = w.SetOwnership("/etc/passwd", "root", "0")
		_ = w.Remove("/link")
		_ = w.Remove("/a/b/f")
		_ = w.Remove("/a/b")
		if len(img) != len(base) {
			t.Fatal("image size changed")
		}
	})
}
