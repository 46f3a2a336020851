package ext

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
)

// rpCorpusImages lists the corpus images whose superblock needs journal
// recovery or has orphans, or that use MMP, from index.tsv.
func rpCorpusImages(t *testing.T) []string {
	t.Helper()
	fh, err := os.Open(filepath.Join(testtool.CorpusDir(t, "e2fsprogs"), "index.tsv"))
	if err != nil {
		t.Fatalf("corpus index: %v", err)
	}
	defer fh.Close()
	var names []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) < 27 || col[0] == "name" {
			continue
		}
		if col[26] == "yes" || col[25] != "" || strings.Contains(col[2], "orphan") || strings.HasPrefix(col[0], "m_mmp") ||
			strings.HasPrefix(col[0], "f_jnl") {
			names = append(names, col[0])
		}
	}
	return names
}

// rpGunzip writes the named corpus image into dir and returns its path and
// bytes.
func rpGunzip(t *testing.T, name, dir string) (string, []byte) {
	t.Helper()
	b := testtool.CorpusImage(t, "e2fsprogs", name)
	p := filepath.Join(dir, name+".img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// rpGuard runs fn, turning a panic into an error.
func rpGuard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("PANIC: %v", r)
		}
	}()
	return fn()
}

// rpOpenRW opens img read-write (AllowDirtyJournal) and runs fn on it.
func rpOpenRW(img string, opts Options, fn func(*FS) error) error {
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	opts.AllowDirtyJournal = true
	return rpGuard(func() error {
		f, err := Open(fh, st.Size(), &opts)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		return fn(f)
	})
}

// TestReplayCorpus replays every corpus journal that needs recovery: ours
// must either give a filesystem e2fsck -fn finds clean wherever e2fsck's
// own replay does (with the same blocks), or refuse with ErrNeedsRecovery
// and leave the image byte-for-byte unchanged. Never a panic.
func TestReplayCorpus(t *testing.T) {
	testtool.Need(t, "e2fsck")
	for _, name := range rpCorpusImages(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a, orig := rpGunzip(t, name, dir)
			var n int
			err := rpOpenRW(a, Options{}, func(f *FS) error {
				var err error
				n, err = rpReplay(f)
				return err
			})
			switch {
			case errors.Is(err, errNoRecovery):
				return
			case err != nil && strings.HasPrefix(err.Error(), "PANIC"):
				t.Fatalf("%v", err)
			case err != nil:
				rpRefused(t, name, a, orig, err)
				return
			}
			rpAgainstE2fsck(t, name, a, orig, n)
		})
	}
}

var errNoRecovery = errors.New("no recovery needed")

// rpReplay writes f's journal replay home, as a first commit would: the
// open replayed it in memory already, or left the journal as it was when
// it could not (AllowDirtyJournal), and then the replay is tried again for
// its error.
func rpReplay(f *FS) (int, error) {
	n, ok := f.JournalReplayed()
	if !ok {
		if !f.journalStatus().NeedsRecovery {
			return 0, errNoRecovery
		}
		var err error
		if n, err = f.replayInMemory(); err != nil {
			return 0, err
		}
	}
	w, ok := f.r.(io.WriterAt)
	if !ok {
		return n, fmt.Errorf("writing the replay home: %w", vfs.ErrReadOnly)
	}
	return n, f.flushPending(w)
}

// rpRefused checks a refusal: the right class and nothing written.
func rpRefused(t *testing.T, name, img string, orig []byte, err error) {
	t.Helper()
	if !errors.Is(err, ErrNeedsRecovery) && !strings.HasPrefix(err.Error(), "open:") {
		t.Errorf("refusal does not wrap ErrNeedsRecovery: %v", err)
	}
	now, _ := os.ReadFile(img)
	if !bytes.Equal(now, orig) {
		t.Errorf("refused (%v) but the image changed", err)
	}
	t.Logf("%-28s refused: %v", name, err)
}

// rpAgainstE2fsck compares our replay of img with e2fsck's on a fresh
// copy of orig.
func rpAgainstE2fsck(t *testing.T, name, img string, orig []byte, n int) {
	t.Helper()
	b := filepath.Join(filepath.Dir(img), "e2fsck.img")
	if err := os.WriteFile(b, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	rpFsckReplay(t, b)
	codeA, outA := rpFsckN(t, img)
	codeB, _ := rpFsckN(t, b)
	if codeB == 0 && codeA != 0 {
		t.Errorf("e2fsck -fn is clean after e2fsck's replay but exits %d after ours:\n%s", codeA, outA)
	}
	// e2fsck -E journal_only also clears orphans; debugfs journal_run only
	// replays: compare blocks with that.
	c := filepath.Join(filepath.Dir(img), "debugfs.img")
	if err := os.WriteFile(c, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	testtool.Run(t, "debugfs", "-w", "-R", "journal_run", c)
	ab, _ := os.ReadFile(img)
	bb, _ := os.ReadFile(c)
	bs := rpBlockSize(ab)
	var diff []int
	for i := 0; i+bs <= len(ab) && i+bs <= len(bb); i += bs {
		if !bytes.Equal(ab[i:i+bs], bb[i:i+bs]) {
			diff = append(diff, i/bs)
		}
	}
	t.Logf("%-28s replayed %d blocks; e2fsck -fn: ours %d, after e2fsck's replay %d; blocks differing from debugfs journal_run: %v", name, n, codeA, codeB, diff)
	sbBlock := 0
	if bs == 1024 {
		sbBlock = 1
	}
	for _, d := range diff {
		if d != sbBlock {
			t.Errorf("block %d differs from debugfs journal_run's replay", d)
		}
	}
}

// rpBlockSize reads the block size from a raw superblock.
func rpBlockSize(img []byte) int {
	if len(img) < 2048 {
		return 1024
	}
	log := uint(img[1024+0x18]) | uint(img[1024+0x19])<<8
	if log > 6 {
		return 1024
	}
	return 1024 << log
}

// TestWritableStateCorpus runs checkWritableState (without Force) on the
// same images: it must end in a clear, classified outcome, never a panic.
func TestWritableStateCorpus(t *testing.T) {
	for _, name := range rpCorpusImages(t) {
		t.Run(name, func(t *testing.T) {
			a, _ := rpGunzip(t, name, t.TempDir())
			err := rpOpenRW(a, Options{}, func(f *FS) error { return f.checkWritableState() })
			if err != nil && strings.HasPrefix(err.Error(), "PANIC") {
				t.Fatal(err)
			}
			t.Logf("%-28s %s", name, rpClass(err))
			if want, ok := rpWantState[name]; ok && !(want == nil && err == nil || want != nil && errors.Is(err, want)) {
				t.Errorf("checkWritableState = %v, want %v", err, want)
			}
		})
	}
}

// rpWantState pins the outcome for images whose state is known.
var rpWantState = map[string]error{
	"f_orphan":                ErrOrphans,
	"f_badorphan":             ErrOrphans,
	"f_clear_orphan_file":     ErrOrphans,
	"f_ext_journal":           ErrNeedsRecovery,
	"j_corrupt_commit_csum":   ErrNeedsRecovery,
	"j_corrupt_revoke_rcount": ErrNeedsRecovery,
	"j_recover_fast_commit":   ErrNeedsRecovery,
	"j_recover_csum3_64bit":   nil,
	"f_jnl_64bit":             nil,
	"m_mmp_bad_csum":          ErrChecksum,
	"m_mmp_bad_magic":         vfs.ErrCorrupt,
}

// rpClass names the class of a checkWritableState outcome.
func rpClass(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{{nil, "writable"}, {ErrInUse, "in use (MMP)"}, {ErrUnclean, "unclean"}, {ErrOrphans, "orphans"},
		{ErrNeedsRecovery, "needs recovery"}, {ErrChecksum, "checksum"}, {ErrUnsupportedFeature, "unsupported"},
		{vfs.ErrCorrupt, "corrupt"}} {
		if c.err == nil && err == nil || c.err != nil && errors.Is(err, c.err) {
			return c.name + ": " + fmt.Sprint(err)
		}
	}
	return "other: " + err.Error()
}
