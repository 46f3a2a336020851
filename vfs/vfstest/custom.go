package vfstest

import (
	"bytes"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// TimesReader is served by backends (and test adapters) that can report an
// object's access, modification and change times without following a
// final symlink; the SetTimes case checks atime and ctime through it.
type TimesReader interface {
	Times(path string) (atime, mtime, ctime time.Time, err error)
}

// customCases are the customisation operations' cases; each runs only on
// a backend serving its interface.
func (s *suite) customCases() []namedCase {
	return []namedCase{
		{"Rename", s.testRename},
		{"RenameDirs", s.testRenameDirs},
		{"Link", s.testLink},
		{"Xattr", s.testXattr},
		{"SetTimes", s.testSetTimes},
		{"Truncate", s.testTruncate},
	}
}

type namedCase struct {
	name string
	fn   func(t *testing.T, fsys vfs.FS)
}

// lstat is stat without following, failing t on error.
func lstat(t testing.TB, fsys vfs.FS, p string) (vfs.FileInfo, bool) {
	t.Helper()
	return stat(t, fsys, p, false)
}

func (s *suite) testRename(t *testing.T, fsys vfs.FS) {
	rn, ok := fsys.(vfs.Renamer)
	if !ok {
		t.Logf("%T does not serve vfs.Renamer", fsys)
		return
	}
	must(t, fsys.ReplaceFile("/tmp/a", []byte("A")))
	before, hasReader := lstat(t, fsys, "/tmp/a")
	must(t, rn.Rename("/tmp/a", "/tmp/b")) // same directory
	WantExists(t, fsys, "/tmp/a", false)
	WantContent(t, fsys, "/tmp/b", "A")
	if after, _ := lstat(t, fsys, "/tmp/b"); hasReader && after.Ino != before.Ino {
		t.Errorf("Rename changed the inode: %d -> %d", before.Ino, after.Ino)
	}
	must(t, rn.Rename("/tmp/b", "/home/al/b")) // across directories
	WantExists(t, fsys, "/tmp/b", false)
	WantContent(t, fsys, "/home/al/b", "A")
	// Onto an existing file: replaced.
	must(t, fsys.ReplaceFile("/tmp/c", []byte("C")))
	must(t, rn.Rename("/tmp/c", "/home/al/b"))
	WantContent(t, fsys, "/home/al/b", "C")
	WantExists(t, fsys, "/tmp/c", false)
	// Through a symlinked parent: lands in the target directory.
	must(t, rn.Rename("/home/al/b", "/links/dir/b"))
	WantContent(t, fsys, "/data/b", "C")
	// A final symlink is moved, not followed, on either side.
	must(t, rn.Rename("/links/abs", "/tmp/abs"))
	WantContent(t, fsys, "/tmp/abs", FileData)
	WantContent(t, fsys, "/data/file", FileData)
	if r, ok := fsys.(vfs.Reader); ok {
		if got, err := r.Readlink("/tmp/abs"); err != nil || got != "/data/file" {
			t.Errorf("moved symlink reads %q, %v", got, err)
		}
	}
	must(t, rn.Rename("/data/b", "/links/rel")) // replaces the link itself
	WantContent(t, fsys, "/data/file", FileData)
	WantContent(t, fsys, "/links/rel", "C")
	if fi, ok := lstat(t, fsys, "/links/rel"); ok && !fi.Mode.IsRegular() {
		t.Errorf("/links/rel is %v after a file replaced the symlink", fi.Mode)
	}
	must(t, rn.Rename("/links/dangling", "/tmp/dangling")) // dangling: moved all the same
	WantExists(t, fsys, "/data/new", false)
	// Onto itself: nothing happens.
	must(t, rn.Rename("/data/file", "/data/file"))
	WantContent(t, fsys, "/data/file", FileData)
	// Refusals, each leaving the tree as it was.
	WantErr(t, rn.Rename("/tmp/none", "/tmp/x"), fs.ErrNotExist, "/tmp/none")
	WantErr(t, rn.Rename("/data/file", "/nodir/x"), fs.ErrNotExist, "/nodir/x")
	WantErr(t, rn.Rename("/data/file", "/tmp"), vfs.ErrIsDir, "/tmp")
	WantErr(t, rn.Rename("/data/file", "/data/file/x"), vfs.ErrNotDir, "/data/file/x")
	WantErr(t, rn.Rename("/", "/tmp/root"), fs.ErrInvalid, "/")
	WantErr(t, rn.Rename("/data/.", "/tmp/x"), fs.ErrInvalid, "/data/.")
	WantErr(t, rn.Rename("rel", "/tmp/x"), vfs.ErrInvalidPath, "rel")
	WantContent(t, fsys, "/data/file", FileData)
	WantExists(t, fsys, "/tmp/x", false)
}

func (s *suite) testRenameDirs(t *testing.T, fsys vfs.FS) {
	rn, ok := fsys.(vfs.Renamer)
	if !ok {
		t.Logf("%T does not serve vfs.Renamer", fsys)
		return
	}
	must(t, fsys.MakePath("/tmp/d/sub"))
	must(t, fsys.ReplaceFile("/tmp/d/sub/f", []byte("deep")))
	tmp0, hasReader := stat(t, fsys, "/tmp", true)
	home0, _ := stat(t, fsys, "/home/al", true)
	must(t, rn.Rename("/tmp/d", "/home/al/d"))
	WantContent(t, fsys, "/home/al/d/sub/f", "deep")
	WantExists(t, fsys, "/tmp/d", false)
	if hasReader {
		tmp1, _ := stat(t, fsys, "/tmp", true)
		home1, _ := stat(t, fsys, "/home/al", true)
		if tmp1.Nlink != tmp0.Nlink-1 || home1.Nlink != home0.Nlink+1 {
			t.Errorf("parents' link counts after a directory move: /tmp %d -> %d, /home/al %d -> %d",
				tmp0.Nlink, tmp1.Nlink, home0.Nlink, home1.Nlink)
		}
	}
	// Onto an empty directory: replaced; onto a non-empty one: refused.
	must(t, fsys.MakePath("/tmp/empty"))
	must(t, rn.Rename("/home/al/d", "/tmp/empty"))
	WantContent(t, fsys, "/tmp/empty/sub/f", "deep")
	must(t, fsys.MakePath("/tmp/full/x"))
	WantErr(t, rn.Rename("/tmp/empty", "/tmp/full"), fs.ErrExist, "/tmp/full")
	WantErr(t, rn.Rename("/tmp/empty", "/data/file"), vfs.ErrNotDir, "/data/file")
	// Into its own subtree, directly or through a symlink: refused.
	WantErr(t, rn.Rename("/tmp/empty", "/tmp/empty/sub/x"), fs.ErrInvalid, "/tmp/empty/sub/x")
	must(t, symlinker(t, fsys).Symlink("/tmp/empty/sub", "/tmp/into"))
	WantErr(t, rn.Rename("/tmp/empty", "/tmp/into/x"), fs.ErrInvalid, "/tmp/into/x")
	WantErr(t, rn.Rename("/tmp", "/tmp/empty/sub/x"), fs.ErrInvalid, "/tmp/empty/sub/x")
	WantContent(t, fsys, "/tmp/empty/sub/f", "deep")
	// A renamed directory's ".." is its new parent.
	must(t, rn.Rename("/tmp/empty/sub", "/data/sub"))
	WantContent(t, fsys, "/data/sub/f", "deep")
	if r, ok := fsys.(vfs.Reader); ok {
		ents, err := r.ReadDir("/tmp/empty")
		if err != nil || len(ents) != 0 {
			t.Errorf("ReadDir(/tmp/empty) after moving its only child = %v, %v", ents, err)
		}
	}
	WantContent(t, fsys, "/data/sub/../file", FileData)
}

func (s *suite) testLink(t *testing.T, fsys vfs.FS) {
	ln, ok := fsys.(vfs.Linker)
	if !ok {
		t.Logf("%T does not serve vfs.Linker", fsys)
		return
	}
	must(t, ln.Link("/data/file", "/tmp/hl"))
	WantContent(t, fsys, "/tmp/hl", FileData)
	a, hasReader := lstat(t, fsys, "/data/file")
	if b, _ := lstat(t, fsys, "/tmp/hl"); hasReader && (a.Ino != b.Ino || a.Nlink != 2 || b.Nlink != 2) {
		t.Errorf("after Link: /data/file ino %d nlink %d, /tmp/hl ino %d nlink %d", a.Ino, a.Nlink, b.Ino, b.Nlink)
	}
	// A final symlink is linked, not followed.
	must(t, ln.Link("/links/abs", "/tmp/sl"))
	if fi, ok := lstat(t, fsys, "/tmp/sl"); ok && (fi.Mode.Type() != fs.ModeSymlink || fi.Target != "/data/file") {
		t.Errorf("Link of a symlink made %+v", fi)
	}
	WantErr(t, ln.Link("/data", "/tmp/dirlink"), vfs.ErrIsDir, "/data")
	WantErr(t, ln.Link("/data/file", "/tmp/hl"), fs.ErrExist, "/tmp/hl")
	WantErr(t, ln.Link("/data/file", "/links/dangling"), fs.ErrExist, "/links/dangling")
	WantErr(t, ln.Link("/tmp/none", "/tmp/x"), fs.ErrNotExist, "/tmp/none")
	WantErr(t, ln.Link("/data/file", "/nodir/x"), fs.ErrNotExist, "/nodir/x")
	WantExists(t, fsys, "/tmp/dirlink", false)
	WantExists(t, fsys, "/data/new", false)
	if rm, ok := fsys.(vfs.Remover); ok {
		must(t, rm.Remove("/tmp/hl"))
		if fi, ok := lstat(t, fsys, "/data/file"); ok && fi.Nlink != 1 {
			t.Errorf("nlink %d after removing the second name", fi.Nlink)
		}
		WantContent(t, fsys, "/data/file", FileData)
	}
}

func (s *suite) testXattr(t *testing.T, fsys vfs.FS) {
	xw, ok := fsys.(vfs.XattrWriter)
	if !ok {
		t.Logf("%T does not serve vfs.XattrWriter", fsys)
		return
	}
	xr, _ := fsys.(vfs.XattrReader)
	want := func(p string, attrs map[string]string) {
		t.Helper()
		if xr == nil {
			return
		}
		names, err := xr.ListXattr(p)
		if err != nil {
			t.Errorf("ListXattr(%s): %v", p, err)
			return
		}
		var got []string
		for _, n := range names {
			if _, ok := attrs[n]; ok || !strings.HasPrefix(n, "system.") && !strings.HasPrefix(n, "security.") {
				got = append(got, n)
			}
		}
		var wantNames []string
		for n := range attrs {
			wantNames = append(wantNames, n)
		}
		slices.Sort(wantNames)
		if !slices.Equal(got, wantNames) {
			t.Errorf("ListXattr(%s) = %q, want %q", p, names, wantNames)
		}
		for n, v := range attrs {
			b, err := xr.GetXattr(p, n)
			if err != nil || !bytes.Equal(b, []byte(v)) {
				t.Errorf("GetXattr(%s, %s) = %.60q, %v; want %.60q", p, n, b, err, v)
			}
		}
	}
	must(t, xw.SetXattr("/data/file", "user.one", []byte("1")))
	must(t, xw.SetXattr("/data/file", "user.two", []byte("second")))
	want("/data/file", map[string]string{"user.one": "1", "user.two": "second"})
	must(t, xw.SetXattr("/data/file", "user.one", []byte("replaced, longer")))
	must(t, xw.SetXattr("/data/file", "user.empty", nil))
	want("/data/file", map[string]string{"user.one": "replaced, longer", "user.two": "second", "user.empty": ""})
	big := strings.Repeat("x", 700) // beyond an inode's in-body area, within a 1 KiB xattr block
	must(t, xw.SetXattr("/data/file", "user.big", []byte(big)))
	want("/data/file", map[string]string{"user.one": "replaced, longer", "user.two": "second", "user.empty": "", "user.big": big})
	must(t, xw.RemoveXattr("/data/file", "user.two"))
	want("/data/file", map[string]string{"user.one": "replaced, longer", "user.empty": "", "user.big": big})
	WantErr(t, xw.RemoveXattr("/data/file", "user.two"), vfs.ErrNoXattr, "/data/file")
	if xr != nil {
		_, err := xr.GetXattr("/data/file", "user.two")
		WantErr(t, err, vfs.ErrNoXattr, "/data/file")
	}
	WantContent(t, fsys, "/data/file", FileData)
	// Directories and, through security.*, symlinks (not followed).
	must(t, xw.SetXattr("/data", "user.dir", []byte("d")))
	want("/data", map[string]string{"user.dir": "d"})
	must(t, xw.SetXattr("/links/abs", "security.selinux", []byte("system_u:object_r:etc_t:s0\x00")))
	if xr != nil {
		if _, err := xr.GetXattr("/data/file", "security.selinux"); !errors.Is(err, vfs.ErrNoXattr) {
			t.Errorf("the symlink's label reached its target: %v", err)
		}
		// Readers do not follow a final symlink either: the link's own label.
		if v, err := xr.GetXattr("/links/abs", "security.selinux"); err != nil || string(v) != "system_u:object_r:etc_t:s0\x00" {
			t.Errorf("GetXattr(/links/abs): %q, %v; want the link's own label", v, err)
		}
		if names, err := xr.ListXattr("/links/abs"); err != nil || !slices.Contains(names, "security.selinux") {
			t.Errorf("ListXattr(/links/abs): %v, %v; want the link's own label listed", names, err)
		}
	}
	// Refusals.
	WantErr(t, xw.SetXattr("/data/file", "nonamespace", []byte("x")), fs.ErrInvalid, "/data/file")
	WantErr(t, xw.SetXattr("/data/file", "user.", []byte("x")), fs.ErrInvalid, "/data/file")
	WantErr(t, xw.SetXattr("/data/file", "user."+strings.Repeat("n", 251), []byte("x")), fs.ErrInvalid, "/data/file")
	WantErr(t, xw.SetXattr("/data/file", "user.huge", make([]byte, vfs.MaxXattrValueLen+1)), fs.ErrInvalid, "/data/file")
	WantErr(t, xw.SetXattr("/nope", "user.x", []byte("x")), fs.ErrNotExist, "/nope")
	WantErr(t, xw.RemoveXattr("/nope", "user.x"), fs.ErrNotExist, "/nope")
}

func (s *suite) testSetTimes(t *testing.T, fsys vfs.FS) {
	ts, ok := fsys.(vfs.TimeSetter)
	if !ok {
		t.Logf("%T does not serve vfs.TimeSetter", fsys)
		return
	}
	at := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	mt := time.Date(2011, 12, 13, 14, 15, 16, 0, time.UTC)
	start := time.Now().Add(-2 * time.Second)
	must(t, ts.SetTimes("/data/file", at, mt))
	if fi, ok := lstat(t, fsys, "/data/file"); ok && !fi.ModTime.Equal(mt) {
		t.Errorf("mtime %v, want %v", fi.ModTime, mt)
	}
	if tr, ok := fsys.(TimesReader); ok {
		a, m, c, err := tr.Times("/data/file")
		if err != nil || !a.Equal(at) || !m.Equal(mt) || c.Before(start) {
			t.Errorf("Times(/data/file) = %v %v %v, %v; want %v %v and a ctime after %v", a, m, c, err, at, mt, start)
		}
	}
	// A final symlink is not followed.
	must(t, ts.SetTimes("/links/abs", mt, at))
	if fi, ok := lstat(t, fsys, "/links/abs"); ok && !fi.ModTime.Equal(at) {
		t.Errorf("symlink mtime %v, want %v", fi.ModTime, at)
	}
	if fi, ok := lstat(t, fsys, "/data/file"); ok && !fi.ModTime.Equal(mt) {
		t.Errorf("SetTimes on a symlink changed its target: mtime %v", fi.ModTime)
	}
	must(t, ts.SetTimes("/data", at, at))
	if fi, ok := lstat(t, fsys, "/data"); ok && !fi.ModTime.Equal(at) {
		t.Errorf("directory mtime %v, want %v", fi.ModTime, at)
	}
	// Before 1970 and after 2038 where the backend can hold them.
	old := time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)
	must(t, ts.SetTimes("/data/file", old, old))
	if fi, ok := lstat(t, fsys, "/data/file"); ok && !fi.ModTime.Equal(old) {
		t.Errorf("mtime %v, want %v", fi.ModTime, old)
	}
	WantErr(t, ts.SetTimes("/nope", at, mt), fs.ErrNotExist, "/nope")
}

func (s *suite) testTruncate(t *testing.T, fsys vfs.FS) {
	tr, ok := fsys.(vfs.Truncater)
	if !ok {
		t.Logf("%T does not serve vfs.Truncater", fsys)
		return
	}
	must(t, fsys.ReplaceFile("/tmp/t", []byte("hello world")))
	must(t, tr.Truncate("/tmp/t", 5))
	WantContent(t, fsys, "/tmp/t", "hello")
	must(t, tr.Truncate("/tmp/t", 9))
	WantContent(t, fsys, "/tmp/t", "hello\x00\x00\x00\x00")
	must(t, tr.Truncate("/tmp/t", 0))
	WantContent(t, fsys, "/tmp/t", "")
	// Shrink a multi-block file, then grow it far past its blocks: a hole.
	big := strings.Repeat("0123456789abcdef", 40000)
	must(t, fsys.ReplaceFile("/tmp/big", []byte(big)))
	must(t, tr.Truncate("/tmp/big", 70000))
	WantContent(t, fsys, "/tmp/big", big[:70000])
	must(t, tr.Truncate("/tmp/big", 3<<20))
	WantContent(t, fsys, "/tmp/big", big[:70000]+strings.Repeat("\x00", 3<<20-70000))
	if fi, ok := lstat(t, fsys, "/tmp/big"); ok && fi.Size != 3<<20 {
		t.Errorf("size %d after growing to %d", fi.Size, 3<<20)
	}
	// The same size leaves the content; a symlink is followed as by truncate(2).
	must(t, tr.Truncate("/links/abs", int64(len(FileData))))
	WantContent(t, fsys, "/data/file", FileData)
	must(t, tr.Truncate("/links/rel", 5))
	WantContent(t, fsys, "/data/file", FileData[:5])
	WantErr(t, tr.Truncate("/data", 0), vfs.ErrIsDir, "/data")
	WantErr(t, tr.Truncate("/tmp/none", 0), fs.ErrNotExist, "/tmp/none")
	WantErr(t, tr.Truncate("/links/dangling", 0), fs.ErrNotExist, "/links/dangling")
	WantErr(t, tr.Truncate("/tmp/t", -1), fs.ErrInvalid, "/tmp/t")
	WantExists(t, fsys, "/data/new", false)
}
