package local

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// handleFlag opens a path-only descriptor, the handle attribute changes go
// through.
const handleFlag = unix.O_PATH

// openHandle opens rel as a path-only descriptor (O_PATH; the os.Root adds
// O_NOFOLLOW): the object itself is not opened, so a FIFO cannot block and
// a device node has no open side effect, and the descriptor keeps naming
// that very object whatever happens to the name afterwards. A final
// symlink is opened as itself.
func (l *FS) openHandle(rel string) (*os.File, error) {
	return l.root.OpenFile(rel, unix.O_PATH, 0)
}

// fdChown changes the owner of the object h names (a symlink itself, not
// its target).
func fdChown(h *os.File, uid, gid int) error {
	return withFd(h, func(fd int) error {
		return unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH)
	})
}

// fdChmod changes the permission bits of the object h names. fchmod(2)
// refuses a path-only descriptor; fchmodat2 (Linux 6.6) takes it, and
// before that the descriptor's /proc/self/fd entry leads to the same
// object.
func fdChmod(h *os.File, perm uint32) error {
	return withFd(h, func(fd int) error {
		err := unix.Fchmodat(fd, "", perm, unix.AT_EMPTY_PATH)
		switch err {
		case unix.ENOSYS, unix.EOPNOTSUPP, unix.EPERM: // no fchmodat2, or a filter refusing it
			if e := procChmod(fd, perm); e == nil || err != unix.EPERM {
				return e
			}
		}
		return err
	})
}

// procChmod changes the mode of what fd names through its /proc/self/fd
// entry, which leads to that object and nothing else.
func procChmod(fd int, perm uint32) error {
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), perm)
}

// renameNoReplace renames without replacing an existing new name
// (renameat2 RENAME_NOREPLACE: EEXIST).
func renameNoReplace(od int, oname string, nd int, nname string) error {
	return unix.Renameat2(od, oname, nd, nname, unix.RENAME_NOREPLACE)
}
