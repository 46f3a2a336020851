package inject

import (
	"fmt"
	"path"
	"strings"

	"github.com/guestinject/guestinject/vfs"
)

// prepareFiles plans each file as its own item: missing parents created
// (0755 root:root), contents replaced, the mode set when given.
func prepareFiles(fsys vfs.FS, files []File) []*item {
	items := make([]*item, 0, len(files))
	seen := map[string]bool{}
	for _, f := range files {
		it := newItem(KindFiles, f.Path)
		if seen[f.Path] {
			items = append(items, it.fail(fmt.Errorf("%w: path given twice", ErrInvalidFile)))
			continue
		}
		seen[f.Path] = true
		if err := planFile(fsys, it, f); err != nil {
			it.fail(err)
		}
		items = append(items, it)
	}
	return items
}

func planFile(fsys vfs.FS, it *item, f File) error {
	if err := validFilePath(f.Path); err != nil {
		return err
	}
	if f.Mode != nil && *f.Mode&^vfs.PermMask != 0 {
		return fmt.Errorf("%w: mode %v has bits other than permissions", ErrInvalidFile, *f.Mode)
	}
	dir := path.Dir(f.Path)
	if _, err := checkDirPath(fsys, dir); err != nil {
		return err
	}
	if err := checkNotDir(fsys, f.Path); err != nil {
		return err
	}
	if dir != "/" {
		it.mkdir(dir)
	}
	it.replace(f.Path, f.Data)
	if f.Mode != nil {
		it.chmod(f.Path, *f.Mode)
	}
	if f.Owner != "" {
		user, group, ok := strings.Cut(f.Owner, ":")
		if !ok || user == "" || group == "" {
			return fmt.Errorf("%w: owner %q: want USER:GROUP", ErrInvalidFile, f.Owner)
		}
		uid, gid, err := vfs.ResolveOwner(fsys, user, group)
		if err != nil {
			return fmt.Errorf("%w: owner %q: %w", ErrInvalidFile, f.Owner, err)
		}
		it.chown(f.Path, uid, gid)
	}
	it.rep.Summary = fmt.Sprintf("%d bytes", len(f.Data))
	return nil
}

// validFilePath accepts a clean guest-absolute path naming something below
// the root: no "." or ".." components, no doubled or trailing slash.
func validFilePath(p string) error {
	if err := vfs.CheckPath(p); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidFile, err)
	}
	if p == "/" || path.Clean(p) != p {
		return fmt.Errorf("%w: %w: %q is not a clean path to a file", ErrInvalidFile, vfs.ErrInvalidPath, p)
	}
	return nil
}
