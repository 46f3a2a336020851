package xfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// compareTree checks every object of the host tree src against the
// engine: type and permission bits, owner, size, content, link target,
// device number, and each directory's listing.
func compareTree(t *testing.T, f *FS, src string, broken map[string]bool) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		gp := "/" + filepath.ToSlash(rel)
		if rel == "." {
			gp = "/"
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		fi, err := f.Lstat(gp)
		if broken[gp] {
			// A block mkfs wrote wrongly: xfs_repair junks it, the engine refuses it.
			if !errors.Is(err, vfs.ErrCorrupt) {
				t.Errorf("Lstat(%s) of a block xfs_repair rejects: %v, want a corrupt error", gp, err)
			}
			return nil
		}
		if err != nil {
			t.Errorf("Lstat(%s): %v", gp, err)
			return nil
		}
		n++
		// mkfs stamps every inode with its own run time: decoding
		// (bigtime or classic seconds) must land near now.
		if d := time.Since(fi.ModTime); d < -time.Minute || d > time.Hour {
			t.Errorf("%s: mtime %v is not mkfs time", gp, fi.ModTime)
		}
		if fi.Mode != st.Mode() {
			t.Errorf("%s: mode %v, host %v", gp, fi.Mode, st.Mode())
		}
		if gp != "/" && (fi.UID != sys.Uid || fi.GID != sys.Gid) {
			t.Errorf("%s: owner %d:%d, host %d:%d", gp, fi.UID, fi.GID, sys.Uid, sys.Gid)
		}
		switch {
		case st.Mode().IsRegular():
			if fi.Size != st.Size() {
				t.Errorf("%s: size %d, host %d", gp, fi.Size, st.Size())
			}
			want, _ := os.ReadFile(p)
			got, err := f.ReadFile(gp)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: content differs (%d bytes read, %d on host): %v", gp, len(got), len(want), err)
			}
		case st.Mode()&fs.ModeSymlink != 0:
			want, _ := os.Readlink(p)
			if fi.Target != want {
				t.Errorf("%s: target %q, host %q", gp, fi.Target, want)
			}
			if got, err := f.Readlink(gp); err != nil || got != want {
				t.Errorf("Readlink(%s) = %q, %v", gp, got, err)
			}
		case st.Mode()&fs.ModeDevice != 0:
			if fi.Rdev != sys.Rdev {
				t.Errorf("%s: rdev %#x, host %#x", gp, fi.Rdev, sys.Rdev)
			}
		case st.IsDir():
			ents, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			var want []string
			hasBroken := false
			for _, e := range ents {
				if broken[path.Join(gp, e.Name())] {
					hasBroken = true
					continue
				}
				want = append(want, e.Name())
			}
			sort.Strings(want)
			got, err := f.ReadDir(gp)
			if hasBroken && errors.Is(err, vfs.ErrCorrupt) {
				err = nil // the broken entries are named in the error, the rest listed
			}
			if err != nil {
				t.Errorf("ReadDir(%s): %v", gp, err)
			}
			if len(got) != len(want) {
				t.Errorf("ReadDir(%s): %d entries, host %d", gp, len(got), len(want))
				return nil
			}
			for i := range got {
				if got[i].Name != want[i] {
					t.Errorf("ReadDir(%s)[%d] = %q, host %q", gp, i, got[i].Name, want[i])
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOracleMatrix builds one source tree and an image of it per mkfs
// layout, and compares every object.
func TestOracleMatrix(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	buildSource(t, src, treeOpts{nodeEntries: 3000})
	seen := map[string]bool{}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"v4", []string{"-m", "crc=0"}},
		{"b1024", []string{"-b", "size=1024"}},
		{"b65536", []string{"-b", "size=65536"}},
		{"n65536", []string{"-n", "size=65536"}},
		{"i512", []string{"-i", "size=512"}},
		{"i2048", []string{"-i", "size=2048"}},
		{"s4096", []string{"-s", "size=4096"}},
		{"agcount2", []string{"-d", "agcount=2"}}, // mkfs.xfs 6.1 refuses agcount=1 ("at least 2 superblocks")
		{"agcount32", []string{"-d", "agcount=32"}},
		{"v4-b512", []string{"-m", "crc=0", "-b", "size=512"}},
		{"nrext64-bigtime", []string{"-i", "nrext64=1", "-m", "bigtime=1"}},
		{"asciici", []string{"-n", "version=ci"}},
		{"sparse0", []string{"-i", "sparse=0"}},
		{"finobt0", []string{"-m", "finobt=0"}},
		{"rmapbt", []string{"-m", "rmapbt=1"}},
		{"reflink0", []string{"-m", "reflink=0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), c.name+".img")
			size := int64(512 << 20)
			if c.name == "agcount32" {
				size = 4 << 30 // the 64 MiB log must fit in one AG
			}
			mkfsTree(t, img, src, size, c.args...)
			broken := fixRemoteSymlinks(t, img, []string{"/links/remote600", "/links/remote1000"})
			repairCheck(t, img, broken)
			f := openImage(t, img, nil)
			if n := compareTree(t, f, src, broken); n < 3400 {
				t.Errorf("compared only %d objects", n)
			}
			// Lookups through symlinks, with guest semantics.
			for p, want := range map[string]string{"/links/abs": "hello xfs\n", "/links/rel": "hello xfs\n"} {
				if got, err := f.ReadFile(p); err != nil || string(got) != want {
					t.Errorf("ReadFile(%s) = %q, %v", p, got, err)
				}
			}
			// ASCII case-insensitive directories find names in any case
			// (their hash folds case); the others do not.
			ci := c.name == "asciici"
			for _, p := range []string{"/ETC/Passwd", "/dirs/LEAF/Entry-000123", "/dirs/node/ENTRY-002999"} {
				if ok, err := f.HasFile(p); ok != ci || err != nil {
					t.Errorf("HasFile(%s) = %v, %v on a %v ascii-ci filesystem", p, ok, err, ci)
				}
			}
			if ok, err := f.HasFile("/links/dangling"); ok || err != nil {
				t.Errorf("HasFile(dangling) = %v, %v", ok, err)
			}
			for _, d := range []string{"/dirs/sf", "/dirs/block", "/dirs/leaf", "/dirs/node"} {
				seen[dirShape(t, f, d)] = true
			}
			if err := f.ReplaceFile("/etc/passwd", nil); !errorsIs(err, vfs.ErrReadOnly) {
				t.Errorf("ReplaceFile on a read-only engine: %v", err)
			}
		})
	}
	// The matrix must have exercised every directory shape.
	for _, want := range []string{"shortform", "block/extents", "leaf/extents", "node/extents", "node/btree"} {
		if !seen[want] {
			t.Errorf("no layout of the matrix produced a %s directory (saw %v)", want, seen)
		}
	}
}

// dirShape names the form of directory p: its fork format and, when
// extent-mapped, block, leaf or node.
func dirShape(t *testing.T, f *FS, p string) string {
	t.Helper()
	_, in, err := f.resolve("stat", p, true)
	if err != nil {
		t.Fatal(err)
	}
	if in.core.Format == layout.FormatLocal {
		return "shortform"
	}
	m, err := f.openDir(in)
	if err != nil {
		t.Fatal(err)
	}
	return [...]string{"block", "leaf", "node"}[m.form] + "/" + in.core.Format.String()
}
