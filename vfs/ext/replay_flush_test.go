package ext

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// rfRecorder is an image in memory that keeps every write in order.
type rfRecorder struct {
	buf    []byte
	writes []rfWrite
}

type rfWrite struct {
	off  int64
	data []byte
}

func (r *rfRecorder) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(r.buf)) {
		return 0, fmt.Errorf("read %d bytes at %d outside the %d-byte image", len(p), off, len(r.buf))
	}
	return copy(p, r.buf[off:]), nil
}

func (r *rfRecorder) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(r.buf)) {
		return 0, fmt.Errorf("write %d bytes at %d outside the %d-byte image", len(p), off, len(r.buf))
	}
	r.writes = append(r.writes, rfWrite{off, bytes.Clone(p)})
	return copy(r.buf[off:], p), nil
}

// rfForbidden is what e2fsck must never find after a crash inside the
// first commit (see writetest's crash test): cross-linked blocks or an
// inode pointing outside the filesystem or at metadata.
var rfForbidden = regexp.MustCompile(`(?i)multiply-claimed|shared with|illegal block|bad block|overlaps fs metadata`)

// TestReplayFlushCrashOrder: the first commit over a journal replayed in
// memory writes the replay home first, needs_recovery cleared only after
// every replayed block and the emptied journal superblock. A crash after
// any prefix of its writes leaves an image that e2fsck's own recovery
// brings back: fully clean while the replay is incomplete (needs_recovery
// still set, the log intact, or the log empty with every block home), and
// never cross-linked once the transaction's own writes have begun.
func TestReplayFlushCrashOrder(t *testing.T) {
	r := rpMake(t, rpCases[0])
	orig, err := os.ReadFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	rec := &rfRecorder{buf: bytes.Clone(orig)}
	f, err := Open(rec, int64(len(orig)), &Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.writes) != 0 {
		t.Fatalf("Open wrote %d times", len(rec.writes))
	}
	if err := f.MakePath("/after-replay"); err != nil {
		t.Fatal(err)
	}
	n, _ := f.JournalReplayed()
	flush := n + 2 // home blocks, the journal superblock, the superblock
	if len(rec.writes) <= flush {
		t.Fatalf("%d writes for a replay of %d blocks and a mkdir", len(rec.writes), n)
	}
	if w := rec.writes[flush-1]; w.off != 1024 || rpNeedsRecoveryBytes(w.data) {
		t.Fatalf("write %d (offset %d) should be the superblock without needs_recovery", flush, w.off)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "crash.img")
	for k := 1; k <= len(rec.writes); k++ {
		b := bytes.Clone(orig)
		for _, w := range rec.writes[:k] {
			copy(b[w.off:], w.data)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if rpNeedsRecovery(t, p) {
			if k >= flush {
				t.Fatalf("needs_recovery still set after write %d of %d", k, len(rec.writes))
			}
			rpFsckReplay(t, p)
		}
		code, out := rpFsckN(t, p)
		if m := rfForbidden.FindString(out); m != "" || k < flush && code != 0 {
			t.Errorf("a crash after write %d of %d (offset %#x) leaves e2fsck exit %d:\n%s", k, len(rec.writes), rec.writes[k-1].off, code, out)
		}
	}
	if code, out := rpFsckN(t, p); code != 0 {
		t.Fatalf("e2fsck -fn after the whole commit: %d\n%s", code, out)
	}
}

// rpNeedsRecoveryBytes reports needs_recovery in a raw superblock.
func rpNeedsRecoveryBytes(sb []byte) bool {
	return len(sb) >= 0x64 && sb[0x60]&0x04 != 0
}

// TestReplayOverlayMatchesFlush: every byte of the image read through a
// replay held in memory (in ranges of random offset and length, across
// block boundaries and the superblocks) equals the image once the replay
// is written home.
func TestReplayOverlayMatchesFlush(t *testing.T) {
	for _, c := range []rpCase{rpCases[0], rpCases[2]} {
		t.Run(c.name, func(t *testing.T) {
			r := rpMake(t, c)
			orig, err := os.ReadFile(r.path)
			if err != nil {
				t.Fatal(err)
			}
			rec := &rfRecorder{buf: bytes.Clone(orig)}
			f, err := Open(rec, int64(len(orig)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.flushPending(rec); err != nil {
				t.Fatal(err)
			}
			want := rec.buf // the image with the replay written home
			view, err := Open(&rfRecorder{buf: bytes.Clone(orig)}, int64(len(orig)), nil)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewSource(int64(len(c.name))))
			for off := int64(0); off < int64(len(orig)); {
				n := min(int64(1+rng.Intn(3*r.bs)), int64(len(orig))-off)
				got := make([]byte, n)
				if err := view.readAt(got, off, "test range", 0); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want[off:off+n]) {
					t.Fatalf("%d bytes at %#x read through the replay differ from the replay written home", n, off)
				}
				off += n
			}
			if bytes.Equal(want, orig) {
				t.Fatal("the replay wrote nothing: the test proves nothing")
			}
		})
	}
}
