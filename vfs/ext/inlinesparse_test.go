package ext

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// TestWriteInlineSizePastStoredBytes: an inline-data file whose size is
// past the bytes it stores (mke2fs -d makes one from a file of holes) is
// appended to, truncated and grown: the stored bytes, the zeros after
// them and the new bytes read back through debugfs, and e2fsck -fn finds
// the image clean. The engine used to refuse every such write.
func TestWriteInlineSizePastStoredBytes(t *testing.T) {
	testtool.Need(t, "e2fsck")
	src := t.TempDir()
	sparse := func(name string, size int64) {
		t.Helper()
		fh, err := os.Create(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := fh.Truncate(size); err != nil {
			t.Fatal(err)
		}
		fh.Close()
	}
	sparse("big", 1<<20)    // moves out to blocks when written
	sparse("cut", 1<<20)    // truncated, stays inline
	sparse("small", 100)    // written in place
	sparse("replace", 5000) // replaced
	for _, opts := range [][]string{
		{"-t", "ext4", "-O", "inline_data"},
		{"-t", "ext4", "-b", "1024", "-O", "inline_data,^metadata_csum"},
	} {
		img := mkfs(t, src, 16, opts...)
		fsck(t, img)
		f := openW(t, img)
		for _, p := range []string{"/big", "/cut", "/small", "/replace"} {
			in, err := f.regular("read", p)
			if err != nil {
				t.Fatal(err)
			}
			if !in.flag(layout.FlagInlineData) || in.size <= layout.InodeBlockSize {
				t.Fatalf("%v: %s is not an inline file past its stored bytes (flags %#x size %d)", opts, p, in.raw.Flags, in.size)
			}
		}
		if err := f.AppendFile("/big", []byte("tail")); err != nil {
			t.Fatalf("%v: append to /big: %v", opts, err)
		}
		if err := f.Truncate("/cut", 300000); err != nil {
			t.Fatalf("%v: truncate /cut: %v", opts, err)
		}
		if err := f.AppendFile("/small", []byte("xy")); err != nil {
			t.Fatalf("%v: append to /small: %v", opts, err)
		}
		if err := f.ReplaceFile("/replace", []byte("new")); err != nil {
			t.Fatalf("%v: replace /replace: %v", opts, err)
		}
		fsck(t, img)
		wantCat(t, img, "/big", append(make([]byte, 1<<20), "tail"...))
		// debugfs cats only the stored bytes of an inline file: the
		// size comes from its stat, the zeros from the engine's read.
		if s := debugfsStat(t, img, "/cut"); s.size != 300000 || s.flags&uint32(layout.FlagInlineData) == 0 {
			t.Fatalf("%v: /cut after the truncation: flags %#x size %d, want inline and 300000 bytes", opts, s.flags, s.size)
		}
		if c := debugfsCat(t, img, "/cut"); len(c) > 300000 || !allZero(c) {
			t.Fatalf("%v: debugfs cat /cut: %d bytes %.40q", opts, len(c), c)
		}
		if g, err := mustOpen(t, img).ReadFile("/cut"); err != nil || !bytes.Equal(g, make([]byte, 300000)) {
			t.Fatalf("%v: engine reads /cut: %d bytes, %v", opts, len(g), err)
		}
		wantCat(t, img, "/small", append(make([]byte, 100), "xy"...))
		wantCat(t, img, "/replace", []byte("new"))
		g, err := mustOpen(t, img).ReadFile("/big")
		if err != nil || !bytes.Equal(g, append(make([]byte, 1<<20), "tail"...)) {
			t.Fatalf("%v: engine reads /big: %d bytes, %v", opts, len(g), err)
		}
		if s := debugfsStat(t, img, "/big"); s.flags&uint32(layout.FlagInlineData) != 0 || s.size != 1<<20+4 {
			t.Fatalf("%v: /big after the append: flags %#x size %d, want blocks and %d bytes", opts, s.flags, s.size, 1<<20+4)
		}
	}
}
