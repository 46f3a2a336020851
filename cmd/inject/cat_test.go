package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// hugeSize is just over the 1 GiB ReadFile cap of the ext engine.
const hugeSize = 1<<30 + 4097

// sinkWriter counts what cat writes and checks it: head first, then zeros.
type sinkWriter struct {
	head []byte
	n    int64
	bad  int64 // offset of the first unexpected byte, or -1
}

var zeros = make([]byte, 64<<10)

func (w *sinkWriter) Write(p []byte) (int, error) {
	if w.n >= int64(len(w.head)) && len(p) <= len(zeros) && bytes.Equal(p, zeros[:len(p)]) {
		w.n += int64(len(p))
		return len(p), nil
	}
	for i, b := range p {
		off := w.n + int64(i)
		want := byte(0)
		if off < int64(len(w.head)) {
			want = w.head[off]
		}
		if b != want && w.bad < 0 {
			w.bad = off
		}
	}
	w.n += int64(len(p))
	return len(p), nil
}

// TestCatStreamsHugeFile: `inject cat` streams a file of any size in
// constant memory, from an ext image (an inode whose i_size, set with
// debugfs, is 1 GiB + 4097 over one real block) and from a guest directory
// (a sparse host file of the same size). It used to load the file whole
// through ReadFile: the ext engine refused it (over its 1 GiB cap) and a
// directory target allocated all of it.
func TestCatStreamsHugeFile(t *testing.T) {
	head := []byte(strings.Repeat("guestinject streams cat\n", 100))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), head, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", dir, img, "16M")
	testtool.Run(t, "debugfs", "-w", "-R", fmt.Sprintf("sif /big size %d", hugeSize), img)
	if err := os.Truncate(filepath.Join(dir, "big"), hugeSize); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"ext image":       {"--partition", "none", img, "/big"},
		"guest directory": {dir, "/big"},
	} {
		t.Run(name, func(t *testing.T) {
			w := &sinkWriter{head: head, bad: -1}
			var errOut bytes.Buffer
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			code := runCat(args, w, &errOut)
			runtime.ReadMemStats(&after)
			if code != exitOK {
				t.Fatalf("cat exit %d: %s", code, errOut.String())
			}
			if w.n != hugeSize || w.bad >= 0 {
				t.Fatalf("cat wrote %d bytes (want %d), first wrong byte at %d", w.n, int64(hugeSize), w.bad)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Fatalf("cat of a %d-byte file allocated %d MiB", int64(hugeSize), alloc>>20)
			}
		})
	}
}
