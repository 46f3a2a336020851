package vfs_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/memfs"
)

const testPasswd = `# comment line
root:x:0:0:root:/root:/bin/bash

+nisuser::::::
-excluded::::::
broken line without colons
short:x:5:5
baduid:x:notanumber:5::/:/bin/sh
hugeuid:x:4294967295:5::/:/bin/sh
al:x:1000:1001:Al,,,:/home/al:/bin/zsh
al:x:2000:2000::/elsewhere:/bin/sh
1234:x:77:77::/n:/bin/sh
crlf:x:9:9::/c:/bin/sh` + "\r\n"

const testGroup = `root:x:0:
# wheel:x:10:
staff:x:50:al,bo
toomany:x:51:al:extra
555:x:56:
`

func guest(t *testing.T, passwd, group string) vfs.FS {
	t.Helper()
	f := memfs.New()
	if err := f.MakePath("/etc"); err != nil {
		t.Fatal(err)
	}
	if passwd != "" {
		if err := f.ReplaceFile(vfs.PasswdPath, []byte(passwd)); err != nil {
			t.Fatal(err)
		}
	}
	if group != "" {
		if err := f.ReplaceFile(vfs.GroupPath, []byte(group)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestLookupUser(t *testing.T) {
	f := guest(t, testPasswd, testGroup)
	tests := []struct {
		name string
		want vfs.User
		err  error
	}{
		{"root", vfs.User{"root", 0, 0, "/root", "/bin/bash"}, nil},
		{"al", vfs.User{"al", 1000, 1001, "/home/al", "/bin/zsh"}, nil}, // first line wins
		{"1234", vfs.User{"1234", 77, 77, "/n", "/bin/sh"}, nil},
		{"crlf", vfs.User{"crlf", 9, 9, "/c", "/bin/sh"}, nil},
		{"nobody", vfs.User{}, vfs.ErrUnknownUser},
		{"short", vfs.User{}, vfs.ErrUnknownUser},
		{"baduid", vfs.User{}, vfs.ErrUnknownUser},
		{"hugeuid", vfs.User{}, vfs.ErrUnknownUser},
		{"+nisuser", vfs.User{}, vfs.ErrUnknownUser},
		{"", vfs.User{}, vfs.ErrUnknownUser},
		{"# comment line", vfs.User{}, vfs.ErrUnknownUser},
	}
	for _, tc := range tests {
		got, err := vfs.LookupUser(f, tc.name)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("LookupUser(%q) error = %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("LookupUser(%q) = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestLookupGroup(t *testing.T) {
	f := guest(t, testPasswd, testGroup)
	if g, err := vfs.LookupGroup(f, "staff"); err != nil || g != (vfs.Group{"staff", 50}) {
		t.Errorf("staff = %+v, %v", g, err)
	}
	for _, name := range []string{"wheel", "toomany", "nogroup", "# wheel"} {
		if _, err := vfs.LookupGroup(f, name); !errors.Is(err, vfs.ErrUnknownGroup) {
			t.Errorf("LookupGroup(%q) error = %v, want ErrUnknownGroup", name, err)
		}
	}
}

func TestMissingDatabases(t *testing.T) {
	f := guest(t, "", "")
	_, err := vfs.LookupUser(f, "root")
	if !errors.Is(err, vfs.ErrUnknownUser) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no passwd: %v, want ErrUnknownUser and fs.ErrNotExist", err)
	}
	_, err = vfs.LookupGroup(f, "root")
	if !errors.Is(err, vfs.ErrUnknownGroup) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no group: %v, want ErrUnknownGroup and fs.ErrNotExist", err)
	}
	// Numeric ids need no database, as with chown(1).
	uid, gid, err := vfs.ResolveOwner(f, "0", "42")
	if err != nil || uid != 0 || gid != 42 {
		t.Errorf("ResolveOwner(0, 42) = %d, %d, %v", uid, gid, err)
	}
}

func TestResolveOwner(t *testing.T) {
	f := guest(t, testPasswd, testGroup)
	tests := []struct {
		user, group string
		uid, gid    int
		err         error
	}{
		{"al", "staff", 1000, 50, nil},
		{"", "", -1, -1, nil},
		{"al", "", 1000, -1, nil},
		{"", "staff", -1, 50, nil},
		{"4321", "99", 4321, 99, nil}, // numeric, absent from the databases
		{"1234", "555", 77, 56, nil},  // a numeric-looking name wins, as in chown(1)
		{"4294967294", "", 4294967294, -1, nil},
		{"4294967295", "", -1, -1, vfs.ErrUnknownUser}, // (uid_t)-1 is no id
		{"99999999999999999999", "", -1, -1, vfs.ErrUnknownUser},
		{"-1", "", -1, -1, vfs.ErrUnknownUser},
		{"+5", "", -1, -1, vfs.ErrUnknownUser},
		{"ghost", "staff", -1, -1, vfs.ErrUnknownUser},
		{"al", "ghosts", -1, -1, vfs.ErrUnknownGroup},
	}
	for _, tc := range tests {
		uid, gid, err := vfs.ResolveOwner(f, tc.user, tc.group)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ResolveOwner(%q, %q) error = %v, want %v", tc.user, tc.group, err, tc.err)
			}
			continue
		}
		if err != nil || uid != tc.uid || gid != tc.gid {
			t.Errorf("ResolveOwner(%q, %q) = %d, %d, %v; want %d, %d", tc.user, tc.group, uid, gid, err, tc.uid, tc.gid)
		}
	}
}

func TestAccountLimits(t *testing.T) {
	long := "big:x:1:1::/" + strings.Repeat("a", vfs.MaxAccountLineLen) + ":/bin/sh\n"
	f := guest(t, long+"ok:x:2:2::/:/bin/sh\n", testGroup)
	if _, err := vfs.LookupUser(f, "big"); !errors.Is(err, vfs.ErrUnknownUser) {
		t.Errorf("over-long line not skipped: %v", err)
	}
	if u, err := vfs.LookupUser(f, "ok"); err != nil || u.UID != 2 {
		t.Errorf("line after an over-long one: %+v, %v", u, err)
	}
	huge := strings.Repeat("#\n", vfs.MaxAccountFileSize/2+1)
	f = guest(t, huge, testGroup)
	if _, err := vfs.LookupUser(f, "root"); !errors.Is(err, vfs.ErrUnknownUser) {
		t.Errorf("oversized passwd: %v", err)
	}
}

func TestAccountsThroughGuestSymlink(t *testing.T) {
	f := memfs.New()
	for _, d := range []string{"/etc", "/usr/share/base"} {
		if err := f.MakePath(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.ReplaceFile("/usr/share/base/passwd", []byte("svc:x:300:300::/:/bin/false\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Symlink("../usr/share/base/passwd", "/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	if u, err := vfs.LookupUser(f, "svc"); err != nil || u.UID != 300 {
		t.Fatalf("passwd through a guest symlink: %+v, %v", u, err)
	}
}

func FuzzLookupUser(f *testing.F) {
	f.Add([]byte(testPasswd), "al")
	f.Add([]byte("a:b:c:d:e:f:g\n"), "a")
	f.Fuzz(func(t *testing.T, passwd []byte, name string) {
		g := memfs.New()
		_ = g.MakePath("/etc")
		_ = g.ReplaceFile(vfs.PasswdPath, passwd)
		u, err := vfs.LookupUser(g, name)
		if err == nil && (u.Name != name || u.UID < 0 || u.UID > 1<<32-2) {
			t.Fatalf("bad user %+v for %q", u, name)
		}
		if err != nil && !errors.Is(err, vfs.ErrUnknownUser) {
			t.Fatalf("error %v is not ErrUnknownUser", err)
		}
	})
}
