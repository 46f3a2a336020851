//go:build !unix

package formats

import (
	"io/fs"
	"os"
)

// openNonBlocking opens path; where FIFOs and O_NONBLOCK do not exist the
// type check before the open is all there is.
func openNonBlocking(path string, write bool) (*os.File, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	return os.OpenFile(path, flag, 0)
}

// openInRoot opens rel beneath root.
func openInRoot(root *os.Root, rel string, write bool) (*os.File, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	return root.OpenFile(rel, flag, 0)
}

// allocatedBytes is unknown here.
func allocatedBytes(fs.FileInfo) int64 { return -1 }
