package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// openGuest makes an empty guest root under a fresh temporary directory
// and returns the backend and the host path of the guest root.
func openGuest(t *testing.T) (*local.FS, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "guest")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dir
}

func TestConformance(t *testing.T) {
	guests := map[vfs.FS]string{} // backend -> host directory of its guest root
	opts := ownerOptions()
	opts.Race = hostRacer(guests)
	vfstest.RunOptions(t, func(t *testing.T) vfs.FS {
		l, dir := openGuest(t)
		guests[l] = dir
		outside := filepath.Join(filepath.Dir(dir), "outside")
		mustOK(t, os.WriteFile(outside, []byte("host file\n"), 0o640))
		mustOK(t, os.Chmod(outside, 0o640))
		if os.Geteuid() == 0 {
			mustOK(t, os.Chown(outside, 1234, 1234))
		}
		mustOK(t, unix.Setxattr(outside, "user.x", []byte("host"), 0))
		return l
	}, opts)
}

// hostRacer races the guest directory from the host: the file outside is
// "outside" beside the guest root (mode 0640, and 1234:1234 when run as
// root, so that neither a chmod nor a chown to root goes unseen; with an
// attribute user.x and its mtime described, so that attribute and time
// changes do not either).
func hostRacer(guests map[vfs.FS]string) *vfstest.Racer {
	outside := func(fsys vfs.FS) string { return filepath.Join(filepath.Dir(guests[fsys]), "outside") }
	return &vfstest.Racer{
		Hook: func(fsys vfs.FS, h func(op string)) {
			if h == nil {
				local.SetHook(fsys.(*local.FS), nil)
				return
			}
			local.SetHook(fsys.(*local.FS), func(op, rel string) { h(op) })
		},
		LinkOutside: func(t testing.TB, fsys vfs.FS, p string) {
			hp := filepath.Join(guests[fsys], p)
			mustOK(t, os.RemoveAll(hp))
			mustOK(t, os.Link(outside(fsys), hp))
		},
		Outside: func(t testing.TB, fsys vfs.FS) string {
			fi, err := os.Lstat(outside(fsys))
			mustOK(t, err)
			data, err := os.ReadFile(outside(fsys))
			mustOK(t, err)
			st := fi.Sys().(*syscall.Stat_t)
			xattrs := make([]byte, 1024)
			n, err := unix.Listxattr(outside(fsys), xattrs)
			mustOK(t, err)
			return fmt.Sprintf("%v %d:%d %q mtime %d xattrs %q", fi.Mode(), st.Uid, st.Gid, data, fi.ModTime().UnixNano(), xattrs[:n])
		},
	}
}

// ownerOptions tells the suite whether this process can give files away:
// only root can; anyone else's files stay theirs and chown is refused.
func ownerOptions() vfstest.Options {
	if os.Geteuid() == 0 {
		return vfstest.Options{}
	}
	return vfstest.Options{NoChown: true, UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
}

func TestReadOnlySuite(t *testing.T) {
	l, _ := openGuest(t)
	vfstest.Populate(t, l)
	vfstest.RunReadOnly(t, l, ownerOptions())
}
