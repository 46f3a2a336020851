package ext

import "github.com/guestinject/guestinject/vfs"

// OpenReader serves vfs.ReaderOpener: the file at p, read in pieces.
func (f *FS) OpenReader(p string) (vfs.FileReader, error) {
	fl, err := f.OpenFile(p)
	if err != nil {
		return nil, err
	}
	return fl, nil
}
