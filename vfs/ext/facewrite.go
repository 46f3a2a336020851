package ext

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var (
	_ vfs.Symlinker = (*FS)(nil)
	_ vfs.Remover   = (*FS)(nil)
)

// New objects' modes, as vfs.FS documents them.
const (
	newFileMode = layout.ModeRegular | 0o644
	newDirMode  = layout.ModeDir | 0o755
	symlinkMode = layout.ModeSymlink | 0o777
)

// maxSymlinkTarget is the longest target the kernel stores (PATH_MAX
// with its NUL).
const maxSymlinkTarget = vfs.MaxPathLen - 1

// writeMakePath is MakePath: each missing directory along p is created
// in a transaction of its own (mkdir -p).
func (f *FS) writeMakePath(p string) error {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr("mkdir", p, err)
	}
	prefix := ""
	for _, c := range strings.Split(p, "/") {
		if c == "" {
			continue
		}
		prefix += "/" + c
		if err := f.mkdirOne(prefix); err != nil {
			return vfs.Relabel("mkdir", p, err)
		}
	}
	return nil
}

// mkdirOne makes sure the directory at p exists (its parent does).
func (f *FS) mkdirOne(p string) error {
	r, err := vfs.Resolve[uint32](tree{f}, p, false)
	if err != nil {
		return err
	}
	if r.Exists {
		mode, err := tree{f}.Type(r.Node)
		if err != nil {
			return err
		}
		if mode.Type() == fs.ModeSymlink {
			return f.mkdirThroughLink(p)
		}
		if !mode.IsDir() {
			return vfs.ErrNotDir
		}
		return nil
	}
	return f.inTx(func(t *tx) error { return t.mkdir(r.Parent, r.Name) })
}

// mkdirThroughLink accepts a symlink to a directory; a dangling one is in
// the way, as mkdir(2) says.
func (f *FS) mkdirThroughLink(p string) error {
	r, err := vfs.Resolve[uint32](tree{f}, p, true)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !r.Exists {
		return fs.ErrExist // a dangling link is in the way
	}
	if err != nil {
		return err
	}
	mode, err := tree{f}.Type(r.Node)
	if err == nil && !mode.IsDir() {
		err = vfs.ErrNotDir
	}
	return err
}

// inTx runs fn in a transaction and commits it.
func (f *FS) inTx(fn func(t *tx) error) error {
	t, err := f.begin()
	if err != nil {
		return err
	}
	defer t.abort()
	if err := fn(t); err != nil {
		return err
	}
	return t.commit()
}

// mkdir creates directory name in directory parent.
func (t *tx) mkdir(parent uint32, name string) error {
	dir, err := t.inode(parent)
	if err != nil {
		return err
	}
	in, err := t.newInode(dir, true, newDirMode)
	if err != nil {
		return err
	}
	if t.canInline(in) {
		makeInline(in) // initDir then builds an inline directory
	}
	if err := t.initDir(in, parent); err != nil {
		return err
	}
	return t.addEntry(dir, name, in.num, layout.FTDir)
}

// newInode allocates an inode of the given mode in directory dir, owned
// by root, with the flags the kernel inherits from dir.
func (t *tx) newInode(dir *inode, isDir bool, mode uint16) (*inode, error) {
	if err := t.checkDirForWrite(dir); err != nil {
		return nil, err
	}
	in, err := t.allocInode(dir.num, isDir)
	if err != nil {
		return nil, err
	}
	in.raw.Mode = mode
	in.raw.LinksCount = 1
	inherit := dir.raw.Flags & (layout.FlagSecrm | layout.FlagUnrm | layout.FlagSync | layout.FlagNodump |
		layout.FlagNoatime | layout.FlagJournalData | layout.FlagNotail | layout.FlagDirsync |
		layout.FlagProjinherit | layout.FlagCasefold)
	switch {
	case isDir:
	case mode&0xF000 == layout.ModeRegular:
		inherit &^= layout.FlagDirsync | layout.FlagCasefold
	default:
		inherit &= layout.FlagNodump | layout.FlagNoatime
	}
	in.raw.Flags |= inherit
	if dir.flag(layout.FlagProjinherit) && in.raw.HasExtra(layout.EndProjid) {
		in.raw.Projid = dir.raw.Projid
	}
	t.dirtyInode(in)
	return in, nil
}

// writeFile is AppendFile (appending) and ReplaceFile: it follows a final
// symlink, creating the file (0644 root:root) where a missing or dangling
// path leads.
func (f *FS) writeFile(op, p string, data []byte, appending bool) error {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr(op, p, err)
	}
	r, err := vfs.Resolve[uint32](tree{f}, p, true)
	if err != nil {
		return vfs.Relabel(op, p, err)
	}
	err = f.inTx(func(t *tx) error {
		if !r.Exists {
			return t.createFile(r.Parent, r.Name, data)
		}
		in, err := t.inode(r.Node)
		if err != nil {
			return err
		}
		if err := checkRegularWrite(in, appending); err != nil {
			return err
		}
		if appending {
			err = t.appendTo(in, data)
		} else {
			err = t.replaceIn(in, data)
		}
		if err == nil {
			t.touch(in)
		}
		return err
	})
	if err != nil {
		return vfs.PathErr(op, p, err)
	}
	return nil
}

// checkRegularWrite refuses to write what is not a plain regular file.
func checkRegularWrite(in *inode, appending bool) error {
	switch {
	case in.isDir():
		return vfs.ErrIsDir
	case !in.isReg():
		return vfs.ErrNotRegular
	case in.flag(layout.FlagEncrypt):
		return unsupported("writing encrypted inode %d", in.num)
	case in.flag(layout.FlagVerity):
		return unsupported("writing fs-verity inode %d", in.num)
	case in.flag(layout.FlagImmutable) || (in.flag(layout.FlagAppend) && !appending):
		return fmt.Errorf("inode %d is immutable or append-only: %w", in.num, fs.ErrPermission)
	case in.flag(layout.FlagEAInode):
		return unsupported("writing EA inode %d", in.num)
	}
	return nil
}

// createFile makes regular file name in directory parent holding data.
func (t *tx) createFile(parent uint32, name string, data []byte) error {
	dir, err := t.inode(parent)
	if err != nil {
		return err
	}
	in, err := t.newInode(dir, false, newFileMode)
	if err != nil {
		return err
	}
	if err := t.writeNewFile(in, data); err != nil {
		return err
	}
	return t.addEntry(dir, name, in.num, layout.FTRegular)
}

// appendTo writes data at the end of file in.
func (t *tx) appendTo(in *inode, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if in.flag(layout.FlagInlineData) {
		return t.writeInline(in, in.size, data)
	}
	return t.writeData(in, in.size, data)
}

// replaceIn sets file in's content to data. A file held in blocks gets
// new blocks (its old ones are freed, and a transaction never reuses
// what it frees): no block the on-disk inode names is overwritten, so a
// crash inside the operation leaves the old content or the new, never a
// mix (writeorder.go), and a journaled commit writes the new blocks once,
// in place, instead of through the journal.
func (t *tx) replaceIn(in *inode, data []byte) error {
	if in.flag(layout.FlagInlineData) {
		err := t.setInline(in, data)
		if err == nil || !isNoRoom(err) {
			return err
		}
		if err := t.uninline(in); err != nil {
			return err
		}
	} else if err := t.truncate(in, 0); err != nil {
		return err
	}
	if err := t.writeData(in, 0, data); err != nil {
		return err
	}
	return t.truncate(in, int64(len(data)))
}

// writeSetPermissions is SetPermissions.
func (f *FS) writeSetPermissions(p string, mode fs.FileMode) error {
	if mode&^vfs.PermMask != 0 {
		return vfs.PathErr("chmod", p, fmt.Errorf("mode %v has bits besides permissions: %w", mode, fs.ErrInvalid))
	}
	return f.changeInode("chmod", p, func(in *inode) {
		in.raw.Mode = in.raw.Type() | uint16(vfs.UnixPerm(mode))
	})
}

// writeSetOwnership is SetOwnership, names resolved in the guest's
// /etc/passwd and /etc/group.
func (f *FS) writeSetOwnership(p, user, group string) error {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr("chown", p, err)
	}
	uid, gid, err := vfs.ResolveOwner(f, user, group) // reads /etc/passwd: before the write lock
	if err != nil {
		return vfs.PathErr("chown", p, err)
	}
	defer f.wlock()()
	return f.changeInode("chown", p, func(in *inode) {
		if uid >= 0 {
			in.raw.SetUID(uint32(uid))
		}
		if gid >= 0 {
			in.raw.SetGID(uint32(gid))
		}
	})
}

// changeInode applies change to the inode p leads to (symlinks followed)
// and stamps its ctime.
func (f *FS) changeInode(op, p string, change func(in *inode)) error {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr(op, p, err)
	}
	r, err := vfs.Resolve[uint32](tree{f}, p, true)
	if err != nil {
		return vfs.Relabel(op, p, err)
	}
	if !r.Exists {
		return vfs.PathErr(op, p, fs.ErrNotExist)
	}
	err = f.inTx(func(t *tx) error {
		in, err := t.inode(r.Node)
		if err != nil {
			return err
		}
		change(in)
		t.setTimes(in, false, true, false, false)
		t.dirtyInode(in)
		return nil
	})
	if err != nil {
		return vfs.PathErr(op, p, err)
	}
	return nil
}

// Symlink creates a symlink at p pointing to target (stored verbatim):
// fast, in i_block, when shorter than 60 bytes, else in a data block.
func (f *FS) Symlink(target, p string) error {
	defer f.wlock()()
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr("symlink", p, err)
	}
	if target == "" || len(target) > maxSymlinkTarget || strings.IndexByte(target, 0) >= 0 {
		return vfs.PathErr("symlink", p, fmt.Errorf("target of %d bytes (1..%d, no NUL): %w", len(target), maxSymlinkTarget, vfs.ErrInvalidPath))
	}
	r, err := vfs.Resolve[uint32](tree{f}, p, false)
	if err != nil {
		return vfs.Relabel("symlink", p, err)
	}
	if r.Exists {
		return vfs.PathErr("symlink", p, fs.ErrExist)
	}
	err = f.inTx(func(t *tx) error { return t.symlink(r.Parent, r.Name, target) })
	if err != nil {
		return vfs.PathErr("symlink", p, err)
	}
	return nil
}

// symlink creates symlink name -> target in directory parent.
func (t *tx) symlink(parent uint32, name, target string) error {
	dir, err := t.inode(parent)
	if err != nil {
		return err
	}
	in, err := t.newInode(dir, false, symlinkMode)
	if err != nil {
		return err
	}
	if len(target) < layout.InodeBlockSize {
		in.raw.Flags &^= layout.FlagExtents
		setIblock(in, []byte(target))
		t.setSize(in, int64(len(target)))
		t.dirtyInode(in)
	} else if err := t.writeData(in, 0, []byte(target)); err != nil {
		return err
	}
	return t.addEntry(dir, name, in.num, layout.FTSymlink)
}

// Remove deletes the file, symlink (not its target) or empty directory
// at p.
func (f *FS) Remove(p string) error {
	defer f.wlock()()
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr("remove", p, err)
	}
	r, err := vfs.Resolve[uint32](tree{f}, p, false)
	if err != nil {
		return vfs.Relabel("remove", p, err)
	}
	switch {
	case r.Path == "/" || r.Name == "":
		return vfs.PathErr("remove", p, fmt.Errorf("the root: %w", fs.ErrInvalid))
	case !r.Exists:
		return vfs.PathErr("remove", p, fs.ErrNotExist)
	}
	err = f.inTx(func(t *tx) error { return t.remove(r.Parent, r.Name, r.Node) })
	if err != nil {
		return vfs.PathErr("remove", p, err)
	}
	return nil
}

// remove unlinks name (inode ino) from directory parent, freeing the
// inode with its last link.
func (t *tx) remove(parent uint32, name string, ino uint32) error {
	dir, err := t.inode(parent)
	if err != nil {
		return err
	}
	in, err := t.inode(ino)
	if err != nil {
		return err
	}
	if err := t.checkRemovable(in); err != nil {
		return err
	}
	got, err := t.removeEntry(dir, name)
	if err != nil {
		return err
	}
	if got != ino {
		return corrupt("inode", uint64(parent), 0, -1, "entry %q names inode %d, resolved to %d", name, got, ino)
	}
	if in.isDir() {
		t.decDirLinks(dir)
		return t.freeInode(in)
	}
	if in.raw.LinksCount > 1 {
		in.raw.LinksCount--
		t.setTimes(in, false, true, false, false)
		t.dirtyInode(in)
		return nil
	}
	return t.freeInode(in)
}

// checkRemovable refuses what Remove cannot delete cleanly.
func (t *tx) checkRemovable(in *inode) error {
	if in.isDir() {
		empty, err := t.dirIsEmpty(in)
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("directory inode %d is not empty: %w", in.num, fs.ErrExist)
		}
	}
	if in.flag(layout.FlagImmutable) || in.flag(layout.FlagAppend) {
		return fmt.Errorf("inode %d is immutable or append-only: %w", in.num, fs.ErrPermission)
	}
	xs, err := t.f.xattrs(in)
	if err != nil {
		return err
	}
	for _, x := range xs {
		if x.inum != 0 {
			return unsupported("removing inode %d, whose xattr %q lives in EA inode %d", in.num, x.name, x.inum)
		}
	}
	return nil
}
