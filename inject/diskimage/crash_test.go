package diskimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext"
)

// crashWrite is one write that reached the disk, or (flush) a flush of it.
type crashWrite struct {
	off   int64
	data  []byte
	flush bool
}

// crashDisk is an in-memory formats.Disk that records every write and
// flush in the order they reach it: the stream a crash cuts. A write of
// several filesystem blocks (the commit joins a run of adjacent blocks
// into one) is recorded block by block: a power loss may keep any of
// them, so the crash states stay those of single-block writes.
type crashDisk struct {
	mu    sync.Mutex
	b     []byte
	log   []crashWrite
	block int64 // the filesystem's block size
}

func (d *crashDisk) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 || off >= int64(len(d.b)) {
		return 0, fmt.Errorf("read at %d outside the %d-byte disk", off, len(d.b))
	}
	n := copy(p, d.b[off:])
	if n < len(p) {
		return n, fmt.Errorf("short read at %d", off)
	}
	return n, nil
}

func (d *crashDisk) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(d.b)) {
		return 0, fmt.Errorf("write at %d outside the %d-byte disk", off, len(d.b))
	}
	if d.block <= 0 {
		return 0, fmt.Errorf("crashDisk made without the filesystem's block size")
	}
	copy(d.b[off:], p)
	for o, rest := off, p; len(rest) > 0; {
		n := min(int64(len(rest)), d.block-o%d.block)
		d.log = append(d.log, crashWrite{off: o, data: append([]byte(nil), rest[:n]...)})
		o, rest = o+n, rest[n:]
	}
	return len(p), nil
}

func (d *crashDisk) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.log); n > 0 && !d.log[n-1].flush {
		d.log = append(d.log, crashWrite{flush: true})
	}
	return nil
}

func (d *crashDisk) Size() int64  { return int64(len(d.b)) }
func (d *crashDisk) Close() error { return nil }

// crashPayload is the whole payload: keys, network, metadata, files
// (a new one in new directories, one replaced) and a password.
func crashPayload(t *testing.T) *inject.Data {
	key, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "demo-key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	notes := make([]byte, 12000)
	for i := range notes {
		notes[i] = byte('a' + i%26)
	}
	return &inject.Data{
		Keys: []string{strings.TrimSpace(string(key))},
		Network: &inject.Network{Format: inject.FormatIfupdown, Interfaces: []inject.Interface{{
			Name: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1"),
		}}},
		Meta: map[string]string{"role": "web", "uuid": "3f2a"},
		Files: []inject.File{
			{Path: "/etc/motd", Data: []byte("welcome\n")},
			{Path: "/root/notes/deep/a.txt", Data: notes},
			{Path: "/etc/hostname", Data: []byte("vm-1\n")},
		},
		AdminPassword: &inject.Password{Plain: "s3cret"},
	}
}

// crashTree describes every object of the filesystem in the image file
// (type, mode, owner, size, content hash or link target), read through
// the engine: a journal that needs recovery is replayed in memory (our
// own replay). lost+found is left out when skipLost.
func crashTree(t *testing.T, img string, skipLost bool) (map[string]string, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fsys, err := ext.Open(f, st.Size(), &ext.Options{})
	if err != nil {
		return nil, err
	}
	tree := map[string]string{}
	var walk func(dir string) error
	walk = func(dir string) error {
		ents, err := fsys.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := path.Join(dir, e.Name)
			if skipLost && p == "/lost+found" {
				continue
			}
			d := fmt.Sprintf("%v %d:%d %d", e.Mode, e.UID, e.GID, e.Size)
			switch {
			case e.Mode.IsRegular():
				b, err := fsys.ReadFile(p)
				if err != nil {
					return err
				}
				d += fmt.Sprintf(" %x", sha256.Sum256(b))
			case e.Mode&fs.ModeSymlink != 0:
				d += " -> " + e.Target
			}
			tree[p] = d
			if e.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return tree, walk("/")
}

func sameTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// treeDiff names the paths where got differs from want (for messages).
func treeDiff(got, want map[string]string) string {
	var d []string
	for k, v := range got {
		if want[k] != v {
			d = append(d, k)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			d = append(d, k+" (missing)")
		}
	}
	sort.Strings(d)
	return strings.Join(d, ", ")
}

// crashStates cuts the recorded stream: after every write (a prefix),
// and, since a power loss may keep any subset of the writes made since
// the last flush, also the previous batches plus the last k writes of
// the current batch (the suffix). Each state is a list of writes.
func crashStates(log []crashWrite) [][]crashWrite {
	var states [][]crashWrite
	var done []crashWrite
	var batch []crashWrite
	emit := func() {
		for k := 0; k <= len(batch); k++ {
			states = append(states, append(append([]crashWrite(nil), done...), batch[:k]...))
			if k > 0 && k < len(batch) {
				states = append(states, append(append([]crashWrite(nil), done...), batch[len(batch)-k:]...))
			}
		}
		done = append(done, batch...)
		batch = nil
	}
	for _, w := range log {
		if w.flush {
			emit()
			continue
		}
		batch = append(batch, w)
	}
	emit()
	return states
}

// TestCrashAtEveryWrite injects the whole payload into ext4 (csum v3,
// 64bit), ext3 (no checksums, 1 KiB blocks) and ext2 through
// inject/diskimage, records every write and flush reaching the disk, and
// cuts the stream at every write (prefixes, and suffixes of the batch
// since the last flush). On each cut image: our replay (a read-only open
// replays the journal in memory) and e2fsck -fy must both give the guest
// tree before the injection or the whole tree after it, never a part, and
// e2fsck -fn is clean after e2fsck -fy. On ext2 (no journal: the barrier
// path) the promise is per operation: after e2fsck -fy every path is as
// before or as after, and e2fsck -fn is clean. The live journal is
// checked once with debugfs' logdump.
func TestCrashAtEveryWrite(t *testing.T) {
	testtool.Need(t, "mkfs.ext4", "e2fsck", "debugfs")
	guest := testtool.DemoGuest(t)
	cases := []struct {
		name    string
		mkfs    []string
		atomic  bool
		journal bool
	}{
		{"ext4-csum3-64bit", []string{"-t", "ext4", "-O", "metadata_csum,64bit", "-b", "4096"}, true, true},
		{"ext3", []string{"-t", "ext3", "-b", "1024"}, true, true},
		{"ext2", []string{"-t", "ext2", "-b", "4096"}, false, false},
		{"ext4-bigalloc", []string{"-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "16384"}, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "base.img")
			args := append([]string{"-q", "-F"}, c.mkfs...)
			testtool.Run(t, "mke2fs", append(args, "-d", guest, base, "32M")...)
			raw, err := os.ReadFile(base)
			if err != nil {
				t.Fatal(err)
			}
			log := crashCuts(t, dir, raw, crashPayload(t), c.atomic, c.journal)
			if !c.journal {
				return
			}
			// A journal left live: the image as the first injection leaves
			// it after its second flush (the log committed and made live,
			// nothing checkpointed). A second injection appends its
			// transaction after that log (sequence, revokes, wrap-around
			// of the circular log): the same cuts, the same promise.
			dirty := append([]byte(nil), raw...)
			for i, flushes := 0, 0; flushes < 2; i++ {
				if log[i].flush {
					flushes++
					continue
				}
				copy(dirty[log[i].off:], log[i].data)
			}
			if !needsRecovery(dirty) {
				t.Fatal("the image after the second flush has no live transaction")
			}
			second := &inject.Data{Meta: map[string]string{"role": "db"}, Files: []inject.File{
				{Path: "/etc/motd", Data: []byte("second run\n")},
				{Path: "/root/notes/deep/a.txt", Data: bytes.Repeat([]byte("second "), 3000)},
				{Path: "/srv/b/c.txt", Data: []byte("new dir\n")},
			}}
			crashCuts(t, t.TempDir(), dirty, second, true, true)
		})
	}
}

// crashCuts injects data into the filesystem image raw, recording the
// writes and flushes, then checks every crash state (see
// TestCrashAtEveryWrite). It returns the recorded stream.
func crashCuts(t *testing.T, dir string, raw []byte, data *inject.Data, atomic, journal bool) []crashWrite {
	t.Helper()
	c := struct{ atomic, journal bool }{atomic, journal}
	base := filepath.Join(dir, "base.img")
	if err := os.WriteFile(base, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	old, err := crashTree(t, base, false)
	if err != nil {
		t.Fatal(err)
	}
	d := &crashDisk{b: append([]byte(nil), raw...), block: 1024 << binary.LittleEndian.Uint32(raw[1024+24:])}
	im, err := OpenDisk(d, Options{Writable: true, Partition: "none", Warn: func(m string) {
		if strings.Contains(m, "unjournaled") {
			t.Errorf("not journaled: %s", m)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inject.Apply(im.FS, data, nil); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, "final.img")
	if err := os.WriteFile(final, d.b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := testtool.Output(t, "e2fsck", "-fn", final); code != 0 {
		t.Fatalf("e2fsck -fn on the injected image: exit %d\n%s", code, out)
	}
	neu, err := crashTree(t, final, false)
	if err != nil {
		t.Fatal(err)
	}
	if sameTree(old, neu) {
		t.Fatal("the injection changed nothing")
	}
	var bounds []map[string]string // ext2: the trees between two operations
	if !c.atomic {
		bounds = opBoundaryTrees(t, raw, d.log, filepath.Join(dir, "bound.img"))
		t.Logf("%d operations", len(bounds)-1)
	}
	states := crashStates(d.log)
	t.Logf("%d writes and flushes, %d crash states", len(d.log), len(states))
	step := 1
	if testing.Short() {
		step = 7
	}
	sawOld, sawNew, sawLive := false, false, false
	for i := 0; i < len(states); i += step {
		img := filepath.Join(dir, "cut.img")
		cut := append([]byte(nil), raw...)
		for _, w := range states[i] {
			copy(cut[w.off:], w.data)
		}
		if err := os.WriteFile(img, cut, 0o644); err != nil {
			t.Fatal(err)
		}
		var mine map[string]string
		if c.atomic {
			if mine, err = crashTree(t, img, false); err != nil {
				t.Fatalf("state %d (%d writes): our replay: %v", i, len(states[i]), err)
			}
			switch {
			case sameTree(mine, old):
				sawOld = true
			case sameTree(mine, neu):
				sawNew = true
			default:
				t.Fatalf("state %d (%d writes): our replay gives part of the payload: differs from the old tree at %s and from the new at %s",
					i, len(states[i]), treeDiff(mine, old), treeDiff(mine, neu))
			}
		}
		if c.journal && !sawLive && c.atomic && sameTree(mine, neu) && needsRecovery(cut) {
			sawLive = true
			out := testtool.Run(t, "debugfs", "-R", "logdump", img)
			if !strings.Contains(string(out), "(commit block)") || strings.Contains(strings.ToLower(string(out)), "error") {
				t.Fatalf("state %d: logdump of the live transaction:\n%s", i, out)
			}
		}
		if out, code := testtool.Output(t, "e2fsck", "-fy", img); code >= 4 {
			t.Fatalf("state %d: e2fsck -fy exit %d\n%s", i, code, out)
		}
		if out, code := testtool.Output(t, "e2fsck", "-fn", img); code != 0 {
			t.Fatalf("state %d: e2fsck -fn after -fy: exit %d\n%s", i, code, out)
		}
		theirs, err := crashTree(t, img, !c.atomic)
		if err != nil {
			t.Fatalf("state %d: reading after e2fsck: %v", i, err)
		}
		if c.atomic {
			if !sameTree(theirs, mine) {
				t.Fatalf("state %d (%d writes): e2fsck's replay and ours differ at %s", i, len(states[i]), treeDiff(theirs, mine))
			}
			continue
		}
		ok := false
		for _, b := range bounds {
			if sameTree(theirs, b) {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("state %d (%d writes): after e2fsck the tree is none of the %d trees between operations (vs old: %s; vs new: %s)",
				i, len(states[i]), len(bounds), treeDiff(theirs, old), treeDiff(theirs, neu))
		}
	}
	if c.atomic && (!sawOld || !sawNew) {
		t.Fatalf("the cuts never gave the old tree (%v) or never the new one (%v)", sawOld, sawNew)
	}
	if c.journal && !testing.Short() && !sawLive {
		t.Fatal("no cut left a live transaction in the journal")
	}
	return d.log
}

// opBoundaryTrees returns the guest trees (lost+found left out) before
// the first operation and after each one: an operation's commit ends
// with the primary superblock written, then a flush.
func opBoundaryTrees(t *testing.T, raw []byte, log []crashWrite, img string) []map[string]string {
	cut := append([]byte(nil), raw...)
	var trees []map[string]string
	snap := func() {
		if err := os.WriteFile(img, cut, 0o644); err != nil {
			t.Fatal(err)
		}
		tr, err := crashTree(t, img, true)
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, tr)
	}
	snap()
	for i, w := range log {
		if w.flush {
			continue
		}
		copy(cut[w.off:], w.data)
		if w.off == 1024 && len(w.data) == 1024 && (i+1 == len(log) || log[i+1].flush) {
			snap()
		}
	}
	return trees
}

// needsRecovery reports whether the primary superblock of a filesystem
// image has needs_recovery set.
func needsRecovery(img []byte) bool {
	return img[1024+0x60]&0x4 != 0
}

// TestCrashAcrossTwoInjections cuts the write stream of two injections
// made one after the other into the same ext3 image (no checksums: a log
// block is not checked against its tag, so a replay takes whatever a
// half-overwritten log holds). The second finds the journal the first
// retired empty and writes its log from the journal's first block again,
// over the first one's. Each cut from the first injection's checkpoint on
// must read, through our replay and through e2fsck -fy alike, as the
// guest after the first or after the second injection, e2fsck -fn clean.
// This is what the flush after the retirement (the journal emptied) is
// for: without it, a power loss could keep some of the second log's
// blocks and not the emptied journal superblock, and a replay of the
// first transaction would write the second's copies over the wrong
// blocks (TestCrashAtEveryWrite, one injection at a time, cannot see it).
func TestCrashAcrossTwoInjections(t *testing.T) {
	testtool.Need(t, "mkfs.ext4", "e2fsck")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	testtool.Run(t, "mke2fs", "-q", "-F", "-t", "ext3", "-b", "1024", "-d", testtool.DemoGuest(t), base, "32M")
	raw, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	d := &crashDisk{b: append([]byte(nil), raw...), block: 1024}
	second := &inject.Data{Meta: map[string]string{"role": "db"}, Files: []inject.File{
		{Path: "/etc/motd", Data: []byte("second run\n")},
		{Path: "/root/notes/deep/b.txt", Data: bytes.Repeat([]byte("second "), 3000)},
		{Path: "/etc/hostname", Data: []byte("vm-2\n")},
	}}
	var trees []map[string]string
	var firstLen int
	for i, data := range []*inject.Data{crashPayload(t), second} {
		im, err := OpenDisk(d, Options{Writable: true, Partition: "none", Warn: func(m string) { t.Errorf("injection %d: %s", i+1, m) }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inject.Apply(im.FS, data, nil); err != nil {
			t.Fatal(err)
		}
		if err := im.Close(); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, fmt.Sprintf("after%d.img", i+1))
		if err := os.WriteFile(img, d.b, 0o644); err != nil {
			t.Fatal(err)
		}
		tr, err := crashTree(t, img, false)
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, tr)
		if i == 0 {
			firstLen = len(d.log)
		}
	}
	// The cuts from the first injection's third flush (its checkpoint
	// durable) on: the earlier ones are TestCrashAtEveryWrite's.
	flushes, durable := 0, 0 // durable: the writes before that flush
	for _, w := range d.log[:firstLen] {
		if !w.flush {
			durable++
		} else if flushes++; flushes == 3 {
			break
		}
	}
	if flushes < 3 {
		t.Fatalf("the first injection made %d flushes, want at least 3", flushes)
	}
	states := crashStates(d.log)
	checked, step := 0, 1
	if testing.Short() {
		step = 5
	}
	for i := 0; i < len(states); i += step {
		st := states[i]
		if len(st) < durable { // a cut before the checkpoint was durable
			continue
		}
		cut := append([]byte(nil), raw...)
		for _, w := range st {
			copy(cut[w.off:], w.data)
		}
		img := filepath.Join(dir, "cut.img")
		if err := os.WriteFile(img, cut, 0o644); err != nil {
			t.Fatal(err)
		}
		mine, err := crashTree(t, img, false)
		if err != nil {
			t.Fatalf("state %d (%d writes): our replay: %v", i, len(st), err)
		}
		if !sameTree(mine, trees[0]) && !sameTree(mine, trees[1]) {
			t.Fatalf("state %d (%d writes): our replay gives neither the first injection's guest (%s) nor the second's (%s)",
				i, len(st), treeDiff(mine, trees[0]), treeDiff(mine, trees[1]))
		}
		if out, code := testtool.Output(t, "e2fsck", "-fy", img); code >= 4 {
			t.Fatalf("state %d: e2fsck -fy exit %d\n%s", i, code, out)
		}
		if out, code := testtool.Output(t, "e2fsck", "-fn", img); code != 0 {
			t.Fatalf("state %d: e2fsck -fn after -fy: exit %d\n%s", i, code, out)
		}
		theirs, err := crashTree(t, img, false)
		if err != nil {
			t.Fatalf("state %d: reading after e2fsck: %v", i, err)
		}
		if !sameTree(theirs, mine) {
			t.Fatalf("state %d (%d writes): e2fsck's replay and ours differ at %s", i, len(st), treeDiff(theirs, mine))
		}
		checked++
	}
	t.Logf("%d writes and flushes, %d crash states checked", len(d.log), checked)
}
