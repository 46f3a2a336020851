package ext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/layout"
)

// stMkfs makes a small ext4 image with extra mkfs arguments.
func stMkfs(t *testing.T, args ...string) string {
	t.Helper()
	testtool.Need(t, "mkfs.ext4", "debugfs", "e2fsck")
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", append(append([]string{"-q", "-F"}, args...), img, "16M")...)
	return img
}

// stCheck opens img read-write and runs checkWritableState with opts,
// returning its error and the warnings it gave.
func stCheck(t *testing.T, img string, opts Options) (error, []string) {
	t.Helper()
	var warns []string
	opts.Warn = func(m string) { warns = append(warns, m) }
	err := rpOpenRW(img, opts, func(f *FS) error { return f.checkWritableState() })
	if err != nil && strings.HasPrefix(err.Error(), "PANIC") {
		t.Fatal(err)
	}
	return err, warns
}

// stSetMMP rewrites the MMP block's sequence and node name (and its
// checksum, unless badSum) the way a running mounter or e2fsck would
// leave it.
func stSetMMP(t *testing.T, img string, seq uint32, badSum bool) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := layout.DecodeSuperblock(b[1024:])
	bs := 1024 << sb.LogBlockSize
	m := b[int(sb.MMPBlock)*bs:][:mmpSize]
	binary.LittleEndian.PutUint32(m[4:], seq)
	clear(m[mmpNodeOff : mmpNodeOff+mmpNodeLen])
	copy(m[mmpNodeOff:], "busy-node")
	seed := crc32c(^uint32(0), sb.UUID[:])
	if sb.FeatureIncompat.Has(layout.IncompatCsumSeed) {
		seed = sb.ChecksumSeed
	}
	sum := crc32c(seed, m[:mmpChecksumOff])
	if badSum {
		sum++
	}
	binary.LittleEndian.PutUint32(m[mmpChecksumOff:], sum)
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWritableStateMMP(t *testing.T) {
	img := stMkfs(t, "-O", "mmp")
	// (debugfs -w would wait out the MMP interval: the block is patched
	// directly instead.)
	if err, _ := stCheck(t, img, Options{}); err != nil {
		t.Fatalf("clean MMP refused: %v", err)
	}
	for _, seq := range []uint32{0x1234, mmpSeqFsck} {
		stSetMMP(t, img, seq, false)
		err, _ := stCheck(t, img, Options{})
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "busy-node") {
			t.Errorf("MMP seq %#x: got %v, want ErrInUse naming the node", seq, err)
		}
		err, warns := stCheck(t, img, Options{Force: true})
		if err != nil || len(warns) == 0 {
			t.Errorf("MMP seq %#x with Force: got %v, warnings %q", seq, err, warns)
		}
	}
	stSetMMP(t, img, mmpSeqClean, true)
	if err, _ := stCheck(t, img, Options{Force: true}); !errors.Is(err, ErrChecksum) {
		t.Errorf("bad MMP checksum: got %v, want ErrChecksum even with Force", err)
	}
}

func TestWritableStateUnclean(t *testing.T) {
	for _, c := range []struct {
		state string
	}{{"0"}, {"3"}, {"2"}} {
		img := stMkfs(t)
		testtool.Run(t, "debugfs", "-w", "-R", "ssv state "+c.state, img)
		orig, _ := os.ReadFile(img)
		if err, _ := stCheck(t, img, Options{}); !errors.Is(err, ErrUnclean) {
			t.Errorf("state %s: got %v, want ErrUnclean", c.state, err)
		}
		if now, _ := os.ReadFile(img); string(now) != string(orig) {
			t.Errorf("state %s: the refusal wrote to the image", c.state)
		}
		if err, warns := stCheck(t, img, Options{Force: true}); err != nil || len(warns) == 0 {
			t.Errorf("state %s with Force: got %v, warnings %q", c.state, err, warns)
		}
	}
	if err, _ := stCheck(t, stMkfs(t), Options{}); err != nil {
		t.Errorf("fresh filesystem refused: %v", err)
	}
}

// TestWritableStateReplays: checkWritableState replays a dirty journal,
// after which reads see the replayed blocks, the caches are fresh and the
// filesystem is e2fsck-clean.
func TestWritableStateReplays(t *testing.T) {
	testtool.Need(t, "mkfs.ext4", "debugfs", "e2fsck")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "hello"), []byte(strings.Repeat("old ", 256)), 0o644)
	img := filepath.Join(dir, "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-b", "1024", "-J", "size=1", "-d", src, img, "8M")
	out := testtool.Run(t, "debugfs", "-R", "bmap /hello 0", img)
	fields := strings.Fields(string(out)) // the banner may come first
	blk := fields[len(fields)-1]
	fresh := []byte(strings.Repeat("new ", 256))
	data := filepath.Join(dir, "data")
	os.WriteFile(data, fresh, 0o644)
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("jo -c\njw -b "+blk+" "+data+"\njc\n"), 0o644)
	testtool.Run(t, "debugfs", "-w", "-f", script, img)

	var warns []string
	err := rpOpenRW(img, Options{Warn: func(m string) { warns = append(warns, m) }}, func(f *FS) error {
		if got, _ := f.ReadFile("/hello"); string(got) != strings.Repeat("old ", 256) {
			t.Errorf("before replay /hello reads %.12q", got)
		}
		if err := f.checkWritableState(); err != nil {
			return err
		}
		if _, ok := f.inodes.get(12); ok { // /hello, cached by the read before the replay
			t.Errorf("inode cache not dropped by the replay")
		}
		if f.Superblock().FeatureIncompat.Has(layout.IncompatRecover) {
			t.Errorf("needs_recovery still set")
		}
		if n, ok := f.JournalReplayed(); !ok || n != 1 {
			t.Errorf("JournalReplayed() = %d, %v; want 1, true", n, ok)
		}
		got, err := f.ReadFile("/hello")
		if err != nil || string(got) != string(fresh) {
			t.Errorf("after replay /hello reads %.12q, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) == 0 || !strings.Contains(strings.Join(warns, "\n"), "replayed") {
		t.Errorf("no warning tells of the replay: %q", warns)
	}
	if code, out := rpFsckN(t, img); code != 0 {
		t.Fatalf("e2fsck -fn after replay: %d\n%s", code, out)
	}
}

// TestWritableStateOrphansForce: orphans are refused, Force writes anyway.
func TestWritableStateOrphansForce(t *testing.T) {
	a, _ := rpGunzip(t, "f_orphan", t.TempDir())
	if err, _ := stCheck(t, a, Options{}); !errors.Is(err, ErrOrphans) {
		t.Fatalf("got %v, want ErrOrphans", err)
	}
	if err, warns := stCheck(t, a, Options{Force: true}); err != nil || len(warns) == 0 {
		t.Fatalf("with Force: %v, warnings %q", err, warns)
	}
}

// TestReplayReadOnlyImage: replay over a reader that cannot write is
// refused with vfs.ErrReadOnly.
func TestReplayReadOnlyImage(t *testing.T) {
	r := rpMake(t, rpCases[0])
	fh, err := os.Open(r.path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	f, err := Open(rpReaderOnly{fh}, st.Size(), &Options{AllowDirtyJournal: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.replayJournal(); !errors.Is(err, vfs.ErrReadOnly) {
		t.Fatalf("got %v, want ErrReadOnly", err)
	}
}

type rpReaderOnly struct{ r *os.File }

func (r rpReaderOnly) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }

// TestWritableStateJournalErrno: an aborted journal (s_errno set) or a
// log left without needs_recovery is refused unless Force.
func TestWritableStateJournalErrno(t *testing.T) {
	for _, c := range []struct {
		name string
		off  int
		val  uint32
	}{{"errno", 0x20, 0xFFFFFFFB}, {"stale-log", jsbStartOff, 1}} {
		img := stMkfs(t, "-O", "^metadata_csum")
		out := testtool.Run(t, "debugfs", "-R", "bmap <8> 0", img) // journal block 0
		fields := strings.Fields(string(out))
		var jblk int
		if _, err := fmt.Sscan(fields[len(fields)-1], &jblk); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(img)
		bs := 1024 << binary.LittleEndian.Uint32(b[1024+0x18:])
		binary.BigEndian.PutUint32(b[jblk*bs+c.off:], c.val)
		os.WriteFile(img, b, 0o644)
		if err, _ := stCheck(t, img, Options{}); !errors.Is(err, ErrUnclean) {
			t.Errorf("%s: got %v, want ErrUnclean", c.name, err)
		}
		if err, warns := stCheck(t, img, Options{Force: true}); err != nil || len(warns) == 0 {
			t.Errorf("%s with Force: %v, warnings %q", c.name, err, warns)
		}
	}
}

// TestWritableStateOrphanPresentCleared: orphan_present over an empty
// orphan file (left by a crash) is cleared, and e2fsck -fn is then clean.
func TestWritableStateOrphanPresentCleared(t *testing.T) {
	img := stMkfs(t, "-O", "orphan_file")
	testtool.Run(t, "debugfs", "-w", "-R", "feature orphan_present", img)
	if code, _ := rpFsckN(t, img); code == 0 {
		t.Fatal("e2fsck -fn does not flag orphan_present: the test proves nothing")
	}
	if err, _ := stCheck(t, img, Options{}); err != nil {
		t.Fatal(err)
	}
	if code, out := rpFsckN(t, img); code != 0 {
		t.Fatalf("e2fsck -fn after clearing orphan_present: %d\n%s", code, out)
	}
}

// TestWritableOpenReplays: a writable Open accepts a journal needing
// recovery (no AllowDirtyJournal), the write path's check replays it, and
// Info reports the replay.
func TestWritableOpenReplays(t *testing.T) {
	r := rpMake(t, rpCases[1])
	fh, err := os.OpenFile(r.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	if _, err := Open(fh, st.Size(), nil); !errors.Is(err, ErrNeedsRecovery) {
		t.Fatalf("read-only open of a dirty journal: %v, want ErrNeedsRecovery", err)
	}
	f, err := Open(fh, st.Size(), &Options{Writable: true})
	if err != nil {
		t.Fatalf("writable open: %v", err)
	}
	if err := f.checkWritable(); err != nil {
		t.Fatalf("write check: %v", err)
	}
	info := f.Info()
	if !info.JournalWasReplayed || info.JournalReplayed < len(r.want) || info.Journal.NeedsRecovery {
		t.Errorf("Info after replay: replayed %v (%d blocks), needs recovery %v", info.JournalWasReplayed, info.JournalReplayed, info.Journal.NeedsRecovery)
	}
	if code, out := rpFsckN(t, r.path); code != 0 {
		t.Fatalf("e2fsck -fn: %d\n%s", code, out)
	}
}
