package oracletest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
)

// TestOracleMatrix builds every image of the matrix and checks that the
// engine reads back the source tree, as debugfs does.
func TestOracleMatrix(t *testing.T) {
	for _, l := range matrix {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			bi := buildImage(t, t.TempDir(), l)
			efs := openImage(t, bi.path)
			compareWithSource(t, efs, bi)
			compareWithDebugfs(t, efs, bi)
			checkGuestSemantics(t, efs, bi)
		})
	}
}

// openImage opens an image file with the engine; the file stays open for
// the test.
func openImage(t testing.TB, path string) *ext.FS {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	efs, err := ext.Open(f, st.Size(), &ext.Options{Warn: func(m string) { t.Logf("engine warning: %s", m) }})
	if err != nil {
		t.Fatalf("ext.Open(%s): %v", path, err)
	}
	return efs
}

// compareWithSource walks the source tree and checks every object.
func compareWithSource(t *testing.T, efs *ext.FS, bi builtImage) {
	n := 0
	err := filepath.WalkDir(bi.src, func(host string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(bi.src, host)
		guest := "/" + filepath.ToSlash(rel)
		if rel == "." {
			guest = "/"
		}
		n++
		compareObject(t, efs, host, guest, bi.extra[guest])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d objects compared with the source tree", bi.layout.name, n)
}

func compareObject(t *testing.T, efs *ext.FS, host, guest string, extraXattrs map[string][]byte) {
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		t.Fatal(err)
	}
	fi, err := efs.Lstat(guest)
	if err != nil {
		t.Errorf("Lstat(%q): %v", guest, err)
		return
	}
	wantMode := vfs.ModeFromUnix(st.Mode)
	if fi.Mode != wantMode || fi.UID != st.Uid || fi.GID != st.Gid {
		t.Errorf("Lstat(%q): mode %v uid %d gid %d, source has %v %d %d", guest, fi.Mode, fi.UID, fi.GID, wantMode, st.Uid, st.Gid)
	}
	if !fi.IsDir() && (fi.Size != st.Size || fi.Nlink != uint32(st.Nlink)) {
		t.Errorf("Lstat(%q): size %d nlink %d, source has %d %d", guest, fi.Size, fi.Nlink, st.Size, st.Nlink)
	}
	if fi.Mode&fs.ModeDevice != 0 && fi.Rdev != st.Rdev {
		t.Errorf("Lstat(%q): rdev %#x, source has %#x", guest, fi.Rdev, st.Rdev)
	}
	if ok, err := efs.HasFile(guest); fi.Mode&fs.ModeSymlink == 0 && (!ok || err != nil) {
		t.Errorf("HasFile(%q) = %v, %v", guest, ok, err)
	}
	switch {
	case fi.Mode.IsRegular():
		compareContent(t, efs, host, guest, st.Size)
	case fi.Mode&fs.ModeSymlink != 0:
		want, _ := os.Readlink(host)
		got, err := efs.Readlink(guest)
		if err != nil || got != want || fi.Target != want {
			t.Errorf("Readlink(%q) = %q, %v (Lstat target %q); source has %q", guest, got, err, fi.Target, want)
		}
	case fi.IsDir():
		compareDir(t, efs, host, guest)
	}
	if fi.Mode&fs.ModeSymlink == 0 { // the engine's ListXattr follows a final symlink
		compareXattrs(t, efs, host, guest, extraXattrs)
	}
}

// bigFile is the size above which content is compared at sample windows
// (the data, the holes, the ends) instead of whole.
const bigFile = 16 << 20

func compareContent(t *testing.T, efs *ext.FS, host, guest string, size int64) {
	if size <= bigFile {
		want, _ := os.ReadFile(host)
		got, err := efs.ReadFile(guest)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadFile(%q): %d bytes, err %v; source has %d bytes (equal: %v)", guest, len(got), err, len(want), bytes.Equal(got, want))
		}
		return
	}
	hf, err := os.Open(host)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	ef, err := efs.OpenFile(guest)
	if err != nil {
		t.Errorf("OpenFile(%q): %v", guest, err)
		return
	}
	if ef.Size() != size {
		t.Errorf("OpenFile(%q).Size() = %d, want %d", guest, ef.Size(), size)
	}
	for _, w := range [][2]int64{{0, 64 << 10}, {1 << 20, 4096}, {4<<30 - 8192, 16384},
		{sparseDataOff - 4096, 80 << 10}, {size/2 + 12345, 10000}, {size - 8192, 8192}, {size - 1, 1}} {
		if w[0] < 0 || w[0] >= size {
			continue
		}
		n := min(w[1], size-w[0])
		want := make([]byte, n)
		got := make([]byte, n)
		if _, err := hf.ReadAt(want, w[0]); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if m, err := ef.ReadAt(got, w[0]); (err != nil && err != io.EOF) || int64(m) != n || !bytes.Equal(got, want) {
			t.Errorf("%q ReadAt(%d, %d) = %d, %v (equal: %v)", guest, w[0], n, m, err, bytes.Equal(got, want))
		}
	}
	// Past the end: nothing, io.EOF.
	if m, err := ef.ReadAt(make([]byte, 10), size); m != 0 || err != io.EOF {
		t.Errorf("%q ReadAt(size) = %d, %v; want 0, io.EOF", guest, m, err)
	}
}

func compareDir(t *testing.T, efs *ext.FS, host, guest string) {
	ents, err := os.ReadDir(host)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range ents {
		want = append(want, e.Name())
	}
	if guest == "/" {
		want = append(want, "lost+found")
	}
	slices.Sort(want)
	got, err := efs.ReadDir(guest)
	if err != nil {
		t.Errorf("ReadDir(%q): %v", guest, err)
		return
	}
	var names []string
	for _, fi := range got {
		names = append(names, fi.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("ReadDir(%q): %d names, source has %d (first difference near %q)", guest, len(names), len(want), firstDiff(names, want))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " / " + b[i]
		}
	}
	return "the end"
}

func compareXattrs(t *testing.T, efs *ext.FS, host, guest string, extra map[string][]byte) {
	want := hostXattrs(t, host)
	for k, v := range extra {
		want[k] = v
	}
	names, err := efs.ListXattr(guest)
	if err != nil {
		t.Errorf("ListXattr(%q): %v", guest, err)
		return
	}
	var wantNames []string
	for k := range want {
		wantNames = append(wantNames, k)
	}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("ListXattr(%q) = %q, source has %q", guest, names, wantNames)
	}
	for k, v := range want {
		got, err := efs.GetXattr(guest, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("GetXattr(%q, %q) = %d bytes, %v; want %d bytes", guest, k, len(got), err, len(v))
		}
	}
	if _, err := efs.GetXattr(guest, "user.no-such-attribute"); !errors.Is(err, vfs.ErrNoXattr) {
		t.Errorf("GetXattr(%q, missing) error = %v, want ErrNoXattr", guest, err)
	}
}

// hostXattrs reads the source object's attributes (not following symlinks).
func hostXattrs(t *testing.T, host string) map[string][]byte {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(host, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", host, err)
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(host, name, v)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", host, name, err)
		}
		out[name] = v[:m]
	}
	return out
}
