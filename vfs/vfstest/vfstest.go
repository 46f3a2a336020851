// Package vfstest is the conformance suite every vfs.FS backend passes:
// the seven operations, the optional read side, symlink creation and
// removal, guest symlink semantics, and the attack cases of nova's
// CVE-2012-3447 / CVE-2012-3360 class expressed in guest terms (a backend
// with a host side adds host-side checks of its own).
//
// A backend's test calls Run with a constructor of empty guest roots; the
// suite fills each one with Populate before a case runs.
package vfstest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// The guest accounts Populate installs.
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"al:x:1000:1000:Al:/home/al:/bin/sh\n" +
		"svc:x:200:50::/srv:/bin/false\n"
	Group = "root:x:0:\nstaff:x:50:al\nal:x:1000:\n"
	// FileData is the content of /data/file.
	FileData = "hello guest\n"
	// ChainLen is the number of links in /chain/0 -> /chain/1 -> ... ->
	// /chain/<ChainLen-1> -> /data/file: resolving /chain/0 follows
	// ChainLen links, one more than vfs.MaxSymlinkHops allows.
	ChainLen = vfs.MaxSymlinkHops + 1
)

// Populate builds the suite's guest tree in an empty guest root:
//
//	/etc/passwd /etc/group      Passwd, Group
//	/home/al /tmp /data/file (FileData)      (no /root: attack cases make it)
//	/links/abs -> /data/file    /links/rel -> ../data/file
//	/links/dir -> /data         /links/up  -> ../../../../data/file
//	/links/dangling -> /data/new        (target's parent exists)
//	/links/nowhere  -> /missing/x       (target's parent missing)
//	/links/self -> self   /links/a -> b   /links/b -> a
//	/links/toolong -> /chain/0      /chain/i -> i+1, last -> /data/file
//
// It needs vfs.Symlinker.
func Populate(t testing.TB, fsys vfs.FS) {
	t.Helper()
	sl := symlinker(t, fsys)
	for _, d := range []string{"/etc", "/home/al", "/tmp", "/data", "/links", "/chain"} {
		must(t, fsys.MakePath(d))
	}
	must(t, fsys.ReplaceFile(vfs.PasswdPath, []byte(Passwd)))
	must(t, fsys.ReplaceFile(vfs.GroupPath, []byte(Group)))
	must(t, fsys.ReplaceFile("/data/file", []byte(FileData)))
	links := [][2]string{
		{"/data/file", "/links/abs"}, {"../data/file", "/links/rel"},
		{"/data", "/links/dir"}, {"../../../../data/file", "/links/up"},
		{"/data/new", "/links/dangling"}, {"/missing/x", "/links/nowhere"},
		{"self", "/links/self"}, {"b", "/links/a"}, {"a", "/links/b"},
		{"/chain/0", "/links/toolong"},
	}
	for i := 0; i < ChainLen-1; i++ {
		links = append(links, [2]string{fmt.Sprint(i + 1), fmt.Sprintf("/chain/%d", i)})
	}
	links = append(links, [2]string{"/data/file", fmt.Sprintf("/chain/%d", ChainLen-1)})
	for _, l := range links {
		must(t, sl.Symlink(l[0], l[1]))
	}
}

// Options adapt the suite to what a backend can do.
type Options struct {
	// NoChown: the backend cannot give objects away (a host directory
	// served by a process that is not root). New objects then belong to
	// UID:GID instead of root:root, and every SetOwnership that would
	// change an owner must fail with fs.ErrPermission.
	NoChown  bool
	UID, GID uint32
	// Race, when set, lets the attack cases change the backend's tree
	// between a path's resolution and the operation on it, as another
	// process writing a host directory can. A backend whose tree nothing
	// else can change (an image this process opened) leaves it nil and
	// those cases are skipped.
	Race *Racer
}

// Racer changes a backend's tree behind its back.
type Racer struct {
	// Hook installs h on fsys (nil removes it); the backend runs it once it
	// has resolved a path and before it acts on the object. op names the
	// step: "chmod", "chown", "append", "replace" before acting on an
	// existing object; "mkdir-made" and "symlink-made" between creating an
	// object and setting its mode and owner.
	Hook func(fsys vfs.FS, h func(op string))
	// LinkOutside replaces the object at guest path p (a file, a symlink or
	// an empty directory) with a hard link to a file outside the guest,
	// which no operation of the backend may change.
	LinkOutside func(t testing.TB, fsys vfs.FS, p string)
	// Outside describes that file (mode, owner, content) so the suite can
	// tell whether it changed.
	Outside func(t testing.TB, fsys vfs.FS) string
}

// suite is one run's options.
type suite struct{ opts Options }

// Run runs the whole suite; newFS returns an empty guest root (only "/")
// each time it is called. The backend must serve vfs.Symlinker (to build
// the tree); the Reader and Remover cases run when it serves those.
func Run(t *testing.T, newFS func(t *testing.T) vfs.FS) {
	RunOptions(t, newFS, Options{})
}

// RunOptions is Run for a backend that needs Options.
func RunOptions(t *testing.T, newFS func(t *testing.T) vfs.FS, opts Options) {
	s := &suite{opts}
	cases := []struct {
		name string
		fn   func(t *testing.T, fsys vfs.FS)
	}{
		{"MakePath", s.testMakePath},
		{"AppendFile", s.testAppendFile},
		{"ReplaceFile", s.testReplaceFile},
		{"ReadFile", s.testReadFile},
		{"HasFile", s.testHasFile},
		{"SetPermissions", s.testSetPermissions},
		{"SetOwnership", s.testSetOwnership},
		{"InvalidPaths", s.testInvalidPaths},
		{"Symlinks", s.testSymlinks},
		{"Reader", s.testReader},
		{"Remover", s.testRemover},
		{"AttackSSHToEtc", s.attackSSHToEtc},
		{"AttackSSHRelativeEscape", s.attackSSHRelative},
		{"AttackRootIsSlash", s.attackRootIsSlash},
		{"AttackRootIsDotDot", s.attackRootIsDotDot},
		{"AttackNetworkOut", s.attackNetworkOut},
		{"AttackLoops", s.attackLoops},
		{"AttackDotDotPaths", s.attackDotDot},
		{"AttackDangling", s.attackDangling},
		{"AttackSwapLastComponent", s.attackSwap},
		{"AttackHardLinkSwap", s.attackHardLinkSwap},
	}
	for _, c := range s.customCases() {
		cases = append(cases, struct {
			name string
			fn   func(t *testing.T, fsys vfs.FS)
		}{c.name, c.fn})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := newFS(t)
			Populate(t, fsys)
			c.fn(t, fsys)
		})
	}
}

// RunReadOnly runs the cases that only read on fsys, which must already
// hold Populate's tree: a read-only backend's image can be made by
// Populate through vfs/local into a host directory, then "mke2fs -d" of it.
func RunReadOnly(t *testing.T, fsys vfs.FS, opts Options) {
	s := &suite{opts}
	cases := []struct {
		name string
		fn   func(t *testing.T, fsys vfs.FS)
	}{
		{"Populated", s.testPopulated},
		{"ReadFile", s.testReadFile},
		{"HasFile", s.testHasFile},
		{"Reader", s.testReader},
		{"InvalidPaths", s.testReadInvalidPaths},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, fsys) })
	}
}

func symlinker(t testing.TB, fsys vfs.FS) vfs.Symlinker {
	t.Helper()
	sl, ok := fsys.(vfs.Symlinker)
	if !ok {
		t.Fatalf("%T does not serve vfs.Symlinker, which the suite needs", fsys)
	}
	return sl
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// WantErr fails t unless err matches target with errors.Is and is an
// *fs.PathError naming the guest path p.
func WantErr(t testing.TB, err, target error, p string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %.200v, want %v", short(p), err, target)
		return
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != p {
		t.Errorf("%s: error %.200v does not carry the guest path", short(p), err)
	}
}

// WantContent fails t unless p reads back as want.
func WantContent(t testing.TB, fsys vfs.FS, p, want string) {
	t.Helper()
	got, err := fsys.ReadFile(p)
	if err != nil {
		t.Errorf("ReadFile(%s): %v", p, err)
		return
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("ReadFile(%s) = %q, want %q", p, got, want)
	}
}

// WantExists fails t unless HasFile(p) answers want without error.
func WantExists(t testing.TB, fsys vfs.FS, p string, want bool) {
	t.Helper()
	got, err := fsys.HasFile(p)
	if err != nil || got != want {
		t.Errorf("HasFile(%s) = %v, %v; want %v", p, got, err, want)
	}
}

// stat returns p's FileInfo when the backend serves vfs.Reader.
func stat(t testing.TB, fsys vfs.FS, p string, follow bool) (vfs.FileInfo, bool) {
	t.Helper()
	r, ok := fsys.(vfs.Reader)
	if !ok {
		return vfs.FileInfo{}, false
	}
	var fi vfs.FileInfo
	var err error
	if follow {
		fi, err = r.Stat(p)
	} else {
		fi, err = r.Lstat(p)
	}
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return fi, true
}

// wantMode checks p's mode and owner when the backend serves vfs.Reader.
func (s *suite) wantMode(t testing.TB, fsys vfs.FS, p string, mode fs.FileMode, uid, gid uint32) {
	t.Helper()
	if fi, ok := stat(t, fsys, p, true); ok && fi.Mode != mode {
		t.Errorf("%s: mode %v, want %v", p, fi.Mode, mode)
	}
	s.wantOwner(t, fsys, p, uid, gid)
}

// wantOwner checks p's owner when the backend serves vfs.Reader. Under
// NoChown every object belongs to the process's ids.
func (s *suite) wantOwner(t testing.TB, fsys vfs.FS, p string, uid, gid uint32) {
	t.Helper()
	if s.opts.NoChown {
		uid, gid = s.opts.UID, s.opts.GID
	}
	if fi, ok := stat(t, fsys, p, true); ok && (fi.UID != uid || fi.GID != gid) {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, fi.UID, fi.GID, uid, gid)
	}
}

// chown sets p's owner by names and checks the ids it gets; under NoChown
// a change must be refused with fs.ErrPermission instead.
func (s *suite) chown(t testing.TB, fsys vfs.FS, p, user, group string, uid, gid uint32) {
	t.Helper()
	err := fsys.SetOwnership(p, user, group)
	if s.opts.NoChown && (user != "" && uid != s.opts.UID || group != "" && gid != s.opts.GID) {
		WantErr(t, err, fs.ErrPermission, p)
		return
	}
	if err != nil {
		t.Errorf("SetOwnership(%s, %q, %q): %v", p, user, group, err)
		return
	}
	s.wantOwner(t, fsys, p, uid, gid)
}

// short keeps test messages readable for the over-long paths.
func short(p string) string {
	if len(p) > 60 {
		return fmt.Sprintf("%.60q...(%d bytes)", p, len(p))
	}
	return p
}

// rootUID is the owner new objects get.
func (s *suite) rootUID() uint32 {
	if s.opts.NoChown {
		return s.opts.UID
	}
	return 0
}
