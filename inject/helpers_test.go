package inject

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/memfs"
)

// demoGuest is the committed demo guest root the tests load (read only).
const demoGuest = "../fixtures/demo-guest"

const demoKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAXmH5f3SRUnDJqFeVDiUqbx4C4gUbB9kve1m8r+o9i1 demo@guestinject"

// Valid public keys of other types (made with ssh-keygen; private halves discarded).
const (
	rsaKey   = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC5JTQFWMW/UrgJqmYrK6/afKoUtpCz5YMlr86goouxyKxrMu7+CcJdnlJ+g8zdYISKsV/p9FjUpggUzppmg/HYErnp5m2+WSmkJC1vd4zdmk5jyjMIb2ye44/KViZ8uHIQfUksVEEIT+0esAdY/O/W6bBnVeLmrNC4TgeNriP0TQ== rsa@test"
	ecdsaKey = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKVxkINlxnNgvwSgT2HTrYdrFnQV6oYeiVqi3SEWgrGGNjM24xDFB6/SuG8OylnqqUrDCa+87MjbbXkNQvo7rpo= ecdsa@test"
)

// modes and owners Debian gives the demo guest (git keeps none of them).
type attr struct {
	mode     fs.FileMode
	uid, gid int
}

var demoAttrs = map[string]attr{
	"/root":        {0o700, 0, 0},
	"/home/debian": {0o755, 1000, 1000},
	"/etc/shadow":  {0o640, 0, 42},
}

// guest is one backend holding a copy of the demo guest.
type guest struct {
	name string
	fs   vfs.FS
}

// demoFiles lists the demo guest: directories first by depth, then files.
func demoFiles(t *testing.T) (dirs, files []string) {
	t.Helper()
	err := filepath.WalkDir(demoGuest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(demoGuest, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, "/"+filepath.ToSlash(rel))
		} else {
			files = append(files, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs, files
}

func attrOf(p string, dir bool) attr {
	if a, ok := demoAttrs[p]; ok {
		return a
	}
	if dir {
		return attr{0o755, 0, 0}
	}
	return attr{0o644, 0, 0}
}

// memGuest loads the demo guest into a memfs.
func memGuest(t *testing.T) *memfs.FS {
	t.Helper()
	m := memfs.New()
	dirs, files := demoFiles(t)
	for _, d := range dirs {
		a := attrOf(d, true)
		must(t, m.Mkdir(d, a.mode, a.uid, a.gid))
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(demoGuest, f))
		must(t, err)
		a := attrOf(f, false)
		must(t, m.WriteFileAs(f, data, a.mode, a.uid, a.gid))
	}
	return m
}

// hostGuest copies the demo guest into a temporary host directory with
// Debian's modes and owners and returns the directory.
func hostGuest(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dirs, files := demoFiles(t)
	for _, d := range dirs {
		must(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(demoGuest, f))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(root, f), data, 0o644))
	}
	for p, a := range demoAttrs {
		hp := filepath.Join(root, p)
		must(t, os.Chmod(hp, a.mode))
		if os.Getuid() == 0 {
			must(t, os.Lchown(hp, a.uid, a.gid))
		}
	}
	return root
}

// guests returns every backend, each with a fresh demo guest.
func guests(t *testing.T) []guest {
	t.Helper()
	out := []guest{{"memfs", memGuest(t)}}
	for _, mk := range moreGuests {
		out = append(out, mk(t))
	}
	return out
}

// moreGuests makes the other backends' guests (registered by their files).
var moreGuests []func(t *testing.T) guest

// forEachGuest runs f on every backend as a subtest.
func forEachGuest(t *testing.T, f func(t *testing.T, g guest)) {
	for _, g := range guests(t) {
		t.Run(g.name, func(t *testing.T) { f(t, g) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func stat(t *testing.T, fsys vfs.FS, p string) vfs.FileInfo {
	t.Helper()
	fi, err := fsys.(vfs.Reader).Lstat(p)
	if err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return fi
}

// wantAttr checks p's permissions and owner.
func wantAttr(t *testing.T, fsys vfs.FS, p string, mode fs.FileMode, uid, gid uint32) {
	t.Helper()
	fi := stat(t, fsys, p)
	if fi.Mode&vfs.PermMask != mode || fi.UID != uid || fi.GID != gid {
		t.Errorf("%s: mode %v %d:%d, want %v %d:%d", p, fi.Mode&vfs.PermMask, fi.UID, fi.GID, mode, uid, gid)
	}
}

func read(t *testing.T, fsys vfs.FS, p string) string {
	t.Helper()
	b, err := fsys.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// snapshot describes every object of the guest (type, mode, owner, size,
// content, link target), to prove that nothing was written.
func snapshot(t *testing.T, fsys vfs.FS) string {
	t.Helper()
	r := fsys.(vfs.Reader)
	var lines []string
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := r.ReadDir(dir)
		must(t, err)
		for _, e := range ents {
			p := strings.TrimSuffix(dir, "/") + "/" + e.Name
			line := fmt.Sprintf("%s %v %d:%d -> %s", p, e.Mode, e.UID, e.GID, e.Target)
			if e.Mode.IsRegular() {
				line += " " + read(t, fsys, p)
			}
			lines = append(lines, line)
			if e.IsDir() {
				walk(p)
			}
		}
	}
	walk("/")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// wantErr checks that err wraps every target.
func wantErr(t *testing.T, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("error %q does not wrap %q", err, target)
		}
	}
}

func asItemError(err error, target **ItemError) bool { return errors.As(err, target) }

// removeTree removes p and everything below it through vfs.Remover.
func removeTree(fsys vfs.FS, p string) error {
	r := fsys.(vfs.Reader)
	ents, err := r.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		c := p + "/" + e.Name
		if e.IsDir() {
			err = removeTree(fsys, c)
		} else {
			err = fsys.(vfs.Remover).Remove(c)
		}
		if err != nil {
			return err
		}
	}
	return fsys.(vfs.Remover).Remove(p)
}

// findItemError returns the ItemError of kind k inside err (which may join
// several), or nil.
func findItemError(err error, k Kind) *ItemError {
	var ie *ItemError
	if errors.As(err, &ie) && ie.Kind == k {
		return ie
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if ie := findItemError(e, k); ie != nil {
				return ie
			}
		}
	}
	return nil
}
