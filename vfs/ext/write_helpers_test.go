package ext

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// wfs serves vfs.FS through the write engine's entry points, so the write
// tests do not depend on how face.go wires them.
type wfs struct{ *FS }

func (w wfs) MakePath(p string) error                      { return w.writeMakePath(p) }
func (w wfs) AppendFile(p string, d []byte) error          { return w.writeFile("append", p, d, true) }
func (w wfs) ReplaceFile(p string, d []byte) error         { return w.writeFile("write", p, d, false) }
func (w wfs) SetPermissions(p string, m fs.FileMode) error { return w.writeSetPermissions(p, m) }
func (w wfs) SetOwnership(p, u, g string) error            { return w.writeSetOwnership(p, u, g) }

var _ vfs.FS = wfs{}

// openW opens img for writing.
func openW(t testing.TB, img string) wfs {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	f, err := Open(fh, st.Size(), &Options{Writable: true})
	if err != nil {
		t.Fatalf("open %s for writing: %v", img, err)
	}
	return wfs{f}
}

// fsck requires e2fsck -fn to find img clean.
func fsck(t testing.TB, img string) {
	t.Helper()
	out, rc := testtool.Output(t, "e2fsck", "-fn", img)
	if rc != 0 {
		t.Fatalf("e2fsck -fn exit %d:\n%s", rc, out)
	}
}

// debugfsCat returns what debugfs reads at p.
func debugfsCat(t testing.TB, img, p string) []byte {
	t.Helper()
	return debugfsOut(t, img, "cat "+p)
}

// debugfsOut runs one debugfs request on img and returns its standard
// output (the banner goes to standard error).
func debugfsOut(t testing.TB, img, req string) []byte {
	t.Helper()
	out, err := exec.Command(testtool.Need(t, "debugfs")[0], "-R", req, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", req, err)
	}
	return out
}

// wantCat requires debugfs to read want at p.
func wantCat(t testing.TB, img, p string, want []byte) {
	t.Helper()
	got := debugfsCat(t, img, p)
	if len(got) > len(want) && len(got) <= layout.InodeBlockSize && allZero(got[len(want):]) && debugfsStat(t, img, p).flags&uint32(layout.FlagInlineData) != 0 {
		got = got[:len(want)] // debugfs reads all of i_block of a short inline file
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("debugfs cat %s: %d bytes %.60q, want %d bytes %.60q", p, len(got), got, len(want), want)
	}
}

// dstat is what debugfs stat says of an inode.
type dstat struct {
	mode      uint32
	uid, gid  uint32
	size      int64
	links     int
	typ       string
	fastLink  string
	hasCrtime bool
	flags     uint32
}

// debugfsStat parses debugfs's stat of p.
func debugfsStat(t testing.TB, img, p string) dstat {
	t.Helper()
	out := string(debugfsOut(t, img, "stat "+p))
	var s dstat
	f := strings.Fields(strings.NewReplacer(":", " : ").Replace(out))
	for i := 0; i+2 < len(f); i++ {
		if f[i+1] != ":" {
			continue
		}
		v := f[i+2]
		switch f[i] {
		case "Flags":
			fl, _ := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 32)
			s.flags = uint32(fl)
		case "Type":
			s.typ = v
		case "Mode":
			m, _ := strconv.ParseUint(v, 8, 32)
			s.mode = uint32(m)
		case "User":
			u, _ := strconv.ParseUint(v, 10, 32)
			s.uid = uint32(u)
		case "Group":
			g, _ := strconv.ParseUint(v, 10, 32)
			s.gid = uint32(g)
		case "Size":
			if s.size == 0 { // the inode's size comes first, the fragment line's Size after
				s.size, _ = strconv.ParseInt(v, 10, 64)
			}
		case "Links":
			s.links, _ = strconv.Atoi(v)
		case "crtime":
			s.hasCrtime = true
		}
	}
	if i := strings.Index(out, "Fast link dest: \""); i >= 0 {
		rest := out[i+len("Fast link dest: \""):]
		s.fastLink = rest[:strings.IndexByte(rest, '"')]
	}
	return s
}

// wantStat requires debugfs to see p with the given mode bits and owner.
func wantStat(t testing.TB, img, p string, mode, uid, gid uint32) dstat {
	t.Helper()
	s := debugfsStat(t, img, p)
	if s.mode != mode || s.uid != uid || s.gid != gid {
		t.Fatalf("debugfs stat %s: mode %#o uid %d gid %d, want %#o %d %d", p, s.mode, s.uid, s.gid, mode, uid, gid)
	}
	return s
}

// fileBytes returns img's content.
func fileBytes(t testing.TB, img string) []byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
