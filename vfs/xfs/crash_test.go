package xfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// crashRecorder is a writable image file that keeps every write, in
// order, and every barrier.
type crashRecorder struct {
	fh     *os.File
	writes []crashWrite
}

type crashWrite struct {
	off     int64
	data    []byte
	barrier bool
}

func (r *crashRecorder) ReadAt(p []byte, off int64) (int, error) { return r.fh.ReadAt(p, off) }

func (r *crashRecorder) WriteAt(p []byte, off int64) (int, error) {
	r.writes = append(r.writes, crashWrite{off: off, data: bytes.Clone(p)})
	return r.fh.WriteAt(p, off)
}

func (r *crashRecorder) Sync() error {
	r.writes = append(r.writes, crashWrite{barrier: true})
	return nil
}

// crashForbidden is what xfs_repair -n must never report after a crash
// at any point of the write stream: a block owned twice or owned and
// free (cross-linked), an inode in use that the inode btrees call free
// (the kernel's allocator would hand it out again), a directory entry
// naming a free or missing inode (dangling), a bad inode, directory or
// attribute block, or any complaint about an attr fork. An inode the
// btrees call used with mode 0 ("imap claims a free inode ... is in
// use") is a leak, allowed.
var crashForbidden = regexp.MustCompile(`(?i)dup(licate)? (extent|block)|multiply[- ]claimed|claims (free|used|dup)|references (free|non-existent|unallocated) inode|points to (free|non-existent|unallocated)|would junk|bad (magic|directory|inode|btree|crc|nblocks|nextents)|corrupt|imap claims in-use inode .* is free|attribute|attr (fork|block|too)`)

// repairProgress matches xfs_repair's progress lines, which name the
// checks it makes ("check for duplicate blocks") rather than findings.
var repairProgress = regexp.MustCompile(`^\s*(- |Phase \d|No modify flag|Cannot get host|Repair may fail|the image and the host|$)`)

// btreesDisagree is repair's verdict when a cut falls between the
// writes of the inode btree and the free inode btree (one class, not
// atomic without the log): it then skips its connectivity phases, which
// walkNames stands in for.
var btreesDisagree = regexp.MustCompile(`Inode allocation btrees are too corrupted, skipping phases 6 and 7`)

// nlinkReset is repair's report of a link count that differs from the
// names counted: too high is a leak, too low is forbidden.
var nlinkReset = regexp.MustCompile(`would have reset inode \d+ nlinks from (\d+) to (\d+)`)

// dirSecondName is repair's report of a directory named in two parents,
// as a cut inside a rename of a directory to another parent leaves it
// (the new name made, the old one not yet removed): repair junks the
// name its ".." disagrees with, or, when its walk meets the other name
// first, the second name it meets ("already connected", a message
// xfs_repair gives only for directories); the directory stays named.
var dirSecondName = regexp.MustCompile(`^entry ".*" in directory inode \d+ (not consistent with \.\. value \(\d+\) in inode \d+,|references already connected inode \d+\.)$`)

var inoNumber = regexp.MustCompile(`\d+`)

// TestCrashOrder: an injection-like sequence of operations (mkdir -p, new
// files with data, appends, a replace that frees blocks, a symlink, a
// link, removals, attributes in short form and in a leaf with remote
// values, replaced and removed) is recorded write by write; the image cut after every
// prefix of the writes (the original plus the first k) is checked with
// xfs_repair -n, which must never report cross-linked blocks, a dangling
// entry or broken metadata. What it may report at a cut is listed in the
// README: blocks or inodes marked used that nothing owns yet (leaks), and
// counters (AGF/AGI/superblock) behind or ahead of their btrees. At the
// end it must be fully clean.
func TestCrashOrder(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string
		batch bool
	}{{"v5", nil, false}, {"v4", []string{"-m", "crc=0"}, false}, {"v5-batch", nil, true}, {"v5-rmapbt", []string{"-m", "rmapbt=1"}, false}} {
		t.Run(c.name, func(t *testing.T) {
			img := emptyImage(t, c.args...)
			// Before the recording: directories in block and leaf form
			// (their ".." in a data block) to move, and an empty one
			// to move over.
			pre := openRW(t, img)
			for d, n := range map[string]int{"/srv/blk": 40, "/srv/lf": 150} {
				if err := pre.MakePath(d + "/sub"); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					if err := pre.ReplaceFile(fmt.Sprintf("%s/%s", d, dirName(i, 30)), nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := pre.MakePath("/root/empty"); err != nil {
				t.Fatal(err)
			}
			for d, want := range map[string]string{"/srv/blk": "block/extents", "/srv/lf": "leaf/extents"} {
				if got := dirShape(t, pre, d); got != want {
					t.Fatalf("%s is in %s form, want %s", d, got, want)
				}
			}
			orig := img + ".orig"
			run(t, "cp", "--sparse=always", img, orig)
			fh, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			st, _ := fh.Stat()
			rec := &crashRecorder{fh: fh}
			f, err := openWritable(rec, st.Size(), &Options{Batch: c.batch})
			if err != nil {
				t.Fatal(err)
			}
			bs := f.BlockSize()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(f.MakePath("/root/.ssh"))
			must(f.MakePath("/opt/deep/er"))                   // new directories in new directories
			must(f.ReplaceFile("/opt/deep/er/f", []byte("x"))) // in a directory of the batch
			must(f.ReplaceFile("/etc-old", pattern(bs*6+5, 1)))
			must(f.AppendFile("/root/.ssh/authorized_keys", []byte("ssh-ed25519 AAAA one\n")))
			must(f.AppendFile("/root/.ssh/authorized_keys", pattern(bs*2, 2)))
			must(f.ReplaceFile("/etc-old", pattern(bs+3, 3)))
			must(f.ReplaceFile("/root/.ssh/authorized_keys", pattern(bs*3+100, 4))) // in place, then one more block
			must(f.Symlink("/"+strings.Repeat("x", 600), "/long"))
			must(f.Link("/etc-old", "/etc-new"))
			must(f.Remove("/etc-old"))
			must(f.ReplaceFile("/meta.js", []byte(`{"a":"b"}`)))
			must(f.Remove("/long"))
			must(f.MakePath("/srv/x"))
			must(f.Rename("/etc-new", "/meta.js")) // over an existing file
			must(f.Rename("/srv/x", "/root/x"))    // a directory to another parent
			must(f.SetXattr("/root/.ssh", "security.selinux", []byte("system_u:object_r:ssh_home_t:s0\x00")))
			must(f.SetXattr("/meta.js", "user.big", pattern(bs*2, 5))) // a leaf and remote blocks
			must(f.SetXattr("/meta.js", "user.big", pattern(bs+1, 6))) // the remote blocks freed, new ones
			must(f.RemoveXattr("/meta.js", "user.big"))                // the leaf freed, the fork gone
			must(f.Rename("/srv/blk", "/blk"))                         // its ".." in its block
			must(f.Rename("/srv/lf", "/root/empty"))
			must(f.Flush())
			repairClean(t, img)

			// Replay the prefixes on a fresh copy of the original.
			cut := img + ".cut"
			run(t, "cp", "--sparse=always", orig, cut)
			ch, err := os.OpenFile(cut, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			step := 1
			if testing.Short() {
				step = 5
			}
			reported := map[string]int{}
			check := func(what string) {
				t.Helper()
				out, _ := exec.Command("xfs_repair", "-n", "-f", cut).CombinedOutput()
				prev := ""
				for _, line := range strings.Split(string(out), "\n") {
					if repairProgress.MatchString(line) {
						continue
					}
					secondParent := line == "would junk entry" && dirSecondName.MatchString(prev)
					prev = line
					if crashForbidden.MatchString(line) && !btreesDisagree.MatchString(line) && !secondParent {
						t.Fatalf("%s: xfs_repair -n reports %q:\n%s", what, line, out)
					}
					if m := nlinkReset.FindStringSubmatch(line); m != nil {
						from, _ := strconv.Atoi(m[1])
						to, _ := strconv.Atoi(m[2])
						if from < to {
							t.Fatalf("%s: a link count below the names of the inode (the kernel could free it while named): %s", what, line)
						}
					}
					reported[inoNumber.ReplaceAllString(line, "N")]++
				}
				// Independently of what repair could check: every name
				// reachable from the root leads to an inode in use.
				g, err := Open(ch, st.Size(), nil)
				if err != nil {
					t.Fatalf("%s: open: %v", what, err)
				}
				if err := walkNames(g, "/"); err != nil {
					t.Fatalf("%s: a dangling entry: %v", what, err)
				}
			}
			apply := func(w crashWrite) {
				if _, err := ch.WriteAt(w.data, w.off); err != nil {
					t.Fatal(err)
				}
			}
			// The writes between two barriers may reach the disk in any
			// order: each group is cut after every prefix of its writes
			// in reverse order, then restored and cut after every prefix
			// in order.
			var groups [][]crashWrite
			cur := []crashWrite{}
			for _, w := range rec.writes {
				if w.barrier {
					groups = append(groups, cur)
					cur = []crashWrite{}
					continue
				}
				cur = append(cur, w)
			}
			groups = append(groups, cur)
			n, total := 0, len(rec.writes)
			for gi, grp := range groups {
				if len(grp) > 1 {
					old := make([][]byte, len(grp))
					for i, w := range grp {
						old[i] = make([]byte, len(w.data))
						if _, err := ch.ReadAt(old[i], w.off); err != nil {
							t.Fatal(err)
						}
					}
					for i := len(grp) - 1; i > 0; i-- {
						apply(grp[i])
						if n++; n%step == 0 {
							check(fmt.Sprintf("group %d of %d, its last %d writes only", gi+1, len(groups), len(grp)-i))
						}
					}
					for i := len(grp) - 1; i > 0; i-- {
						apply(crashWrite{off: grp[i].off, data: old[i]})
					}
				}
				for i, w := range grp {
					apply(w)
					if n++; n%step == 0 || (gi == len(groups)-1 && i == len(grp)-1) {
						check(fmt.Sprintf("group %d of %d, its first %d writes (of %d writes in all)", gi+1, len(groups), i+1, total))
					}
				}
			}
			if _, err := exec.Command("xfs_repair", "-n", "-f", cut).CombinedOutput(); err != nil {
				t.Fatal("the whole stream replayed is not clean")
			}
			for line, n := range reported {
				t.Logf("reported at %d cuts: %s", n, line)
			}
		})
	}
}

// walkNames lists every directory under p with the read engine, each entry
// described from its inode (a name leading to a free inode fails).
func walkNames(f *FS, p string) error {
	ents, err := f.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := walkNames(f, path.Join(p, e.Name)); err != nil {
				return err
			}
		}
	}
	return nil
}
