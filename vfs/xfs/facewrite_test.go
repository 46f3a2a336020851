package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// faceFormats are the mkfs.xfs variants the face tests write: the
// default v5 (reflink, finobt, sparse inodes, bigtime), v5 with 1 KiB
// blocks, and v4.
var faceFormats = []struct {
	name string
	args []string
}{
	{"v5", nil},
	{"v5-1k", []string{"-b", "size=1024"}},
	{"v4", []string{"-m", "crc=0"}},
	// The reverse-mapping btree, with and without reflink, 4 KiB and
	// 1 KiB blocks, several AG counts.
	{"v5-rmapbt-reflink", []string{"-m", "rmapbt=1,reflink=1", "-d", "agcount=4"}},
	{"v5-rmapbt-1k-noreflink", []string{"-b", "size=1024", "-m", "rmapbt=1,reflink=0", "-d", "agcount=2"}},
}

// TestFaceWrite: every vfs.FS write operation and the optional ones
// (Symlink, Remove, Link, SetTimes, Truncate) on a fresh filesystem;
// after each group xfs_repair -n is clean and a fresh open reads back
// exactly what was written, also checked against xfs_db.
func TestFaceWrite(t *testing.T) {
	for _, c := range faceFormats {
		for _, batch := range []bool{false, true} {
			name := c.name
			if batch {
				name += "-batch"
			}
			t.Run(name, func(t *testing.T) { testFaceWrite(t, c.args, batch) })
		}
	}
}

// openRWOpts opens img for writing with opts.
func openRWOpts(t *testing.T, img string, opts *Options) *FS {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	f, err := openWritable(fh, st.Size(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testFaceWrite(t *testing.T, args []string, batch bool) {
	{
		{
			img := emptyImage(t, args...)
			f := openRWOpts(t, img, &Options{Batch: batch})
			repairClean := func(t *testing.T, img string) {
				t.Helper()
				if err := f.Flush(); err != nil {
					t.Fatal(err)
				}
				repairClean(t, img)
			}
			bs := f.BlockSize()
			must := func(what string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
			must("mkdir", f.MakePath("/etc/ssh/keys.d"))
			must("mkdir again", f.MakePath("/etc/ssh"))
			must("passwd", f.ReplaceFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")))
			must("group", f.ReplaceFile("/etc/group", []byte("root:x:0:\nalice:x:1000:\n")))
			// Appends that cross block boundaries at odd offsets.
			var want []byte
			for i, n := range []int{10, bs - 10, 1, bs*3 + 7, 0, 5} {
				chunk := pattern(n, byte(i+1))
				must("append", f.AppendFile("/etc/ssh/keys.d/auth", chunk))
				want = append(want, chunk...)
			}
			must("symlink short", f.Symlink("keys.d/auth", "/etc/ssh/link"))
			long := "/" + strings.Repeat("d/", 400) + "end" // 804 bytes: a remote block
			must("symlink long", f.Symlink(long, "/etc/ssh/longlink"))
			must("chmod", f.SetPermissions("/etc/ssh/keys.d/auth", 0o600|fs.ModeSetgid))
			must("chown", f.SetOwnership("/etc/ssh/keys.d/auth", "alice", "alice"))
			must("link", f.Link("/etc/ssh/keys.d/auth", "/etc/auth.hard"))
			mt := time.Unix(1700000000, 123456789)
			must("times", f.SetTimes("/etc/ssh/link", mt, mt))
			must("file to remove", f.ReplaceFile("/etc/gone", pattern(bs*2+3, 9)))
			must("dir to remove", f.MakePath("/etc/gonedir"))
			repairClean(t, img)

			g := openImage(t, img, nil)
			got, err := g.ReadFile("/etc/auth.hard")
			must("read", err)
			if !bytes.Equal(got, want) {
				t.Fatalf("appended file reads back %d bytes differing from the %d written", len(got), len(want))
			}
			st, err := g.Stat("/etc/ssh/link")
			must("stat", err)
			if st.UID != 1000 || st.GID != 1000 || st.Mode != 0o600|fs.ModeSetgid || st.Nlink != 2 || st.Size != int64(len(want)) {
				t.Fatalf("through the symlink: %+v", st)
			}
			lt, err := g.Lstat("/etc/ssh/link")
			must("lstat", err)
			if !lt.ModTime.Equal(mt) || lt.Target != "keys.d/auth" {
				t.Fatalf("symlink: %+v", lt)
			}
			if tg, err := g.Readlink("/etc/ssh/longlink"); err != nil || tg != long {
				t.Fatalf("long symlink: %d bytes, %v", len(tg), err)
			}
			if out := xfsDB(t, img, "inode "+fmt.Sprint(mustIno(t, g, "/etc/ssh/longlink")), "p core.format"); !strings.Contains(out, "2 (extents)") {
				t.Fatalf("long symlink not in extents format: %s", out)
			}
			if n := dbField(t, img, "core.nlinkv2", "inode "+fmt.Sprint(mustIno(t, g, "/etc"))); n != 4 {
				t.Fatalf("xfs_db: /etc has %d links, want 4 (its entry, its dot, ssh/.. and gonedir/..)", n)
			}

			// Replace shrinks and grows; Truncate cuts inside a block
			// then grows over a hole; Remove frees; ENOENT and
			// ENOTEMPTY refusals.
			f = openRWOpts(t, img, &Options{Batch: batch})
			freeBefore := dbField(t, img, "fdblocks", "sb 0")
			must("replace shrink", f.ReplaceFile("/etc/auth.hard", []byte("short\n")))
			must("replace grow", f.ReplaceFile("/etc/passwd", pattern(bs*5+1, 3)))
			must("truncate", f.Truncate("/etc/passwd", int64(bs)+100))
			must("truncate grow", f.Truncate("/etc/passwd", int64(bs)*4))
			must("remove file", f.Remove("/etc/gone"))
			must("remove dir", f.Remove("/etc/gonedir"))
			must("remove symlink", f.Remove("/etc/ssh/longlink"))
			must("remove one link", f.Remove("/etc/auth.hard"))
			if err := f.Remove("/etc/ssh"); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("remove of a non-empty directory: %v", err)
			}
			if err := f.Remove("/etc/nothing"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("remove of a missing file: %v", err)
			}
			if err := f.AppendFile("/etc/ssh", []byte("x")); !errors.Is(err, vfs.ErrIsDir) {
				t.Fatalf("append to a directory: %v", err)
			}
			repairClean(t, img)
			g = openImage(t, img, nil)
			if got, err := g.ReadFile("/etc/ssh/keys.d/auth"); err != nil || string(got) != "short\n" {
				t.Fatalf("replaced file: %q %v", got, err)
			}
			pw, err := g.ReadFile("/etc/passwd")
			must("read passwd", err)
			wantPW := append(pattern(bs*5+1, 3)[:bs+100], make([]byte, 3*bs-100)...)
			if !bytes.Equal(pw, wantPW) {
				t.Fatalf("truncated file: %d bytes, not the %d expected (zeros past the cut)", len(pw), len(wantPW))
			}
			for _, p := range []string{"/etc/gone", "/etc/gonedir", "/etc/ssh/longlink", "/etc/auth.hard"} {
				if ok, err := g.HasFile(p); ok || err != nil {
					t.Fatalf("%s still there (%v)", p, err)
				}
			}
			if st, _ := g.Stat("/etc/ssh/keys.d/auth"); st.Nlink != 1 {
				t.Fatalf("link count %d after removing the hard link", st.Nlink)
			}
			// What the first round allocated beyond the survivors came back.
			if freeAfter := dbField(t, img, "fdblocks", "sb 0"); freeAfter <= freeBefore {
				t.Fatalf("free blocks %d after removals, %d before: nothing was freed", freeAfter, freeBefore)
			}
		}
	}
}

func mustIno(t *testing.T, f *FS, p string) uint64 {
	t.Helper()
	st, err := f.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestFaceReadOnly: a FS opened with Open refuses every write with
// vfs.ErrReadOnly in a *fs.PathError, nothing written.
func TestFaceReadOnly(t *testing.T) {
	img := emptyImage(t)
	f := openImage(t, img, nil)
	before := fileSum(t, img)
	for _, err := range []error{
		f.MakePath("/a"), f.AppendFile("/a", nil), f.ReplaceFile("/a", nil),
		f.SetPermissions("/", 0o700), f.SetOwnership("/", "0", "0"), f.Symlink("x", "/l"),
		f.Remove("/a"), f.Link("/", "/b"), f.SetTimes("/", time.Now(), time.Now()), f.Truncate("/a", 0),
	} {
		var pe *fs.PathError
		if !errors.Is(err, vfs.ErrReadOnly) || !errors.As(err, &pe) {
			t.Fatalf("write on a read-only open: %v", err)
		}
	}
	if fileSum(t, img) != before {
		t.Fatal("a refused write changed the image")
	}
}

// TestBatchRollback: in a batch, an operation that fails after changing
// the transaction (a symlink target refused once its inode and entry
// exist) leaves no trace, the operations before and after it land, an
// operation that frees (a replace) is committed alone, and the batch
// costs fewer barriers than the same operations unbatched; xfs_repair
// -n is clean.
func TestBatchRollback(t *testing.T) {
	run := func(batch bool) int {
		img := emptyImage(t, "-b", "size=1024")
		fh, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		st, _ := fh.Stat()
		rec := &recorder{File: fh}
		f, err := openWritable(rec, st.Size(), &Options{Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(f.MakePath("/a/b"))
		must(f.ReplaceFile("/a/b/file", pattern(5000, 1)))
		must(f.ReplaceFile("/a/motd", []byte("hi\n")))
		must(f.SetPermissions("/a/motd", 0o600))
		// 1000 bytes need two 1 KiB blocks with v5 headers: refused
		// after the symlink's inode and name were made.
		if err := f.Symlink(strings.Repeat("t", 1000), "/a/b/link"); !errors.Is(err, ErrUnsupportedFeature) {
			t.Fatalf("two-block symlink: %v", err)
		}
		if ok, _ := f.HasFile("/a/b/link"); ok {
			t.Fatal("the failed symlink's name survived its rollback")
		}
		must(f.AppendFile("/a/b/file", pattern(100, 2)))
		must(f.ReplaceFile("/a/b/file", []byte("new\n"))) // frees: alone
		must(f.Symlink("short", "/a/b/link"))
		must(f.SetTimes("/a/b/link", time.Unix(1e9, 0), time.Unix(1e9, 0)))
		must(f.Flush())
		syncs := 0
		for _, op := range rec.ops {
			if op == "sync" {
				syncs++
			}
		}
		repairClean(t, img)
		g := openImage(t, img, nil)
		if got, err := g.ReadFile("/a/b/file"); err != nil || string(got) != "new\n" {
			t.Fatalf("file: %q %v", got, err)
		}
		if tg, err := g.Readlink("/a/b/link"); err != nil || tg != "short" {
			t.Fatalf("link: %q %v", tg, err)
		}
		if ents, _ := g.ReadDir("/a/b"); len(ents) != 2 {
			t.Fatalf("/a/b holds %d entries, want 2", len(ents))
		}
		return syncs
	}
	single, batched := run(false), run(true)
	if batched >= single {
		t.Fatalf("%d barriers batched, %d one transaction per operation", batched, single)
	}
	t.Logf("barriers: %d batched, %d unbatched", batched, single)
}
