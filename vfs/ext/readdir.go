package ext

import (
	"errors"
	"fmt"
	"path"
	"sort"

	"github.com/guestinject/guestinject/vfs"
)

// maxReadDirErrors bounds how many unreadable entries a ReadDir error
// names one by one; the rest are counted.
const maxReadDirErrors = 64

// guestJoin joins a guest directory path and an entry name as path.Join
// does, keeping the result guest-absolute ("/" + "etc" is "/etc").
func guestJoin(dir, name string) string {
	return path.Join("/", dir, name)
}

// collectEntries lists dir's entries other than "." and "..", bounded by
// MaxDirEntries.
func (f *FS) collectEntries(dir *inode) ([]dirEntry, error) {
	var ents []dirEntry
	err := f.forEachEntry(dir, func(e dirEntry) bool {
		if n := string(e.name); n != "." && n != ".." {
			ents = append(ents, dirEntry{name: append([]byte(nil), e.name...), ino: e.ino})
		}
		return len(ents) > MaxDirEntries
	})
	if err == nil && len(ents) > MaxDirEntries {
		err = corrupt("inode", uint64(dir.num), 0, -1, "directory lists more than %d entries", MaxDirEntries)
	}
	return ents, err
}

// describeEntries describes each entry of the directory at p, sorted by
// name. As os.ReadDir does, it returns every entry it could describe and,
// when some could not be (an unreadable inode), an error joining one
// *fs.PathError per bad entry, named by its guest path.
func (f *FS) describeEntries(p string, ents []dirEntry) ([]vfs.FileInfo, error) {
	out := make([]vfs.FileInfo, 0, len(ents))
	var errs []error
	bad := 0
	for _, e := range ents {
		fi, err := f.entryInfo(e)
		if err == nil {
			out = append(out, fi)
			continue
		}
		if bad++; bad <= maxReadDirErrors {
			errs = append(errs, vfs.PathErr("readdir", guestJoin(p, string(e.name)), err))
		}
	}
	if bad > maxReadDirErrors {
		errs = append(errs, fmt.Errorf("readdir %s: %d more unreadable entries", p, bad-maxReadDirErrors))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

// entryInfo describes one directory entry under its entry name.
func (f *FS) entryInfo(e dirEntry) (vfs.FileInfo, error) {
	in, err := f.inode(e.ino)
	if err != nil {
		return vfs.FileInfo{}, err
	}
	return f.fileInfo(in, string(e.name))
}
