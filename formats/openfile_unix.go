//go:build unix

package formats

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openNonBlocking opens path with O_NONBLOCK (a FIFO cannot block the
// open) and O_CLOEXEC, then clears O_NONBLOCK again: on a regular file or
// block device it changes nothing, but the descriptor is used for
// ordinary blocking I/O.
func openNonBlocking(path string, write bool) (*os.File, error) {
	flag := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC
	if write {
		flag = unix.O_RDWR | unix.O_NONBLOCK | unix.O_CLOEXEC
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

// openInRoot is openNonBlocking of rel beneath root (which adds O_CLOEXEC
// and never lets a path component lead outside it).
func openInRoot(root *os.Root, rel string, write bool) (*os.File, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := root.OpenFile(rel, flag|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) { err = unix.SetNonblock(int(fd), false) })
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// allocatedBytes is the space fi's file takes on its filesystem.
func allocatedBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return -1
}
