package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// mapTree is a tiny vfs.Tree: objects keyed by canonical path, handles are
// those paths.
type mapTree map[string]mapNode

type mapNode struct {
	typ    fs.FileMode
	target string
}

func (m mapTree) Root() (string, error) { return "/", nil }

func (m mapTree) Lookup(dir, name string) (string, error) {
	p := strings.TrimSuffix(dir, "/") + "/" + name
	if _, ok := m[p]; !ok {
		return "", fs.ErrNotExist
	}
	return p, nil
}

func (m mapTree) Type(n string) (fs.FileMode, error) { return m[n].typ, nil }

func (m mapTree) Readlink(n string) (string, error) { return m[n].target, nil }

func tDir() mapNode                       { return mapNode{typ: fs.ModeDir} }
func tFile() mapNode                      { return mapNode{} }
func tLink(target string) mapNode         { return mapNode{typ: fs.ModeSymlink, target: target} }
func (m mapTree) add(p string, n mapNode) { m[p] = n }

// testTree:
//
//	/a/b/file            /a/fifo (a regular stand-in)
//	/l/abs -> /a/b/file  /l/rel -> ../a/b/file   /l/up -> ../../../../a/b
//	/l/dir -> /a         /l/dangling -> /a/new   /l/nowhere -> /missing/x
//	/l/self -> self      /l/x -> y, /l/y -> x    /l/empty -> ""
//	/l/nul -> "a\0b"     /l/long -> 4097 bytes   /l/dotdir -> .
//	/l/root -> /         /l/rootup -> /../../..
//	/c/0 -> 1 -> ... -> /c/40 -> /a/b/file  (41 links from /c/0)
func testTree() mapTree {
	m := mapTree{"/": tDir()}
	for _, d := range []string{"/a", "/a/b", "/l", "/c"} {
		m.add(d, tDir())
	}
	m.add("/a/b/file", tFile())
	links := map[string]string{
		"/l/abs": "/a/b/file", "/l/rel": "../a/b/file", "/l/up": "../../../../a/b",
		"/l/dir": "/a", "/l/dangling": "/a/new", "/l/nowhere": "/missing/x",
		"/l/self": "self", "/l/x": "y", "/l/y": "x", "/l/empty": "",
		"/l/nul": "a\x00b", "/l/long": "/" + strings.Repeat("a", MaxPathLen),
		"/l/dotdir": ".", "/l/root": "/", "/l/rootup": "/../../..",
	}
	for p, target := range links {
		m.add(p, tLink(target))
	}
	for i := 0; i < MaxSymlinkHops; i++ {
		m.add(fmt.Sprintf("/c/%d", i), tLink(fmt.Sprint(i+1)))
	}
	m.add(fmt.Sprintf("/c/%d", MaxSymlinkHops), tLink("/a/b/file"))
	return m
}

func TestResolve(t *testing.T) {
	m := testTree()
	tests := []struct {
		path   string
		follow bool
		// want: Exists, Node (when it exists), Parent, Name, Path
		exists             bool
		node, parent, name string
		canon              string
		err                error
	}{
		{"/", true, true, "/", "/", "", "/", nil},
		{"/a/b/file", true, true, "/a/b/file", "/a/b", "file", "/a/b/file", nil},
		{"//a//./b/./file", true, true, "/a/b/file", "/a/b", "file", "/a/b/file", nil},
		{"/a/b/..", true, true, "/a", "/", "a", "/a", nil},
		{"/../../a/b/../../a", true, true, "/a", "/", "a", "/a", nil},
		{"/..", true, true, "/", "/", "", "/", nil},
		{"/a", false, true, "/a", "/", "a", "/a", nil},
		// absolute and relative targets
		{"/l/abs", true, true, "/a/b/file", "/a/b", "file", "/a/b/file", nil},
		{"/l/abs", false, true, "/l/abs", "/l", "abs", "/l/abs", nil},
		{"/l/rel", true, true, "/a/b/file", "/a/b", "file", "/a/b/file", nil},
		{"/l/up/file", false, true, "/a/b/file", "/a/b", "file", "/a/b/file", nil},
		{"/l/dir/b/file", false, true, "/a/b/file", "/a/b", "file", "/a/b/file", nil},
		{"/l/dir/..", true, true, "/", "/", "", "/", nil}, // ".." of the target, not of /l
		{"/l/dotdir/abs", true, true, "/a/b/file", "/a/b", "file", "/a/b/file", nil},
		{"/l/root/a", true, true, "/a", "/", "a", "/a", nil},
		{"/l/rootup/a/b", true, true, "/a/b", "/a", "b", "/a/b", nil},
		{"/l/root", true, true, "/", "/", "", "/", nil},
		// missing final component: where it would be made
		{"/a/new", true, false, "", "/a", "new", "/a/new", nil},
		{"/l/dir/new", true, false, "", "/a", "new", "/a/new", nil},
		{"/l/dangling", true, false, "", "/a", "new", "/a/new", nil},
		{"/l/dangling", false, true, "/l/dangling", "/l", "dangling", "/l/dangling", nil},
		{"/new", true, false, "", "/", "new", "/new", nil},
		// ".", ".." and a trailing slash need a directory before them
		{"/a/b/file/..", true, false, "", "", "", "", ErrNotDir},
		{"/a/b/file/.", true, false, "", "", "", "", ErrNotDir},
		{"/a/b/file/", true, false, "", "", "", "", ErrNotDir},
		{"/a/b/file/", false, false, "", "", "", "", ErrNotDir},
		{"/l/abs/", false, false, "", "", "", "", ErrNotDir},
		{"/l/dir/", false, true, "/a", "/", "a", "/a", nil}, // a trailing slash follows
		{"/l/dir/.", false, true, "/a", "/", "a", "/a", nil},
		{"/a/b/", true, true, "/a/b", "/a", "b", "/a/b", nil},
		{"/a/new/", true, false, "", "/a", "new", "/a/new", nil}, // mkdir may make it
		{"/l/dangling/", false, false, "", "/a", "new", "/a/new", nil},
		{"/a/new/.", true, false, "", "", "", "", fs.ErrNotExist},
		// errors
		{"/l/nowhere", true, false, "", "", "", "", fs.ErrNotExist},
		{"/missing/x", true, false, "", "", "", "", fs.ErrNotExist},
		{"/a/b/file/x", true, false, "", "", "", "", ErrNotDir},
		{"/l/abs/x", true, false, "", "", "", "", ErrNotDir},
		{"/l/self", true, false, "", "", "", "", ErrTooManyLinks},
		{"/l/self", false, true, "/l/self", "/l", "self", "/l/self", nil},
		{"/l/self/x", false, false, "", "", "", "", ErrTooManyLinks},
		{"/l/x", true, false, "", "", "", "", ErrTooManyLinks},
		{"/l/empty", true, false, "", "", "", "", fs.ErrNotExist},
		{"/l/nul", true, false, "", "", "", "", ErrInvalidPath},
		{"/l/long", true, false, "", "", "", "", ErrInvalidPath},
		// 40 hops are allowed, 41 are not
		{"/c/1", true, true, "/a/b/file", "/a/b", "file", "/a/b/file", nil},
		{"/c/0", true, false, "", "", "", "", ErrTooManyLinks},
		{"/c/0", false, true, "/c/0", "/c", "0", "/c/0", nil},
		// invalid paths
		{"", true, false, "", "", "", "", ErrInvalidPath},
		{"a/b", true, false, "", "", "", "", ErrInvalidPath},
		{"/a\x00", true, false, "", "", "", "", ErrInvalidPath},
		{"/" + strings.Repeat("n", MaxNameLen+1), true, false, "", "", "", "", ErrInvalidPath},
		{"/" + strings.Repeat("a/", MaxPathLen/2), true, false, "", "", "", "", ErrInvalidPath},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%.40q/follow=%v", tc.path, tc.follow)
		r, err := Resolve[string](m, tc.path, tc.follow)
		if tc.err != nil {
			var pe *fs.PathError
			if !errors.Is(err, tc.err) || !errors.As(err, &pe) || pe.Path != tc.path {
				t.Errorf("%s: error %.100v, want %v naming the path", name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if r.Exists != tc.exists || (tc.exists && r.Node != tc.node) || r.Parent != tc.parent || r.Name != tc.name || r.Path != tc.canon {
			t.Errorf("%s = %+v; want exists=%v node=%q parent=%q name=%q path=%q",
				name, r, tc.exists, tc.node, tc.parent, tc.name, tc.canon)
		}
	}
}

// A path at exactly the limits is valid.
func TestResolveLimits(t *testing.T) {
	m := testTree()
	name := strings.Repeat("n", MaxNameLen)
	r, err := Resolve[string](m, "/a/"+name, true)
	if err != nil || r.Exists || r.Name != name {
		t.Errorf("255-byte name: %+v, %v", r, err)
	}
	long := "/a" + strings.Repeat("/.", (MaxPathLen-2)/2)
	if len(long) != MaxPathLen {
		t.Fatalf("test path is %d bytes", len(long))
	}
	if r, err := Resolve[string](m, long, true); err != nil || r.Path != "/a" {
		t.Errorf("4096-byte path: %+v, %v", r, err)
	}
}

// treeErr is a tree whose lookups fail with an I/O error.
type treeErr struct{ mapTree }

var errIO = errors.New("i/o failure")

func (treeErr) Lookup(string, string) (string, error) { return "", errIO }

func TestResolvePassesTreeErrors(t *testing.T) {
	_, err := Resolve[string](treeErr{testTree()}, "/a", true)
	if !errors.Is(err, errIO) {
		t.Fatalf("error %v, want the tree's own error", err)
	}
}

// TestExists: HasFile's answer for a backend resolving through a tree —
// dangling links and missing or non-directory components are "no", an
// I/O failure or a loop is an error labelled "stat" that keeps its cause.
func TestExists(t *testing.T) {
	m := testTree()
	for p, want := range map[string]bool{
		"/a/b/file": true, "/l/abs": true, "/l/dir/b": true, "/": true,
		"/a/missing": false, "/l/dangling": false, "/l/nowhere": false, "/a/b/file/x": false,
	} {
		if got, err := Exists[string](m, p); err != nil || got != want {
			t.Errorf("Exists(%s) = %v, %v; want %v", p, got, err, want)
		}
	}
	_, err := Exists[string](m, "/l/x")
	var pe *fs.PathError
	if !errors.Is(err, ErrTooManyLinks) || !errors.As(err, &pe) || pe.Op != "stat" || pe.Path != "/l/x" {
		t.Errorf("Exists(/l/x) error %v, want a stat PathError wrapping ErrTooManyLinks", err)
	}
	if _, err := Exists[string](treeErr{m}, "/a"); !errors.Is(err, errIO) {
		t.Errorf("Exists through a failing tree: %v, want the tree's error", err)
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/", "/a/b/file", "/l/dir/../l/rel", "/c/0", "/l/x/../y", "/l/dangling"} {
		f.Add(s, true)
	}
	m := testTree()
	f.Fuzz(func(t *testing.T, p string, follow bool) {
		r, err := Resolve[string](m, p, follow)
		if err != nil {
			return
		}
		if r.Path == "" || r.Path[0] != '/' || strings.Contains(r.Path, "//") {
			t.Fatalf("Resolve(%q) gave a non-canonical path %q", p, r.Path)
		}
		for _, c := range strings.Split(r.Path, "/") {
			if c == "." || c == ".." {
				t.Fatalf("Resolve(%q) left %q in %q", p, c, r.Path)
			}
		}
		if r.Exists && r.Node != r.Path {
			t.Fatalf("Resolve(%q): node %q but path %q", p, r.Node, r.Path)
		}
	})
}
