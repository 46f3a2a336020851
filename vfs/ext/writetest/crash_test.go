package writetest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
)

// recorder is an image in memory that keeps every write in order, so any
// prefix of an operation's writes (a crash in the middle) can be rebuilt.
type recorder struct {
	buf    []byte
	writes []recorded
}

type recorded struct {
	off  int64
	data []byte
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(r.buf)) {
		return 0, fmt.Errorf("read %d bytes at %d outside the %d-byte image", len(p), off, len(r.buf))
	}
	return copy(p, r.buf[off:]), nil
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(r.buf)) {
		return 0, fmt.Errorf("write %d bytes at %d outside the %d-byte image", len(p), off, len(r.buf))
	}
	r.writes = append(r.writes, recorded{off, bytes.Clone(p)})
	return copy(r.buf[off:], p), nil
}

// crashForbidden are what e2fsck must never find after a crash between
// two writes of one operation: blocks claimed twice (cross-linked files)
// or an inode pointing at blocks outside the filesystem or at metadata.
// Leaked blocks and inodes, stale counts, and an entry whose inode the
// bitmap does not yet (create) or no longer (remove) mark in use are the
// states the documented write order allows: e2fsck clears or reclaims
// them without touching any other file.
var crashForbidden = regexp.MustCompile(`(?i)multiply-claimed|shared with|illegal block|bad block|overlaps fs metadata`)

// TestCrashOrder replays every prefix of each operation's writes on the
// image as it was before the operation, as if the machine stopped between
// two writes, and runs e2fsck -fn on each: it may find leaked space or
// counts to fix, never cross-linked blocks. Every operation's writes,
// replayed in full, must give the image the engine left.
func TestCrashOrder(t *testing.T) {
	for _, name := range []string{"ext4", "ext4-nojournal", "ext2-1k", "ext4-bigalloc"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newChecker(t)
			spec := specByName(t, name)
			spec.mb = 8
			img := mkfs(t, spec, sharedGuest(t))
			b, err := os.ReadFile(img)
			must(t, err)
			rec := &recorder{buf: b}
			fsys, err := ext.Open(rec, int64(len(b)), &ext.Options{Writable: true})
			if err != nil {
				c.Errorf("open: %v", err)
				return
			}
			bs := fsys.BlockSize()
			ops := []struct {
				name string
				fn   func() error
			}{
				{"MakePath /srv/new", func() error { return fsys.MakePath("/srv/new") }},
				{"ReplaceFile /srv/new/f (3 blocks)", func() error { return fsys.ReplaceFile("/srv/new/f", pattern(3*bs+9, "f")) }},
				{"AppendFile /srv/new/f (+14 blocks)", func() error { return fsys.AppendFile("/srv/new/f", pattern(14*bs, "g")) }},
				{"ReplaceFile /etc/passwd (shrink)", func() error { return fsys.ReplaceFile("/etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n")) }},
				{"Symlink /srv/link", func() error {
					return any(fsys).(vfs.Symlinker).Symlink(slowTarget, "/srv/link")
				}},
				{"Remove /srv/new/f", func() error { return any(fsys).(vfs.Remover).Remove("/srv/new/f") }},
			}
			for _, op := range ops {
				before := bytes.Clone(rec.buf)
				rec.writes = nil
				if err := op.fn(); err != nil {
					c.Errorf("%s: %v", op.name, err)
					return
				}
				crashPrefixes(c, op.name, before, rec.writes)
				if !bytes.Equal(applyWrites(before, rec.writes), rec.buf) {
					c.Errorf("%s: replaying the recorded writes does not give the image", op.name)
				}
			}
		})
	}
}

func applyWrites(before []byte, ws []recorded) []byte {
	b := bytes.Clone(before)
	for _, w := range ws {
		copy(b[w.off:], w.data)
	}
	return b
}

// crashPrefixes checks the image after each strict prefix of ws.
func crashPrefixes(c *checker, op string, before []byte, ws []recorded) {
	t := c.t
	p := filepath.Join(t.TempDir(), "crash.img")
	for k := 1; k < len(ws); k++ {
		must(t, os.WriteFile(p, applyWrites(before, ws[:k]), 0o644))
		out, _ := fsck(t, p)
		if m := crashForbidden.FindString(out); m != "" {
			c.Errorf("%s: a crash after write %d of %d (block %d) leaves %q:\n%s", op, k, len(ws), ws[k-1].off/1024, m, out)
		}
	}
}
