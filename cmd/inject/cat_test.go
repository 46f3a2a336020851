package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
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

// TestReadVerbsOnDataDisk: ls and cat read an image whose one filesystem
// has no guest root markers (a data disk), saying so on stderr; an
// injection into it is still refused and leaves it unchanged.
func TestReadVerbsOnDataDisk(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Fatalf("mke2fs (Debian e2fsprogs) is missing: %v", err)
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "data", "x"), []byte("payload\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "data.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	out, errOut, code := cli("cat", img, "/data/x")
	if code != 0 || out != "payload\n" || !strings.Contains(errOut, "only filesystem") {
		t.Fatalf("cat: exit %d, %q, stderr %q", code, out, errOut)
	}
	if out, _, code := cli("ls", img); code != 0 || !strings.Contains(out, "data") {
		t.Fatalf("ls /: exit %d, %q", code, out)
	}
	before, _ := os.ReadFile(img)
	if _, errOut, code := cli("--meta", "a=b", img); code == 0 || !strings.Contains(errOut, "no guest root") {
		t.Fatalf("injection into a data disk: exit %d: %s", code, errOut)
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Fatal("the refused injection changed the image")
	}
}
