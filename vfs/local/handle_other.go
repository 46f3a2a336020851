//go:build !linux

package local

import (
	"os"
	"syscall"
)

// openHandle opens rel read-only and non-blocking (no O_PATH here), which
// is enough for the regular files and directories the tree holds; the
// os.Root refuses to leave the directory.
func (l *FS) openHandle(rel string) (*os.File, error) {
	return l.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

func fdChown(h *os.File, uid, gid int) error { return h.Chown(uid, gid) }

func fdChmod(h *os.File, perm uint32) error {
	rc, err := h.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = syscall.Fchmod(int(fd), perm) }); err != nil {
		return err
	}
	return ferr
}
