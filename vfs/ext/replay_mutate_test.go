package ext

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// TestReplayMutatedLogs damages the log of debugfs-made journals one byte
// at a time (headers, tags, revoke counts, commit blocks, logged data)
// and replays each copy: ours must either refuse and leave the image
// untouched, or write exactly what debugfs journal_run (e2fsprogs'
// recovery code) writes, apart from the superblock's block.
func TestReplayMutatedLogs(t *testing.T) {
	for _, c := range []struct {
		rpCase
		offs func(bs int) []int // bytes damaged in each log block
	}{
		{rpCases[0], func(bs int) []int { return []int{0, 9, 14, 30, bs - 3} }},
		{rpCases[4], func(bs int) []int { return []int{0, 14, bs - 3} }}, // no checksums: mostly replayed, slower
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rpMake(t, c.rpCase)
			var replayed, refused int
			for lb := 1; lb <= 8; lb++ {
				pb := rpJournalBlock(t, r.path, lb)
				for _, off := range c.offs(r.bs) {
					at := pb*r.bs + off
					ok := rpMutateOnce(t, r, at, fmt.Sprintf("log block %d byte %d", lb, off))
					if ok {
						replayed++
					} else {
						refused++
					}
				}
			}
			t.Logf("%d damaged logs replayed as debugfs does, %d refused", replayed, refused)
		})
	}
}

// rpJournalBlock returns the filesystem block of journal block lb.
func rpJournalBlock(t *testing.T, img string, lb int) int {
	t.Helper()
	out := testtool.Run(t, "debugfs", "-R", fmt.Sprintf("bmap <8> %d", lb), img)
	f := strings.Fields(string(out))
	var n int
	if _, err := fmt.Sscan(f[len(f)-1], &n); err != nil {
		t.Fatalf("bmap: %s", out)
	}
	return n
}

// rpMutateOnce flips the byte at off of a copy of r's image and checks
// our replay against debugfs'. It reports whether ours replayed.
func rpMutateOnce(t *testing.T, r *rpImage, off int, what string) bool {
	t.Helper()
	orig, err := os.ReadFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	orig[off] ^= 0xA5
	dir := t.TempDir()
	a := filepath.Join(dir, "ours.img")
	os.WriteFile(a, orig, 0o644)
	_, err = rpReplayQuiet(a)
	if err != nil {
		if strings.HasPrefix(err.Error(), "PANIC") {
			t.Fatalf("%s: %v", what, err)
		}
		if now, _ := os.ReadFile(a); !bytes.Equal(now, orig) {
			t.Errorf("%s: refused (%v) but wrote to the image", what, err)
		}
		return false
	}
	b := filepath.Join(dir, "debugfs.img")
	os.WriteFile(b, orig, 0o644)
	testtool.Output(t, "debugfs", "-w", "-R", "journal_run", b)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	for i := 0; i+r.bs <= len(ab); i += r.bs {
		if uint64(i/r.bs) != r.sbBlock && !bytes.Equal(ab[i:i+r.bs], bb[i:i+r.bs]) {
			t.Errorf("%s: block %d differs from debugfs journal_run's replay", what, i/r.bs)
		}
	}
	return true
}

// rpReplayQuiet is rpReplayFile without test assertions, panics turned
// into errors.
func rpReplayQuiet(img string) (n int, err error) {
	err = rpOpenRW(img, Options{}, func(f *FS) error {
		var e error
		n, e = rpReplay(f)
		return e
	})
	return n, err
}
