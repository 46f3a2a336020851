package vfstest

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

func (s *suite) testMakePath(t *testing.T, fsys vfs.FS) {
	must(t, fsys.MakePath("/a/b/c"))
	for _, d := range []string{"/a", "/a/b", "/a/b/c"} {
		s.wantMode(t, fsys, d, fs.ModeDir|0o755, 0, 0)
	}
	must(t, fsys.MakePath("/a/b/c")) // existing: no error
	must(t, fsys.MakePath("/"))
	must(t, fsys.MakePath("/a/./b//d/"))
	WantExists(t, fsys, "/a/b/d", true)
	must(t, fsys.MakePath("/a/x/../y"))
	WantExists(t, fsys, "/a/y", true)
	// Through a symlinked directory: made inside its target.
	must(t, fsys.MakePath("/links/dir/sub/deeper"))
	WantExists(t, fsys, "/data/sub/deeper", true)
	WantErr(t, fsys.MakePath("/data/file"), vfs.ErrNotDir, "/data/file")
	WantErr(t, fsys.MakePath("/data/file/x"), vfs.ErrNotDir, "/data/file/x")
	WantErr(t, fsys.MakePath("/links/abs"), vfs.ErrNotDir, "/links/abs")
	// A dangling symlink is in the way, as mkdir(2) says.
	WantErr(t, fsys.MakePath("/links/dangling"), fs.ErrExist, "/links/dangling")
	WantExists(t, fsys, "/data/new", false)
	WantErr(t, fsys.MakePath("/links/self/x"), vfs.ErrTooManyLinks, "/links/self/x")
}

func (s *suite) testAppendFile(t *testing.T, fsys vfs.FS) {
	must(t, fsys.AppendFile("/tmp/f", []byte("one\n")))
	s.wantMode(t, fsys, "/tmp/f", 0o644, 0, 0)
	must(t, fsys.AppendFile("/tmp/f", []byte("two\n")))
	must(t, fsys.AppendFile("/tmp/f", nil))
	WantContent(t, fsys, "/tmp/f", "one\ntwo\n")
	must(t, fsys.AppendFile("/links/abs", []byte("more\n")))
	WantContent(t, fsys, "/data/file", FileData+"more\n")
	must(t, fsys.AppendFile("/links/dir/g", []byte("g")))
	WantContent(t, fsys, "/data/g", "g")
	WantErr(t, fsys.AppendFile("/nodir/f", []byte("x")), fs.ErrNotExist, "/nodir/f")
	WantErr(t, fsys.AppendFile("/data", []byte("x")), vfs.ErrIsDir, "/data")
	WantErr(t, fsys.AppendFile("/links/dir", []byte("x")), vfs.ErrIsDir, "/links/dir")
	WantErr(t, fsys.AppendFile("/", []byte("x")), vfs.ErrIsDir, "/")
	WantErr(t, fsys.AppendFile("/data/file/x", []byte("x")), vfs.ErrNotDir, "/data/file/x")
	// An existing file keeps its mode and owner.
	must(t, fsys.SetPermissions("/tmp/f", 0o600))
	s.chown(t, fsys, "/tmp/f", "al", "staff", 1000, 50)
	must(t, fsys.AppendFile("/tmp/f", []byte("3")))
	s.wantMode(t, fsys, "/tmp/f", 0o600, 1000, 50)
}

func (s *suite) testReplaceFile(t *testing.T, fsys vfs.FS) {
	must(t, fsys.ReplaceFile("/tmp/r", []byte("a long first content")))
	s.wantMode(t, fsys, "/tmp/r", 0o644, 0, 0)
	must(t, fsys.SetPermissions("/tmp/r", 0o640))
	s.chown(t, fsys, "/tmp/r", "svc", "", 200, 0)
	before, hasReader := stat(t, fsys, "/tmp/r", false)
	must(t, fsys.ReplaceFile("/tmp/r", []byte("short")))
	WantContent(t, fsys, "/tmp/r", "short")
	s.wantMode(t, fsys, "/tmp/r", 0o640, 200, 0)
	if after, _ := stat(t, fsys, "/tmp/r", false); hasReader && after.Ino != before.Ino {
		t.Errorf("ReplaceFile changed the inode: %d -> %d", before.Ino, after.Ino)
	}
	must(t, fsys.ReplaceFile("/tmp/r", nil))
	WantContent(t, fsys, "/tmp/r", "")
	must(t, fsys.ReplaceFile("/links/rel", []byte("via rel")))
	WantContent(t, fsys, "/data/file", "via rel")
	WantErr(t, fsys.ReplaceFile("/data", []byte("x")), vfs.ErrIsDir, "/data")
	WantErr(t, fsys.ReplaceFile("/", []byte("x")), vfs.ErrIsDir, "/")
	WantErr(t, fsys.ReplaceFile("/nodir/f", []byte("x")), fs.ErrNotExist, "/nodir/f")
	big := strings.Repeat("0123456789abcdef", 70000) // > 1 MiB, several blocks
	must(t, fsys.ReplaceFile("/tmp/big", []byte(big)))
	WantContent(t, fsys, "/tmp/big", big)
}

func (s *suite) testReadFile(t *testing.T, fsys vfs.FS) {
	WantContent(t, fsys, "/data/file", FileData)
	WantContent(t, fsys, "/links/abs", FileData)
	WantContent(t, fsys, "/links/rel", FileData)
	WantContent(t, fsys, "/links/up", FileData)
	WantContent(t, fsys, "/links/dir/file", FileData)
	WantContent(t, fsys, "/links/dir/../data/file", FileData) // ".." of the link's target
	WantContent(t, fsys, "/chain/1", FileData)                // exactly MaxSymlinkHops
	WantErr(t, readErr(fsys, "/chain/0"), vfs.ErrTooManyLinks, "/chain/0")
	WantErr(t, readErr(fsys, "/links/toolong"), vfs.ErrTooManyLinks, "/links/toolong")
	WantErr(t, readErr(fsys, "/nope"), fs.ErrNotExist, "/nope")
	WantErr(t, readErr(fsys, "/nope/deeper"), fs.ErrNotExist, "/nope/deeper")
	WantErr(t, readErr(fsys, "/data"), vfs.ErrIsDir, "/data")
	WantErr(t, readErr(fsys, "/data/file/x"), vfs.ErrNotDir, "/data/file/x")
	WantErr(t, readErr(fsys, "/links/dangling"), fs.ErrNotExist, "/links/dangling")
	WantErr(t, readErr(fsys, "/links/self"), vfs.ErrTooManyLinks, "/links/self")
	WantErr(t, readErr(fsys, "/links/a"), vfs.ErrTooManyLinks, "/links/a")
}

func readErr(fsys vfs.FS, p string) error {
	_, err := fsys.ReadFile(p)
	return err
}

func (s *suite) testHasFile(t *testing.T, fsys vfs.FS) {
	for _, p := range []string{"/", "/data", "/data/file", "/links/abs", "/links/dir/file", "/links/up", "/chain/1"} {
		WantExists(t, fsys, p, true)
	}
	for _, p := range []string{"/nope", "/nope/x", "/data/file/x", "/links/dangling", "/links/nowhere"} {
		WantExists(t, fsys, p, false)
	}
	for _, p := range []string{"/links/self", "/links/a", "/chain/0"} {
		ok, err := fsys.HasFile(p)
		if ok {
			t.Errorf("HasFile(%s) = true for a loop", p)
		}
		WantErr(t, err, vfs.ErrTooManyLinks, p)
	}
}

func (s *suite) testSetPermissions(t *testing.T, fsys vfs.FS) {
	must(t, fsys.SetPermissions("/data/file", 0o600))
	s.wantMode(t, fsys, "/data/file", 0o600, 0, 0)
	must(t, fsys.SetPermissions("/data/file", fs.ModeSetuid|fs.ModeSetgid|0o755))
	s.wantMode(t, fsys, "/data/file", fs.ModeSetuid|fs.ModeSetgid|0o755, 0, 0)
	must(t, fsys.SetPermissions("/tmp", fs.ModeSticky|0o777))
	s.wantMode(t, fsys, "/tmp", fs.ModeDir|fs.ModeSticky|0o777, 0, 0)
	// Through a symlink: the target changes, the link does not.
	must(t, fsys.SetPermissions("/links/abs", 0o400))
	s.wantMode(t, fsys, "/data/file", 0o400, 0, 0)
	if fi, ok := stat(t, fsys, "/links/abs", false); ok && fi.Mode.Type() != fs.ModeSymlink {
		t.Errorf("/links/abs is no longer a symlink: %v", fi.Mode)
	}
	WantErr(t, fsys.SetPermissions("/nope", 0o644), fs.ErrNotExist, "/nope")
	WantErr(t, fsys.SetPermissions("/links/dangling", 0o644), fs.ErrNotExist, "/links/dangling")
	WantErr(t, fsys.SetPermissions("/links/self", 0o644), vfs.ErrTooManyLinks, "/links/self")
	WantErr(t, fsys.SetPermissions("/data/file", fs.ModeDir|0o644), fs.ErrInvalid, "/data/file")
	WantExists(t, fsys, "/data/new", false)
}

func (s *suite) testSetOwnership(t *testing.T, fsys vfs.FS) {
	s.chown(t, fsys, "/data/file", "al", "staff", 1000, 50)
	s.chown(t, fsys, "/data/file", "", "root", 1000, 0)
	s.chown(t, fsys, "/data/file", "svc", "", 200, 0)
	s.chown(t, fsys, "/data/file", "4242", "4343", 4242, 4343) // numeric, in no database
	s.chown(t, fsys, "/data/file", "", "", 4242, 4343)
	s.chown(t, fsys, "/links/dir", "al", "al", 1000, 1000) // follows the link
	s.wantMode(t, fsys, "/data", fs.ModeDir|0o755, 1000, 1000)
	if fi, ok := stat(t, fsys, "/links/dir", false); ok && fi.Mode.Type() != fs.ModeSymlink {
		t.Errorf("/links/dir is no longer a symlink")
	}
	WantErr(t, fsys.SetOwnership("/data/file", "mallory", ""), vfs.ErrUnknownUser, "/data/file")
	WantErr(t, fsys.SetOwnership("/data/file", "", "wheel"), vfs.ErrUnknownGroup, "/data/file")
	s.wantMode(t, fsys, "/data/file", 0o644, 4242, 4343) // refused: nothing changed
	WantErr(t, fsys.SetOwnership("/nope", "al", ""), fs.ErrNotExist, "/nope")
	WantErr(t, fsys.SetOwnership("/links/a", "al", ""), vfs.ErrTooManyLinks, "/links/a")
}

func (s *suite) testInvalidPaths(t *testing.T, fsys vfs.FS) {
	bad := []string{"", "relative", "data/file", "/nul\x00byte", "/" + strings.Repeat("n", vfs.MaxNameLen+1),
		"/" + strings.Repeat("d/", vfs.MaxPathLen/2+1)}
	for _, p := range bad {
		WantErr(t, fsys.MakePath(p), vfs.ErrInvalidPath, p)
		WantErr(t, fsys.AppendFile(p, nil), vfs.ErrInvalidPath, p)
		WantErr(t, fsys.ReplaceFile(p, nil), vfs.ErrInvalidPath, p)
		WantErr(t, readErr(fsys, p), vfs.ErrInvalidPath, p)
		_, err := fsys.HasFile(p)
		WantErr(t, err, vfs.ErrInvalidPath, p)
		WantErr(t, fsys.SetPermissions(p, 0o644), vfs.ErrInvalidPath, p)
		WantErr(t, fsys.SetOwnership(p, "root", ""), vfs.ErrInvalidPath, p)
	}
	if r, ok := fsys.(vfs.Reader); ok {
		_, err := r.Stat("rel")
		WantErr(t, err, vfs.ErrInvalidPath, "rel")
	}
}

// testReadInvalidPaths is the read side of testInvalidPaths.
func (s *suite) testReadInvalidPaths(t *testing.T, fsys vfs.FS) {
	for _, p := range []string{"", "relative", "/nul\x00byte", "/" + strings.Repeat("n", vfs.MaxNameLen+1)} {
		WantErr(t, readErr(fsys, p), vfs.ErrInvalidPath, p)
		_, err := fsys.HasFile(p)
		WantErr(t, err, vfs.ErrInvalidPath, p)
		if r, ok := fsys.(vfs.Reader); ok {
			_, err := r.Lstat(p)
			WantErr(t, err, vfs.ErrInvalidPath, p)
		}
	}
}

// testPopulated checks the tree Populate made, modes and owners included.
func (s *suite) testPopulated(t *testing.T, fsys vfs.FS) {
	WantContent(t, fsys, vfs.PasswdPath, Passwd)
	WantContent(t, fsys, vfs.GroupPath, Group)
	for _, d := range []string{"/", "/etc", "/home/al", "/tmp", "/data", "/links", "/chain"} {
		s.wantMode(t, fsys, d, fs.ModeDir|0o755, 0, 0)
	}
	s.wantMode(t, fsys, "/data/file", 0o644, 0, 0)
}

func (s *suite) testSymlinks(t *testing.T, fsys vfs.FS) {
	sl := symlinker(t, fsys)
	must(t, sl.Symlink("../data/file", "/tmp/l"))
	WantContent(t, fsys, "/tmp/l", FileData)
	WantErr(t, sl.Symlink("x", "/tmp/l"), fs.ErrExist, "/tmp/l")
	WantErr(t, sl.Symlink("x", "/links/dangling"), fs.ErrExist, "/links/dangling")
	WantErr(t, sl.Symlink("x", "/data/file"), fs.ErrExist, "/data/file")
	WantErr(t, sl.Symlink("x", "/nodir/l"), fs.ErrNotExist, "/nodir/l")
	WantErr(t, sl.Symlink("", "/tmp/empty"), vfs.ErrInvalidPath, "/tmp/empty")
	WantErr(t, sl.Symlink("a\x00b", "/tmp/nul"), vfs.ErrInvalidPath, "/tmp/nul")
	// A symlink inside a symlinked directory lands in the target.
	must(t, sl.Symlink("file", "/links/dir/l2"))
	WantContent(t, fsys, "/data/l2", FileData)
	if r, ok := fsys.(vfs.Reader); ok {
		got, err := r.Readlink("/tmp/l")
		if err != nil || got != "../data/file" {
			t.Errorf("Readlink(/tmp/l) = %q, %v", got, err)
		}
	}
}

func (s *suite) testReader(t *testing.T, fsys vfs.FS) {
	r, ok := fsys.(vfs.Reader)
	if !ok {
		t.Logf("%T does not serve vfs.Reader", fsys)
		return
	}
	fi, err := r.Stat("/links/abs")
	must(t, err)
	if fi.Mode != 0o644 || fi.Size != int64(len(FileData)) || fi.Name != "abs" || fi.UID != s.rootUID() {
		t.Errorf("Stat(/links/abs) = %+v, want the target /data/file", fi)
	}
	fi, err = r.Lstat("/links/abs")
	must(t, err)
	if fi.Mode.Type() != fs.ModeSymlink || fi.Target != "/data/file" || fi.Name != "abs" {
		t.Errorf("Lstat(/links/abs) = %+v, want the link", fi)
	}
	fi, err = r.Stat("/")
	must(t, err)
	if !fi.IsDir() || fi.Mode.Perm() != 0o755 {
		t.Errorf("Stat(/) = %+v", fi)
	}
	_, err = r.Stat("/links/dangling")
	WantErr(t, err, fs.ErrNotExist, "/links/dangling")
	fi, err = r.Lstat("/links/dangling")
	if err != nil || fi.Target != "/data/new" {
		t.Errorf("Lstat of a dangling link = %+v, %v", fi, err)
	}
	_, err = r.Stat("/links/self")
	WantErr(t, err, vfs.ErrTooManyLinks, "/links/self")
	s.testReadDir(t, r)
	link, err := r.Readlink("/links/up")
	if err != nil || link != "../../../../data/file" {
		t.Errorf("Readlink(/links/up) = %q, %v", link, err)
	}
	_, err = r.Readlink("/data/file")
	WantErr(t, err, fs.ErrInvalid, "/data/file")
	_, err = r.Readlink("/nope")
	WantErr(t, err, fs.ErrNotExist, "/nope")
}

func (s *suite) testReadDir(t *testing.T, r vfs.Reader) {
	ents, err := r.ReadDir("/links/dir") // follows the link to /data
	must(t, err)
	if len(ents) != 1 || ents[0].Name != "file" || ents[0].Size != int64(len(FileData)) {
		t.Errorf("ReadDir(/links/dir) = %+v", ents)
	}
	ents, err = r.ReadDir("/links")
	must(t, err)
	want := []string{"a", "abs", "b", "dangling", "dir", "nowhere", "rel", "self", "toolong", "up"}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name)
		if e.Mode.Type() != fs.ModeSymlink || e.Target == "" {
			t.Errorf("ReadDir entry %+v: want a symlink with its target", e)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ReadDir(/links) names = %v, want %v", got, want)
	}
	_, err = r.ReadDir("/data/file")
	WantErr(t, err, vfs.ErrNotDir, "/data/file")
	_, err = r.ReadDir("/nope")
	WantErr(t, err, fs.ErrNotExist, "/nope")
}

func (s *suite) testRemover(t *testing.T, fsys vfs.FS) {
	rm, ok := fsys.(vfs.Remover)
	if !ok {
		t.Logf("%T does not serve vfs.Remover", fsys)
		return
	}
	must(t, rm.Remove("/links/abs")) // the link, not its target
	WantExists(t, fsys, "/links/abs", false)
	WantContent(t, fsys, "/data/file", FileData)
	must(t, rm.Remove("/links/dangling"))
	must(t, rm.Remove("/links/self"))
	WantErr(t, rm.Remove("/links/self"), fs.ErrNotExist, "/links/self")
	WantErr(t, rm.Remove("/data"), fs.ErrExist, "/data") // not empty
	must(t, rm.Remove("/links/dir/file"))                // through a symlinked parent
	WantExists(t, fsys, "/data/file", false)
	must(t, rm.Remove("/data"))
	WantExists(t, fsys, "/data", false)
	WantErr(t, rm.Remove("/"), fs.ErrInvalid, "/")
	WantErr(t, rm.Remove("rel"), vfs.ErrInvalidPath, "rel")
}
