package local

import "os"

// OpenFile opens the regular file p (a final symlink followed with guest
// semantics) for reading, so that a caller can stream a file of any size
// instead of loading it whole as ReadFile does. The caller closes it.
func (l *FS) OpenFile(p string) (*os.File, error) {
	n, err := l.existing("read", p, true)
	if err != nil {
		return nil, err
	}
	if err := regular("read", p, n.fi); err != nil {
		return nil, err
	}
	f, _, err := l.openSame("read", p, n, os.O_RDONLY)
	return f, err
}
