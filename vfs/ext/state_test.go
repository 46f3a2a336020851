package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
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
func stCheck(t *testing.T, img string, opts Options) ([]string, error) {
	t.Helper()
	var warns []string
	opts.Warn = func(m string) { warns = append(warns, m) }
	err := rpOpenRW(img, opts, func(f *FS) error { return f.checkWritableState() })
	if err != nil && strings.HasPrefix(err.Error(), "PANIC") {
		t.Fatal(err)
	}
	return warns, err
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
	m := b[int(sb.MMPBlock)*bs:][:layout.MMPSize]
	binary.LittleEndian.PutUint32(m[4:], seq)
	clear(m[layout.MMPNodeOff : layout.MMPNodeOff+layout.MMPNodeLen])
	copy(m[layout.MMPNodeOff:], "busy-node")
	seed := crc32c(^uint32(0), sb.UUID[:])
	if sb.FeatureIncompat.Has(layout.IncompatCsumSeed) {
		seed = sb.ChecksumSeed
	}
	sum := crc32c(seed, m[:layout.MMPChecksumOff])
	if badSum {
		sum++
	}
	binary.LittleEndian.PutUint32(m[layout.MMPChecksumOff:], sum)
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWritableStateMMP(t *testing.T) {
	img := stMkfs(t, "-O", "mmp")
	// (debugfs -w would wait out the MMP interval: the block is patched
	// directly instead.)
	if _, err := stCheck(t, img, Options{}); err != nil {
		t.Fatalf("clean MMP refused: %v", err)
	}
	for _, seq := range []uint32{0x1234, layout.MMPSeqFsck} {
		stSetMMP(t, img, seq, false)
		_, err := stCheck(t, img, Options{})
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "busy-node") {
			t.Errorf("MMP seq %#x: got %v, want ErrInUse naming the node", seq, err)
		}
		warns, err := stCheck(t, img, Options{Force: true})
		if err != nil || len(warns) == 0 {
			t.Errorf("MMP seq %#x with Force: got %v, warnings %q", seq, err, warns)
		}
	}
	stSetMMP(t, img, layout.MMPSeqClean, true)
	if _, err := stCheck(t, img, Options{Force: true}); !errors.Is(err, ErrChecksum) {
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
		if _, err := stCheck(t, img, Options{}); !errors.Is(err, ErrUnclean) {
			t.Errorf("state %s: got %v, want ErrUnclean", c.state, err)
		}
		if now, _ := os.ReadFile(img); string(now) != string(orig) {
			t.Errorf("state %s: the refusal wrote to the image", c.state)
		}
		if warns, err := stCheck(t, img, Options{Force: true}); err != nil || len(warns) == 0 {
			t.Errorf("state %s with Force: got %v, warnings %q", c.state, err, warns)
		}
	}
	if _, err := stCheck(t, stMkfs(t), Options{}); err != nil {
		t.Errorf("fresh filesystem refused: %v", err)
	}
}

// TestWritableStateReplays: a writable open replays a dirty journal in
// memory: reads see the replayed blocks at once, the image is unchanged
// until the first commit, which writes the replay home before its own
// blocks; then the filesystem is e2fsck-clean.
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
	orig, _ := os.ReadFile(img)

	var warns []string
	f, fh := stOpenRW(t, img, Options{Writable: true, Warn: func(m string) { warns = append(warns, m) }})
	defer fh.Close()
	if f.sbCopy().FeatureIncompat.Has(layout.IncompatRecover) {
		t.Errorf("needs_recovery still set in the replayed view")
	}
	if n, ok := f.JournalReplayed(); !ok || n != 1 {
		t.Errorf("JournalReplayed() = %d, %v; want 1, true", n, ok)
	}
	if got, err := f.ReadFile("/hello"); err != nil || string(got) != string(fresh) {
		t.Errorf("after the replay in memory /hello reads %.12q, %v", got, err)
	}
	if info := f.Info(); !info.JournalReplayPending || !info.Journal.NeedsRecovery {
		t.Errorf("Info before the first commit: pending %v, needs recovery %v; want both", info.JournalReplayPending, info.Journal.NeedsRecovery)
	}
	if now, _ := os.ReadFile(img); !bytes.Equal(now, orig) {
		t.Fatal("the replay was written before any commit")
	}
	if err := f.ReplaceFile("/added", []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if info := f.Info(); info.JournalReplayPending || info.Journal.NeedsRecovery {
		t.Errorf("Info after the commit: pending %v, needs recovery %v; want neither", info.JournalReplayPending, info.Journal.NeedsRecovery)
	}
	if len(warns) == 0 || !strings.Contains(strings.Join(warns, "\n"), "replayed") {
		t.Errorf("no warning tells of the replay: %q", warns)
	}
	if code, out := rpFsckN(t, img); code != 0 {
		t.Fatalf("e2fsck -fn after the replay and a write: %d\n%s", code, out)
	}
	if got := testtool.Run(t, "debugfs", "-R", "cat /hello", img); !bytes.Contains(got, fresh) {
		t.Errorf("on disk /hello is not the replayed content: %.40q", got)
	}
}

// stOpenRW opens img read-write with opts and fails the test on an error.
func stOpenRW(t *testing.T, img string, opts Options) (*FS, *os.File) {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := fh.Stat()
	f, err := Open(fh, st.Size(), &opts)
	if err != nil {
		fh.Close()
		t.Fatalf("open: %v", err)
	}
	return f, fh
}

// TestWritableStateOrphansForce: orphans are refused, Force writes anyway.
func TestWritableStateOrphansForce(t *testing.T) {
	a, _ := rpGunzip(t, "f_orphan", t.TempDir())
	if _, err := stCheck(t, a, Options{}); !errors.Is(err, ErrOrphans) {
		t.Fatalf("got %v, want ErrOrphans", err)
	}
	if warns, err := stCheck(t, a, Options{Force: true}); err != nil || len(warns) == 0 {
		t.Fatalf("with Force: %v, warnings %q", err, warns)
	}
}

// TestReplayReadOnlyImage: a read-only open over a reader that cannot
// write replays the journal in memory: reads see every replayed block,
// the revoked and uncommitted ones stay as they are, the journal reads as
// empty, Info tells the replay is pending, and the image is unchanged.
func TestReplayReadOnlyImage(t *testing.T) {
	r := rpMake(t, rpCases[0])
	before, _ := os.ReadFile(r.path)
	fh, err := os.Open(r.path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	var warns []string
	f, err := Open(rpReaderOnly{fh}, st.Size(), &Options{Warn: func(m string) { warns = append(warns, m) }})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, r.bs)
	for home, want := range r.want {
		if err := f.readAt(buf, int64(home)*int64(r.bs), "block", home); err != nil || !bytes.Equal(buf, want) {
			t.Errorf("block %d does not read as its replayed copy (%v)", home, err)
		}
	}
	for _, u := range r.untouch {
		if err := f.readAt(buf, int64(u)*int64(r.bs), "block", u); err != nil || !bytes.Equal(buf, r.orig[int(u)*r.bs:int(u+1)*r.bs]) {
			t.Errorf("block %d (revoked or uncommitted) reads changed (%v)", u, err)
		}
	}
	if j, err := f.Journal(); err != nil || j.Start != 0 {
		t.Errorf("journal after the replay in memory: %+v, %v; want an empty log", j, err)
	}
	if info := f.Info(); !info.JournalReplayPending || !info.Journal.NeedsRecovery || !slices.Contains(info.Incompat, "needs_recovery") {
		t.Errorf("Info: pending %v, needs recovery %v, incompat %v", info.JournalReplayPending, info.Journal.NeedsRecovery, info.Incompat)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "in memory") {
		t.Errorf("warnings %q, want one telling of the replay in memory", warns)
	}
	if now, _ := os.ReadFile(r.path); !bytes.Equal(now, before) {
		t.Error("a read-only open changed the image")
	}
	if err := f.ReplaceFile("/x", nil); !errors.Is(err, vfs.ErrReadOnly) {
		t.Errorf("write through a read-only open: %v, want ErrReadOnly", err)
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
	}{{"errno", 0x20, 0xFFFFFFFB}, {"stale-log", layout.JournalStartOffset, 1}} {
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
		if _, err := stCheck(t, img, Options{}); !errors.Is(err, ErrUnclean) {
			t.Errorf("%s: got %v, want ErrUnclean", c.name, err)
		}
		if warns, err := stCheck(t, img, Options{Force: true}); err != nil || len(warns) == 0 {
			t.Errorf("%s with Force: %v, warnings %q", c.name, err, warns)
		}
	}
}

// TestWritableStateOrphanPresentCleared: orphan_present over an empty
// orphan file (left by a crash) does not refuse the write: the flag is
// cleared, in memory until the first commit, and e2fsck -fn is then clean.
func TestWritableStateOrphanPresentCleared(t *testing.T) {
	img := stMkfs(t, "-O", "orphan_file")
	testtool.Run(t, "debugfs", "-w", "-R", "feature orphan_present", img)
	if code, _ := rpFsckN(t, img); code == 0 {
		t.Fatal("e2fsck -fn does not flag orphan_present: the test proves nothing")
	}
	orig, _ := os.ReadFile(img)
	f, fh := stOpenRW(t, img, Options{Writable: true})
	defer fh.Close()
	if f.sbCopy().FeatureROCompat.Has(layout.ROCompatOrphanPresent) {
		t.Error("orphan_present still set in the view")
	}
	if now, _ := os.ReadFile(img); !bytes.Equal(now, orig) {
		t.Fatal("orphan_present was cleared on disk before any commit")
	}
	if err := f.MakePath("/d"); err != nil {
		t.Fatal(err)
	}
	if code, out := rpFsckN(t, img); code != 0 {
		t.Fatalf("e2fsck -fn after clearing orphan_present: %d\n%s", code, out)
	}
}

// TestWritableOpenReplays: Open replays a journal needing recovery in
// memory, read-only or writable; a writable FS writes the replay home at
// its first commit, and the result matches e2fsck's replay block for block
// outside the superblock and the blocks the write itself changed.
func TestWritableOpenReplays(t *testing.T) {
	r := rpMake(t, rpCases[1])
	before, _ := os.ReadFile(r.path)
	ro := mustOpen(t, r.path)
	if n, ok := ro.JournalReplayed(); !ok || n < len(r.want) || !ro.Info().JournalReplayPending {
		t.Errorf("read-only open: replayed %d, %v; pending %v", n, ok, ro.Info().JournalReplayPending)
	}
	f, fh := stOpenRW(t, r.path, Options{Writable: true})
	defer fh.Close()
	if now, _ := os.ReadFile(r.path); !bytes.Equal(now, before) {
		t.Fatal("opening wrote to the image")
	}
	if err := f.MakePath("/newdir"); err != nil {
		t.Fatal(err)
	}
	info := f.Info()
	if !info.JournalWasReplayed || info.JournalReplayed < len(r.want) || info.Journal.NeedsRecovery || info.JournalReplayPending {
		t.Errorf("Info after the first commit: replayed %v (%d blocks), needs recovery %v, pending %v",
			info.JournalWasReplayed, info.JournalReplayed, info.Journal.NeedsRecovery, info.JournalReplayPending)
	}
	if code, out := rpFsckN(t, r.path); code != 0 {
		t.Fatalf("e2fsck -fn: %d\n%s", code, out)
	}
	ab, _ := os.ReadFile(r.path)
	for home, want := range r.want {
		if !bytes.Equal(ab[int(home)*r.bs:int(home+1)*r.bs], want) {
			t.Errorf("block %d: the replay did not land", home)
		}
	}
}

// stLogSuper logs img's superblock block in a committed journal
// transaction, as the kernel does, after edit changed it: img then needs
// recovery, and only the replay brings the edit.
func stLogSuper(t *testing.T, img string, edit func(sb *layout.Superblock)) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := layout.DecodeSuperblock(b[1024:])
	bs := 1024 << sb.LogBlockSize
	sbBlock := 0
	if bs == 1024 {
		sbBlock = 1
	}
	edit(sb)
	sb.FeatureIncompat |= layout.IncompatRecover
	blk := append([]byte(nil), b[sbBlock*bs:(sbBlock+1)*bs]...)
	at := 1024 - sbBlock*1024
	if err := sb.Encode(blk[at:]); err != nil {
		t.Fatal(err)
	}
	rpSetRecover(blk[at:]) // the checksum
	dir := t.TempDir()
	data := filepath.Join(dir, "sb")
	os.WriteFile(data, blk, 0o644)
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte(fmt.Sprintf("jo -c\njw -b %d %s\njc\n", sbBlock, data)), 0o644)
	testtool.Run(t, "debugfs", "-w", "-f", script, img)
	if !rpNeedsRecovery(t, img) {
		t.Fatal("debugfs left no needs_recovery flag")
	}
}

// TestReplayRecountsFreeCounts (kernel audit 01): the kernel leaves the
// superblock's free counts stale on disk and recounts them from the group
// descriptors after a recovery. After our replay and an injection,
// e2fsck -fn must find no "count wrong": the counts were recounted before
// the injection's own deltas applied.
func TestReplayRecountsFreeCounts(t *testing.T) {
	img := stMkfs(t, "-b", "1024")
	stLogSuper(t, img, func(sb *layout.Superblock) {
		sb.SetFreeBlocksCount(sb.FreeBlocksCount() + 100)
		sb.FreeInodesCount += 10
	})
	f, fh := stOpenRW(t, img, Options{Writable: true})
	defer fh.Close()
	if err := f.ReplaceFile("/injected", bytes.Repeat([]byte("x"), 5000)); err != nil {
		t.Fatal(err)
	}
	code, out := rpFsckN(t, img)
	if strings.Contains(out, "count wrong") || code != 0 {
		t.Fatalf("e2fsck -fn after the replay and a write: exit %d\n%s", code, out)
	}
	ro := mustOpen(t, img)
	var blocks, inodes uint64
	for g := uint32(0); g < ro.geo.groups; g++ {
		d, err := ro.groupDesc(g)
		if err != nil {
			t.Fatal(err)
		}
		blocks, inodes = blocks+uint64(d.FreeBlocksCount()), inodes+uint64(d.FreeInodesCount())
	}
	if sb := ro.sbCopy(); sb.FreeBlocksCount() != blocks || uint64(sb.FreeInodesCount) != inodes {
		t.Errorf("superblock counts %d blocks, %d inodes free; the descriptors %d and %d", sb.FreeBlocksCount(), sb.FreeInodesCount, blocks, inodes)
	}
}

// TestRefusalAfterReplayWritesNothing (kernel audit 02): a journal whose
// replay brings orphan inodes (the superblock's s_last_orphan, logged as
// the kernel logs it) is refused, by a writable open and by a dry run's
// checking open alike, and the image stays byte for byte as it was: the
// replay is decided in memory, the refusal on the replayed view.
func TestRefusalAfterReplayWritesNothing(t *testing.T) {
	img := stMkfs(t)
	stLogSuper(t, img, func(sb *layout.Superblock) { sb.LastOrphan = 11 })
	orig, _ := os.ReadFile(img)
	if _, err := stCheckOpen(t, img, Options{Writable: true}); !errors.Is(err, ErrOrphans) {
		t.Errorf("writable open: %v, want ErrOrphans", err)
	}
	if _, err := stCheckOpen(t, img, Options{CheckWritable: true}); !errors.Is(err, ErrOrphans) {
		t.Errorf("checking open: %v, want ErrOrphans", err)
	}
	if now, _ := os.ReadFile(img); !bytes.Equal(now, orig) {
		t.Fatal("a refusal after the replay changed the image")
	}
	warns, err := stCheckOpen(t, img, Options{Writable: true, Force: true})
	if err != nil || !strings.Contains(strings.Join(warns, "\n"), "orphan") {
		t.Errorf("forced writable open: %v, warnings %q", err, warns)
	}
	if now, _ := os.ReadFile(img); !bytes.Equal(now, orig) {
		t.Fatal("a forced open without a write changed the image")
	}
}

// stCheckOpen opens img read-write with opts and returns Open's error and
// its warnings.
func stCheckOpen(t *testing.T, img string, opts Options) ([]string, error) {
	t.Helper()
	var warns []string
	opts.Warn = func(m string) { warns = append(warns, m) }
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	_, err = Open(fh, st.Size(), &opts)
	return warns, err
}

// TestCheckWritableOpen: a dry run's open (CheckWritable) over a reader
// that cannot write accepts what a writable open accepts, a journal
// needing recovery included (replayed in memory), refuses what it refuses,
// and writes nothing.
func TestCheckWritableOpen(t *testing.T) {
	r := rpMake(t, rpCases[2])
	before, _ := os.ReadFile(r.path)
	fh, err := os.Open(r.path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	f, err := Open(rpReaderOnly{fh}, st.Size(), &Options{CheckWritable: true})
	if err != nil {
		t.Fatalf("checking open of a journal needing recovery: %v", err)
	}
	if n, ok := f.JournalReplayed(); !ok || n < len(r.want) {
		t.Errorf("JournalReplayed() = %d, %v", n, ok)
	}
	if err := f.MakePath("/d"); !errors.Is(err, vfs.ErrReadOnly) {
		t.Errorf("write through a checking open: %v, want ErrReadOnly", err)
	}
	if now, _ := os.ReadFile(r.path); !bytes.Equal(now, before) {
		t.Fatal("a checking open changed the image")
	}
	unclean := stMkfs(t)
	testtool.Run(t, "debugfs", "-w", "-R", "ssv state 0", unclean)
	if _, err := stCheckOpen(t, unclean, Options{CheckWritable: true}); !errors.Is(err, ErrUnclean) {
		t.Errorf("checking open of an unclean filesystem: %v, want ErrUnclean", err)
	}
	if _, err := openImage(t, unclean, &Options{}); err != nil {
		t.Errorf("plain read-only open of an unclean filesystem: %v", err)
	}
}
