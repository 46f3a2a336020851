package local

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guestinject/guestinject/vfs"
)

// errNoData is what the kernel answers for a missing attribute.
const errNoData = unix.ENODATA

// procPath names the object a descriptor holds. A path-only descriptor
// cannot take fsetxattr(2); the xattr calls that follow this magic link
// reach exactly that object (a symlink itself when the handle is one),
// never whatever its name leads to now.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func fdSetxattr(h *os.File, name string, value []byte) error {
	return withFd(h, func(fd int) error { return unix.Setxattr(procPath(fd), name, value, 0) })
}

func fdRemovexattr(h *os.File, name string) error {
	return withFd(h, func(fd int) error { return unix.Removexattr(procPath(fd), name) })
}

// fdListxattr lists the attribute names of h's object, sorted, in a
// buffer bounded by the kernel's own list limit.
func fdListxattr(h *os.File) ([]string, error) {
	var names []string
	err := withFd(h, func(fd int) error {
		buf := make([]byte, vfs.MaxXattrValueLen)
		n, err := unix.Listxattr(procPath(fd), buf)
		if err != nil {
			return err
		}
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// fdGetxattr reads one attribute of h's object (at most the kernel's
// XATTR_SIZE_MAX bytes).
func fdGetxattr(h *os.File, name string) ([]byte, error) {
	var out []byte
	err := withFd(h, func(fd int) error {
		buf := make([]byte, vfs.MaxXattrValueLen)
		n, err := unix.Getxattr(procPath(fd), name, buf)
		if err != nil {
			return err
		}
		out = slices.Clone(buf[:n])
		return nil
	})
	return out, err
}

// fdUtimes sets the times of h's object itself: utimensat(2) on the
// descriptor with AT_EMPTY_PATH and AT_SYMLINK_NOFOLLOW; a kernel that
// refuses an empty path on a path-only descriptor gets the /proc/self/fd
// entry, which leads to the same object.
func fdUtimes(h *os.File, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if atime.Year() < 1678 || atime.Year() > 2261 || mtime.Year() < 1678 || mtime.Year() > 2261 {
		ts = []unix.Timespec{{Sec: atime.Unix(), Nsec: int64(atime.Nanosecond())}, {Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}}
	}
	return withFd(h, func(fd int) error {
		err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINVAL || err == unix.ENOSYS {
			err = unix.UtimesNanoAt(unix.AT_FDCWD, procPath(fd), ts, 0)
		}
		return err
	})
}

// renameAt moves one name to another between two directory handles
// (renameat(2): the final components are never followed).
func renameAt(od *os.File, oname string, nd *os.File, nname string) error {
	return withFd(od, func(ofd int) error {
		return withFd(nd, func(nfd int) error { return unix.Renameat(ofd, oname, nfd, nname) })
	})
}

// linkAt makes nname in nd a hard link of oname in od (linkat(2) without
// AT_SYMLINK_FOLLOW: a symlink is linked itself).
func linkAt(od *os.File, oname string, nd *os.File, nname string) error {
	return withFd(od, func(ofd int) error {
		return withFd(nd, func(nfd int) error { return unix.Linkat(ofd, oname, nfd, nname, 0) })
	})
}

// Times returns p's access, modification and change times (a final
// symlink is not followed).
func (l *FS) Times(p string) (atime, mtime, ctime time.Time, err error) {
	n, err := l.lexisting("stat", p)
	if err != nil {
		return
	}
	st, ok := n.fi.Sys().(*syscall.Stat_t)
	if !ok {
		return n.fi.ModTime(), n.fi.ModTime(), n.fi.ModTime(), nil
	}
	return time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix()), nil
}
