package ext

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// rpCase is one filesystem shape whose journal debugfs fills.
type rpCase struct {
	name string
	mkfs []string // mkfs command and arguments, without the image
	size string
	jo   string // debugfs journal_open arguments
	// compat: debugfs writes the old COMPAT_CHECKSUM journal, whose
	// revoke-only transactions it checksums differently from jbd2 (e2fsck
	// aborts them too): leave the revoke transaction out.
	compat bool
}

var rpCases = []rpCase{
	{"ext4-1k-csum3-64bit", []string{"mkfs.ext4", "-b", "1024", "-O", "metadata_csum,64bit", "-J", "size=1"}, "8M", "-c", false},
	{"ext4-4k-csum3-32bit", []string{"mkfs.ext4", "-b", "4096", "-O", "metadata_csum,^64bit", "-J", "size=4"}, "32M", "-c -v 3", false},
	{"ext4-4k-csum2-64bit", []string{"mkfs.ext4", "-b", "4096", "-O", "64bit", "-J", "size=4"}, "32M", "-c -v 2", false},
	{"ext4-1k-compat-csum", []string{"mkfs.ext4", "-b", "1024", "-O", "^64bit,^metadata_csum", "-J", "size=1"}, "8M", "-c -v 2", true},
	{"ext3-1k-plain", []string{"mkfs.ext3", "-b", "1024", "-I", "128", "-J", "size=1"}, "8M", "", false},
	{"ext3-4k-plain", []string{"mkfs.ext3", "-b", "4096", "-J", "size=4"}, "32M", "", false},
	{"ext4-1k-bigalloc-csum3", []string{"mkfs.ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384", "-J", "size=1"}, "32M", "-c", false},
	{"ext4-64k-csum3", []string{"mkfs.ext4", "-b", "65536", "-J", "size=64"}, "160M", "-c", false},
	{"ext4-4k-plain-64bit", []string{"mkfs.ext4", "-b", "4096", "-O", "64bit,^metadata_csum", "-J", "size=4"}, "32M", "", false},
}

// rpImage is an image whose journal holds transactions, and what they
// should do when replayed.
type rpImage struct {
	path    string
	bs      int
	orig    []byte            // the image before the transactions
	want    map[uint64][]byte // home block -> content after replay
	untouch []uint64          // blocks replay must leave alone (revoked, uncommitted)
	sbBlock uint64
}

// rpFreeBlocks asks debugfs for n free blocks from goal.
func rpFreeBlocks(t *testing.T, img string, n int, goal uint64) []uint64 {
	t.Helper()
	out := testtool.Run(t, "debugfs", "-R", fmt.Sprintf("ffb %d %d", n, goal), img)
	_, list, ok := strings.Cut(string(out), "Free blocks found:")
	if !ok {
		t.Fatalf("debugfs ffb: %s", out)
	}
	var bl []uint64
	for _, w := range strings.Fields(list) {
		v, err := strconv.ParseUint(w, 10, 64)
		if err != nil {
			t.Fatalf("debugfs ffb: %q in %s", w, out)
		}
		bl = append(bl, v)
	}
	if len(bl) != n {
		t.Fatalf("debugfs ffb found %d blocks, want %d", len(bl), n)
	}
	return bl
}

// rpMake builds c's image: four transactions (one logs a block starting
// with the jbd2 magic, one revokes a block logged earlier, one rewrites a
// block and the superblock's own block, the last is left uncommitted).
func rpMake(t *testing.T, c rpCase) *rpImage {
	t.Helper()
	testtool.Need(t, "mkfs.ext4", "debugfs", "e2fsck")
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	testtool.Run(t, c.mkfs[0], append(append([]string{"-q", "-F"}, c.mkfs[1:]...), img, c.size)...)
	orig, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bs := 1024
	for i, a := range c.mkfs[:len(c.mkfs)-1] {
		if a == "-b" {
			bs, _ = strconv.Atoi(c.mkfs[i+1])
		}
	}
	r := &rpImage{path: img, bs: bs, orig: orig, want: map[uint64][]byte{}, sbBlock: 1}
	if bs != 1024 {
		r.sbBlock = 0
	}
	var fb []uint64
	if strings.Contains(strings.Join(c.mkfs, " "), "bigalloc") {
		// debugfs ffb finds one block per call there: take the free
		// cluster's first six blocks.
		first := rpFreeBlocks(t, img, 1, uint64(len(orig)/bs/2))[0]
		for i := uint64(0); i < 6; i++ {
			fb = append(fb, first+i)
		}
	} else {
		fb = rpFreeBlocks(t, img, 6, uint64(len(orig)/bs/2))
	}
	rng := rand.New(rand.NewSource(int64(len(c.name))))
	blk := func() []byte { b := make([]byte, bs); rng.Read(b); return b }
	esc := blk()
	binary.BigEndian.PutUint32(esc, layout.JournalMagic)
	sb := append([]byte(nil), orig[int(r.sbBlock)*bs:int(r.sbBlock+1)*bs]...)
	rpSetRecover(sb[1024-int(r.sbBlock)*1024:]) // as the kernel logs it: mounted, needs_recovery set
	txs := []struct {
		blocks []uint64
		data   [][]byte
		revoke []uint64
		flags  string
	}{
		{[]uint64{fb[0], fb[1], fb[2]}, [][]byte{blk(), esc, blk()}, nil, ""},
		{nil, nil, []uint64{fb[2]}, ""},
		{[]uint64{fb[3], fb[0], r.sbBlock}, [][]byte{blk(), blk(), sb}, nil, ""},
		{[]uint64{fb[4], fb[5]}, [][]byte{blk(), blk()}, nil, "-c"},
	}
	r.want[fb[1]] = esc
	r.want[fb[3]] = txs[2].data[0]
	r.want[fb[0]] = txs[2].data[1]
	r.untouch = []uint64{fb[2], fb[4], fb[5]}
	if c.compat {
		r.want[fb[2]], r.untouch = txs[0].data[2], r.untouch[1:]
		txs = append(txs[:1], txs[2:]...)
	}
	script := "jo " + c.jo + "\n"
	for i, tx := range txs {
		cmd := "jw"
		if len(tx.blocks) > 0 {
			f := filepath.Join(dir, fmt.Sprintf("tx%d", i))
			if err := os.WriteFile(f, bytes.Join(tx.data, nil), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd += " -b " + rpJoin(tx.blocks)
			cmd += " " + tx.flags
			if len(tx.revoke) > 0 {
				cmd += " -r " + rpJoin(tx.revoke)
			}
			cmd += " " + f
		} else {
			cmd += " -r " + rpJoin(tx.revoke)
		}
		script += cmd + "\n"
	}
	script += "jc\n"
	sf := filepath.Join(dir, "script")
	os.WriteFile(sf, []byte(script), 0o644)
	testtool.Run(t, "debugfs", "-w", "-f", sf, img)
	return r
}

// rpSetRecover sets needs_recovery in the raw superblock sb and fixes its
// checksum.
func rpSetRecover(sb []byte) {
	binary.LittleEndian.PutUint32(sb[0x60:], binary.LittleEndian.Uint32(sb[0x60:])|uint32(layout.IncompatRecover))
	if binary.LittleEndian.Uint32(sb[0x64:])&uint32(layout.ROCompatMetadataCsum) != 0 {
		binary.LittleEndian.PutUint32(sb[layout.SuperblockChecksumOffset:], crc32c(^uint32(0), sb[:layout.SuperblockChecksumOffset]))
	}
}

func rpJoin(v []uint64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatUint(x, 10)
	}
	return strings.Join(s, ",")
}

// rpCopyFile copies src to a new file in dir.
func rpCopyFile(t *testing.T, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// rpReplayFile opens img read-write and replays its journal with our code.
func rpReplayFile(t *testing.T, img string) (int, error) {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	f, err := Open(fh, st.Size(), &Options{AllowDirtyJournal: true})
	if err != nil {
		return 0, err
	}
	n, err := rpReplay(f)
	if err == nil && f.sbCopy().FeatureIncompat.Has(layout.IncompatRecover) {
		t.Errorf("needs_recovery still set after replay")
	}
	return n, err
}

// rpFsckN runs e2fsck -fn and returns its exit code and output.
func rpFsckN(t *testing.T, img string) (int, string) {
	t.Helper()
	out, code := testtool.Output(t, "e2fsck", "-fn", img)
	return code, string(out)
}

// rpFsckReplay replays img's journal with e2fsck and nothing else.
func rpFsckReplay(t *testing.T, img string) int {
	t.Helper()
	_, code := testtool.Output(t, "e2fsck", "-E", "journal_only", "-y", img)
	return code
}

// TestReplayMatchesE2fsck replays debugfs-written journals (csum v2, v3,
// none; 32- and 64-bit; 1k and 4k blocks) with our code and with e2fsck
// and requires the same home blocks, an empty journal and a clean fsck.
func TestReplayMatchesE2fsck(t *testing.T) {
	for _, c := range rpCases {
		t.Run(c.name, func(t *testing.T) {
			r := rpMake(t, c)
			if !rpNeedsRecovery(t, r.path) {
				t.Fatal("debugfs left no needs_recovery flag")
			}
			dir := t.TempDir()
			a, b := rpCopyFile(t, r.path, dir, "ours.img"), rpCopyFile(t, r.path, dir, "e2fsck.img")
			n, err := rpReplayFile(t, a)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if code := rpFsckReplay(t, b); code != 0 {
				t.Fatalf("e2fsck journal replay exit %d", code)
			}
			if code, out := rpFsckN(t, a); code != 0 {
				t.Fatalf("e2fsck -fn after our replay: exit %d\n%s", code, out)
			}
			rpCompare(t, r, a, b, n)
		})
	}
}

func rpNeedsRecovery(t *testing.T, img string) bool {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[1024+0x60:])&uint32(layout.IncompatRecover) != 0
}

// rpCompare checks our replay (a) against e2fsck's (b): every block the
// same except the superblock's, the planned contents home, the revoked
// and uncommitted blocks untouched, and the journal superblocks alike.
func rpCompare(t *testing.T, r *rpImage, a, b string, n int) {
	t.Helper()
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	bs := r.bs
	var diff []int
	for i := 0; i < len(ab)/bs; i++ {
		if !bytes.Equal(ab[i*bs:(i+1)*bs], bb[i*bs:(i+1)*bs]) {
			diff = append(diff, i)
		}
	}
	for _, d := range diff {
		if uint64(d) != r.sbBlock {
			t.Errorf("block %d differs between our replay and e2fsck's (all differing: %v)", d, diff)
		}
	}
	for home, want := range r.want {
		if !bytes.Equal(ab[int(home)*bs:int(home+1)*bs], want) {
			t.Errorf("block %d: replay did not write the newest logged copy", home)
		}
	}
	for _, u := range r.untouch {
		if !bytes.Equal(ab[int(u)*bs:int(u+1)*bs], r.orig[int(u)*bs:int(u+1)*bs]) {
			t.Errorf("block %d (revoked or uncommitted) was written", u)
		}
	}
	if n < len(r.want) {
		t.Errorf("replayed %d blocks, want at least %d", n, len(r.want))
	}
	rpSuperFields(t, ab, bb)
}

// rpSuperFields compares what replay must agree on in the superblocks:
// features (RECOVER clear) and state, plus the journal's start and
// sequence.
func rpSuperFields(t *testing.T, ab, bb []byte) {
	t.Helper()
	sa, err := layout.DecodeSuperblock(ab[1024:])
	if err != nil {
		t.Fatal(err)
	}
	sbb, _ := layout.DecodeSuperblock(bb[1024:])
	if sa.FeatureIncompat != sbb.FeatureIncompat || sa.FeatureCompat != sbb.FeatureCompat ||
		sa.FeatureROCompat != sbb.FeatureROCompat || sa.State != sbb.State {
		t.Errorf("superblock: ours features %#x/%#x/%#x state %#x, e2fsck %#x/%#x/%#x state %#x",
			sa.FeatureCompat, sa.FeatureIncompat, sa.FeatureROCompat, sa.State,
			sbb.FeatureCompat, sbb.FeatureIncompat, sbb.FeatureROCompat, sbb.State)
	}
}

// TestReplayIdempotentOpen: after our replay, the filesystem opens
// without AllowDirtyJournal and a second replay has nothing to do.
func TestReplayReopen(t *testing.T) {
	r := rpMake(t, rpCases[0])
	if _, err := rpReplayFile(t, r.path); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(r.path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	f, err := Open(fh, st.Size(), nil)
	if err != nil {
		t.Fatalf("open after replay: %v", err)
	}
	j, err := f.Journal()
	if err != nil {
		t.Fatal(err)
	}
	if j.Start != 0 {
		t.Errorf("journal s_start %d after replay, want 0", j.Start)
	}
	if _, err := f.ReadFile("/"); err == nil {
		t.Log("reading / as a file should fail") // sanity only
	}
	_ = exec.ErrNotFound
}

// TestReplayMultiDescriptor: transactions too big for one descriptor
// block (several descriptors before the commit), overlapping homes, in a
// csum v3 and a plain journal: same result as e2fsck's replay.
func TestReplayMultiDescriptor(t *testing.T) {
	for _, c := range []rpCase{rpCases[0], rpCases[4]} {
		t.Run(c.name, func(t *testing.T) {
			testtool.Need(t, "mkfs.ext4", "debugfs", "e2fsck")
			dir := t.TempDir()
			img := filepath.Join(dir, "fs.img")
			testtool.Run(t, c.mkfs[0], append(append([]string{"-q", "-F"}, c.mkfs[1:]...), img, "32M")...)
			homes := rpFreeBlocks(t, img, 300, 20000)
			rng := rand.New(rand.NewSource(3))
			script := "jo " + c.jo + "\n"
			for i, hs := range [][]uint64{homes[:200], homes[100:]} {
				data := make([]byte, len(hs)*1024)
				rng.Read(data)
				f := filepath.Join(dir, fmt.Sprintf("d%d", i))
				os.WriteFile(f, data, 0o644)
				script += "jw -b " + rpJoin(hs) + " " + f + "\n"
			}
			sf := filepath.Join(dir, "script")
			os.WriteFile(sf, []byte(script+"jc\n"), 0o644)
			testtool.Run(t, "debugfs", "-w", "-f", sf, img)
			a, b := rpCopyFile(t, img, dir, "ours.img"), rpCopyFile(t, img, dir, "e2fsck.img")
			n, err := rpReplayFile(t, a)
			if err != nil || n != 300 {
				t.Fatalf("replayed %d blocks, %v; want 300", n, err)
			}
			rpFsckReplay(t, b)
			if code, out := rpFsckN(t, a); code != 0 {
				t.Fatalf("e2fsck -fn after our replay: %d\n%s", code, out)
			}
			ab, _ := os.ReadFile(a)
			bb, _ := os.ReadFile(b)
			for blk := 0; (blk+1)*1024 <= len(ab); blk++ {
				at := blk * 1024
				if blk != 1 && !bytes.Equal(ab[at:at+1024], bb[at:at+1024]) { // block 1, the superblock, may differ
					t.Fatalf("block %d differs from e2fsck's replay", blk)
				}
			}
		})
	}
}
