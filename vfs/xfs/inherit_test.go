package xfs

import (
	"fmt"
	"testing"
)

// TestNewInodesInherit: what is made in a directory gets what the kernel
// gives it from that directory: the project under PROJINHERIT (every
// type, and a subdirectory passes it on), the extent size hint as EXTSIZE
// on files and EXTSZINHERIT on directories, the copy-on-write hint, and
// NODUMP and NOATIME on files and directories but not on symlinks;
// xfs_repair -n finds the result clean. A rename that would bring an
// inode of another project into the tree is refused, as the kernel
// refuses it (EXDEV), with nothing written.
func TestNewInodesInherit(t *testing.T) {
	img := emptyImage(t)
	f := openRW(t, img)
	if err := f.MakePath("/p"); err != nil {
		t.Fatal(err)
	}
	if err := f.ReplaceFile("/outside", []byte("outside\n")); err != nil {
		t.Fatal(err)
	}
	p := mustIno(t, f, "/p")
	xfsDBWrite(t, img, fmt.Sprintf("inode %d", p), "write core.projid_lo 42", "write core.projid_hi 1",
		"write core.projinherit 1", "write core.nodump 1", "write core.noatime 1",
		"write core.extszinherit 1", "write core.extsize 16", "write v3.cowextsz 1", "write v3.cowextsize 32")
	repairClean(t, img)

	f = openRW(t, img)
	for _, err := range []error{
		f.ReplaceFile("/p/f", []byte("file\n")),
		f.MakePath("/p/d"),
		f.Symlink("f", "/p/l"),
		f.ReplaceFile("/p/d/g", []byte("deeper\n")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	repairClean(t, img)
	const project = 1<<16 | 42
	want := map[string]map[string]uint64{
		"/p/f": {"core.projinherit": 0, "core.extsz": 1, "core.extszinherit": 0, "core.extsize": 16,
			"core.nodump": 1, "core.noatime": 1, "v3.cowextsz": 1, "v3.cowextsize": 32},
		"/p/d": {"core.projinherit": 1, "core.extsz": 0, "core.extszinherit": 1, "core.extsize": 16,
			"core.nodump": 1, "core.noatime": 1, "v3.cowextsz": 1, "v3.cowextsize": 32},
		"/p/l": {"core.projinherit": 0, "core.extsz": 0, "core.extszinherit": 0, "core.extsize": 0,
			"core.nodump": 0, "core.noatime": 0, "v3.cowextsz": 0, "v3.cowextsize": 0},
		"/p/d/g":   {"core.extsz": 1, "core.extsize": 16, "core.nodump": 1},
		"/outside": {"core.projid_lo": 0, "core.extsz": 0, "core.nodump": 0},
	}
	for path, fields := range want {
		ino := fmt.Sprintf("inode %d", mustIno(t, f, path))
		if path != "/outside" {
			if got := dbField(t, img, "core.projid_hi", ino)<<16 | dbField(t, img, "core.projid_lo", ino); got != project {
				t.Errorf("%s: project %d, want %d", path, got, project)
			}
		}
		for field, v := range fields {
			if got := dbField(t, img, field, ino); got != v {
				t.Errorf("%s: %s = %d, want %d", path, field, got, v)
			}
		}
	}

	before := fileSum(t, img)
	refusedUnchanged(t, img, before, "project 65578", map[string]error{
		"rename /outside /p/outside":   f.Rename("/outside", "/p/outside"),
		"rename /outside /p/d/outside": f.Rename("/outside", "/p/d/outside"),
	})
	if err := f.Rename("/p/f", "/p/d/f"); err != nil {
		t.Fatalf("a move inside the project's tree: %v", err)
	}
	if err := f.Rename("/p/d/f", "/f"); err != nil {
		t.Fatalf("a move out of the project's tree: %v", err)
	}
	repairClean(t, img)
}

// TestInheritDropsBadHints: a directory whose extent size or
// copy-on-write hint the inode verifier would reject (here zero under
// its flag, as a hostile image may hold) passes neither flag nor hint on,
// as the kernel drops them: the new inode is one xfs_repair accepts.
func TestInheritDropsBadHints(t *testing.T) {
	img := emptyImage(t)
	f := openRW(t, img)
	if err := f.MakePath("/bad"); err != nil {
		t.Fatal(err)
	}
	bad := mustIno(t, f, "/bad")
	xfsDBWrite(t, img, fmt.Sprintf("inode %d", bad), "write core.extszinherit 1", "write core.extsize 0",
		"write v3.cowextsz 1", "write v3.cowextsize 0", "write core.nodump 1")
	f = openRW(t, img)
	if err := f.ReplaceFile("/bad/f", []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.MakePath("/bad/d"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/bad/f", "/bad/d"} {
		ino := fmt.Sprintf("inode %d", mustIno(t, f, p))
		for field, v := range map[string]uint64{"core.extsz": 0, "core.extszinherit": 0, "core.extsize": 0,
			"v3.cowextsz": 0, "v3.cowextsize": 0, "core.nodump": 1} {
			if got := dbField(t, img, field, ino); got != v {
				t.Errorf("%s: %s = %d, want %d", p, field, got, v)
			}
		}
	}
	// Mended, the parent leaves an image xfs_repair finds clean: the
	// children are.
	xfsDBWrite(t, img, fmt.Sprintf("inode %d", bad), "write core.extszinherit 0", "write v3.cowextsz 0")
	repairClean(t, img)
}
