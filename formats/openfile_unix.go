//go:build unix

package formats

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openNonBlocking opens path with O_NONBLOCK (a FIFO cannot block the
// open), O_CLOEXEC and, when asked, O_NOFOLLOW, then clears O_NONBLOCK
// again: on a regular file or block device it changes nothing, but the
// descriptor is used for ordinary blocking I/O.
func openNonBlocking(path string, write, noFollow bool) (*os.File, error) {
	flag := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC
	if write {
		flag = unix.O_RDWR | unix.O_NONBLOCK | unix.O_CLOEXEC
	}
	if noFollow {
		flag |= unix.O_NOFOLLOW
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flag, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// allocatedBytes is the space fi's file takes on its filesystem.
func allocatedBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return -1
}
