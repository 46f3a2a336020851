//go:build !linux

package local

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// handleFlag opens a handle read-only (there is no O_PATH here).
const handleFlag = os.O_RDONLY

// openHandle opens rel read-only and non-blocking (no O_PATH here), which
// is enough for the regular files and directories the tree holds; the
// os.Root refuses to leave the directory.
func (l *FS) openHandle(rel string) (*os.File, error) {
	return l.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

func fdChown(h *os.File, uid, gid int) error { return h.Chown(uid, gid) }

func fdChmod(h *os.File, perm uint32) error {
	return withFd(h, func(fd int) error { return syscall.Fchmod(fd, perm) })
}

// renameNoReplace gives the object a second name that must not exist yet
// (link(2) never replaces: EEXIST), then drops the first one.
func renameNoReplace(od int, oname string, nd int, nname string) error {
	if err := unix.Linkat(od, oname, nd, nname, 0); err != nil {
		return err
	}
	return unix.Unlinkat(od, oname, 0)
}
