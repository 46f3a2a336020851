package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// The write side of vfs.FS and its optional interfaces, a thin face over
// the transactions of tx.go: each operation resolves its path with guest
// semantics (vfs.Resolve), then builds one transaction in memory (every
// refusal and ENOSPC found there, nothing written) and commits it in the
// order writeorder.go describes. ReplaceFile of an existing file commits
// two: the truncation (frees are committed on their own, after the
// references they drop), then the new content. inject/diskimage stages every
// write of an injection, so a failure in a later transaction leaves the
// image unchanged all the same.

var (
	_ vfs.Symlinker  = (*FS)(nil)
	_ vfs.Remover    = (*FS)(nil)
	_ vfs.Linker     = (*FS)(nil)
	_ vfs.TimeSetter = (*FS)(nil)
	_ vfs.Truncater  = (*FS)(nil)
)

// New objects' modes, as vfs.FS documents them.
const (
	newFileMode = vfs.UnixRegular | 0o644
	newDirMode  = vfs.UnixDir | 0o755
	symlinkMode = vfs.UnixSymlink | 0o777
)

// maxLinks is the most links an inode takes (XFS_MAXLINK).
const maxLinks = 1<<31 - 1

// now is the time stamped on what the write operations change.
func (f *FS) now() time.Time {
	if f.opts.Now != nil {
		return f.opts.Now()
	}
	return time.Now()
}

// writable fails with a read-only error for a FS opened without a writer.
func (f *FS) writable(op, p string) error {
	if f.w == nil {
		return vfs.PathErr(op, p, vfs.ErrReadOnly)
	}
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr(op, p, err)
	}
	return nil
}

// inTx runs fn in a transaction and commits it; a failure aborts it and
// nothing is written. A batching FS adds fn to its open transaction
// instead (batch.go).
func (f *FS) inTx(fn func(t *tx) error) error {
	if f.opts.Batch {
		return f.inBatch(fn)
	}
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

// MakePath creates the directory p and its missing parents (0755
// root:root); symlinks to directories along the way are followed.
func (f *FS) MakePath(p string) error {
	defer f.wlock()()
	if err := f.writable("mkdir", p); err != nil {
		return err
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
	r, err := vfs.Resolve[uint64](tree{f}, p, false)
	if err != nil {
		return err
	}
	if r.Exists {
		mode, err := tree{f}.Type(r.Node)
		if err != nil {
			return err
		}
		if mode.Type() == fs.ModeSymlink {
			t, err := vfs.Resolve[uint64](tree{f}, p, true)
			if errors.Is(err, fs.ErrNotExist) || err == nil && !t.Exists {
				return fs.ErrExist // a dangling link is in the way
			}
			if err != nil {
				return err
			}
			mode, err = tree{f}.Type(t.Node)
			if err != nil {
				return err
			}
		}
		if !mode.IsDir() {
			return vfs.ErrNotDir
		}
		return nil
	}
	now := f.now()
	return f.inTx(func(t *tx) error {
		if err := t.checkDirWrite(r.Parent); err != nil {
			return err
		}
		_, err := t.create(r.Parent, r.Name, newDirMode, 0, 0, now)
		return err
	})
}

// checkDirWrite refuses to add to or remove from an immutable or
// append-only directory.
func (t *tx) checkDirWrite(dir uint64) error {
	in, err := t.f.inode(dir)
	if err != nil {
		return err
	}
	if !in.isDir() {
		return vfs.ErrNotDir
	}
	if in.core.Flags&(layout.FlagImmutable|layout.FlagAppend) != 0 {
		return fmt.Errorf("xfs: directory inode %d is immutable or append-only: %w", dir, fs.ErrPermission)
	}
	return nil
}

// AppendFile appends data to the regular file at p (a final symlink
// followed), creating it 0644 root:root when missing.
func (f *FS) AppendFile(p string, data []byte) error {
	defer f.wlock()()
	return f.writeFile("append", p, data, true)
}

// ReplaceFile sets the content of the regular file at p to data,
// creating it when missing; the old blocks are freed.
func (f *FS) ReplaceFile(p string, data []byte) error {
	defer f.wlock()()
	return f.writeFile("write", p, data, false)
}

func (f *FS) writeFile(op, p string, data []byte, appending bool) error {
	if err := f.writable(op, p); err != nil {
		return err
	}
	r, err := vfs.Resolve[uint64](tree{f}, p, true)
	if err != nil {
		return vfs.Relabel(op, p, err)
	}
	now := f.now()
	if !r.Exists {
		err = f.inTx(func(t *tx) error {
			if err := t.checkDirWrite(r.Parent); err != nil {
				return err
			}
			ino, err := t.create(r.Parent, r.Name, newFileMode, 0, 0, now)
			if err != nil || len(data) == 0 {
				return err
			}
			return t.appendData(ino, data, now)
		})
	} else {
		err = f.rewrite(r.Node, data, appending, now)
	}
	if err != nil {
		return vfs.PathErr(op, p, err)
	}
	return nil
}

// rewrite appends data to existing file ino, or replaces its content.
func (f *FS) rewrite(ino uint64, data []byte, appending bool, now time.Time) error {
	in, err := f.inode(ino)
	if err != nil {
		return err
	}
	switch {
	case in.isDir():
		return vfs.ErrIsDir
	case !in.isReg():
		return vfs.ErrNotRegular
	case in.core.Flags&layout.FlagImmutable != 0 || in.core.Flags&layout.FlagAppend != 0 && !appending:
		return fmt.Errorf("xfs: inode %d is immutable or append-only: %w", ino, fs.ErrPermission)
	}
	if appending {
		return f.inTx(func(t *tx) error { return t.appendData(ino, data, now) })
	}
	// In place when that frees nothing (batched with its neighbours);
	// else the truncation, which frees, commits on its own first.
	done := false
	err = f.inTx(func(t *tx) error {
		var err error
		done, err = t.replaceInPlace(ino, data, now)
		return err
	})
	if err != nil || done {
		return err
	}
	if err := f.checkRoom(in, len(data)); err != nil {
		return err
	}
	if err := f.inTx(func(t *tx) error { return t.truncateData(ino, 0, now) }); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	return f.inTx(func(t *tx) error { return t.appendData(ino, data, now) })
}

// checkRoom refuses, before the truncation of a rewrite commits, new
// content of n bytes for file in that cannot fit even in the free space
// (what the kernel's reserve leaves of it) plus all the file's blocks:
// the write would certainly fail with ErrNoSpace after the old content
// was gone (outside a staged injection, which discards both).
func (f *FS) checkRoom(in *inode, n int) error {
	var p [8]byte
	if err := f.readAt(p[:], 0x90, at("superblock", 0)); err != nil { // sb_fdblocks
		return err
	}
	free := binary.BigEndian.Uint64(p[:])
	if r := f.globalReserve(); free > r { // the kernel's reserve is not the file's to take
		free -= r
	} else {
		free = 0
	}
	need := (uint64(n) + uint64(f.geo.blockSize) - 1) >> f.geo.blockLog
	if need > free+in.core.NBlocks {
		return fmt.Errorf("%w: %d blocks of new content for inode %d, %d free with the %d its old content frees", ErrNoSpace, need, in.ino, free, in.core.NBlocks)
	}
	return nil
}

// Truncate sets the size of the regular file at p (a final symlink
// followed): blocks past the new end are freed; growing adds a hole.
func (f *FS) Truncate(p string, size int64) error {
	defer f.wlock()()
	if err := f.writable("truncate", p); err != nil {
		return err
	}
	if size < 0 {
		return vfs.PathErr("truncate", p, fmt.Errorf("size %d: %w", size, fs.ErrInvalid))
	}
	in, err := f.regular("truncate", p)
	if err != nil {
		return err
	}
	if in.core.Flags&(layout.FlagImmutable|layout.FlagAppend) != 0 {
		return vfs.PathErr("truncate", p, fmt.Errorf("xfs: inode %d is immutable or append-only: %w", in.ino, fs.ErrPermission))
	}
	now := f.now()
	if err := f.inTx(func(t *tx) error { return t.truncateData(in.ino, uint64(size), now) }); err != nil {
		return vfs.PathErr("truncate", p, err)
	}
	return nil
}

// SetPermissions sets the permission bits of p (a final symlink
// followed).
func (f *FS) SetPermissions(p string, mode fs.FileMode) error {
	defer f.wlock()()
	if mode&^vfs.PermMask != 0 {
		return vfs.PathErr("chmod", p, fmt.Errorf("mode %v has bits besides permissions: %w", mode, fs.ErrInvalid))
	}
	return f.changeInode("chmod", p, true, func(d []byte, _ *layout.InodeCore) {
		m := binary.BigEndian.Uint16(d[2:])
		binary.BigEndian.PutUint16(d[2:], m&vfs.UnixTypeMask|uint16(vfs.UnixPerm(mode)))
	})
}

// SetOwnership changes the owner and group of p (a final symlink
// followed), names resolved in the guest's /etc/passwd and /etc/group.
func (f *FS) SetOwnership(p, user, group string) error {
	if err := f.writable("chown", p); err != nil {
		return err
	}
	uid, gid, err := vfs.ResolveOwner(f, user, group) // reads /etc/passwd: before the write lock
	if err != nil {
		return vfs.PathErr("chown", p, err)
	}
	defer f.wlock()()
	return f.changeInode("chown", p, true, func(d []byte, _ *layout.InodeCore) {
		if uid >= 0 {
			binary.BigEndian.PutUint32(d[0x08:], uint32(uid))
		}
		if gid >= 0 {
			binary.BigEndian.PutUint32(d[0x0C:], uint32(gid))
		}
	})
}

// SetTimes sets the access and modification times of p (a final
// symlink not followed), the change time to now.
func (f *FS) SetTimes(p string, atime, mtime time.Time) error {
	defer f.wlock()()
	return f.changeInode("utimes", p, false, func(d []byte, c *layout.InodeCore) {
		big := c.Bigtime()
		binary.BigEndian.PutUint64(d[0x20:], uint64(layout.MakeTimestamp(clampTime(atime, big), big)))
		binary.BigEndian.PutUint64(d[0x28:], uint64(layout.MakeTimestamp(clampTime(mtime, big), big)))
	})
}

// clampTime brings t into the range an inode timestamp holds, as the
// kernel clamps.
func clampTime(t time.Time, bigtime bool) time.Time {
	lo, hi := time.Unix(-1<<31, 0), time.Unix(1<<31-1, 0)
	if bigtime {
		lo, hi = time.Unix(-layout.BigtimeEpochOffset, 0), time.Unix(int64(^uint64(0)/1e9)-layout.BigtimeEpochOffset, 0)
	}
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}

// changeInode applies change to the raw inode p leads to and stamps its
// ctime and change count.
func (f *FS) changeInode(op, p string, follow bool, change func(d []byte, c *layout.InodeCore)) error {
	if err := f.writable(op, p); err != nil {
		return err
	}
	_, in, err := f.resolve(op, p, follow)
	if err != nil {
		return err
	}
	now := f.now()
	err = f.inTx(func(t *tx) error {
		b, c, err := t.inodeBuf(in.ino)
		if err != nil {
			return err
		}
		change(b.data, c)
		t.touchCtime(b, c, now)
		return nil
	})
	if err != nil {
		return vfs.PathErr(op, p, err)
	}
	return nil
}

// inodeBuf returns the transaction's buffer of in-use inode ino and its
// decoded core.
func (t *tx) inodeBuf(ino uint64) (*txBuf, *layout.InodeCore, error) {
	return t.inodeBufAs(ino, "inode", classOwner)
}

// inodeBufAs is inodeBuf with the write class the buffer joins and the
// name errors give the inode: the inode is checked as the read side
// checks it (magic, CRC, self-description) before its core is decoded.
func (t *tx) inodeBufAs(ino uint64, what string, class wclass) (*txBuf, *layout.InodeCore, error) {
	g := &t.f.geo
	off := g.inoAddr(ino)
	w := at(what, ino)
	if off < 0 {
		return nil, nil, w.corrupt("inode number lies outside the filesystem")
	}
	w.off = off
	b, err := t.buf(off, int(g.inodeSize), kindInode, class, w)
	if err != nil {
		return nil, nil, err
	}
	if _, err := t.f.decodeInode(ino, b.data, w); err != nil {
		return nil, nil, err
	}
	c, err := layout.DecodeInodeCore(b.data)
	if err != nil {
		return nil, nil, w.corrupt("%v", err)
	}
	return b, c, nil
}

// touchCtime sets an inode buffer's ctime to now and bumps its change
// count (v3), then marks it dirty.
func (t *tx) touchCtime(b *txBuf, c *layout.InodeCore, now time.Time) {
	binary.BigEndian.PutUint64(b.data[0x30:], uint64(layout.MakeTimestamp(now, c.Bigtime())))
	if c.Version >= 3 {
		binary.BigEndian.PutUint64(b.data[0x68:], binary.BigEndian.Uint64(b.data[0x68:])+1)
	}
	t.markDirty(b)
}

// Symlink creates a symlink at p pointing to target (stored verbatim):
// in the inode when it fits, else in a remote block.
func (f *FS) Symlink(target, p string) error {
	defer f.wlock()()
	if err := f.writable("symlink", p); err != nil {
		return err
	}
	if target == "" || len(target) > maxSymlinkLen || strings.IndexByte(target, 0) >= 0 {
		return vfs.PathErr("symlink", p, fmt.Errorf("target of %d bytes (1..%d, no NUL): %w", len(target), maxSymlinkLen, vfs.ErrInvalidPath))
	}
	r, err := vfs.Resolve[uint64](tree{f}, p, false)
	if err != nil {
		return vfs.Relabel("symlink", p, err)
	}
	if r.Exists {
		return vfs.PathErr("symlink", p, fs.ErrExist)
	}
	now := f.now()
	err = f.inTx(func(t *tx) error {
		if err := t.checkDirWrite(r.Parent); err != nil {
			return err
		}
		ino, err := t.create(r.Parent, r.Name, symlinkMode, 0, 0, now)
		if err != nil {
			return err
		}
		return t.writeSymlink(ino, target)
	})
	if err != nil {
		return vfs.PathErr("symlink", p, err)
	}
	return nil
}

// writeSymlink stores the target of new symlink ino: inline when it fits
// the data fork (as the kernel decides), else in remote blocks, each with
// its own header on v5. A v5 target needing more than one block (only
// possible with 1 KiB blocks) is refused.
func (t *tx) writeSymlink(ino uint64, target string) error {
	g := &t.f.geo
	b, c, err := t.inodeBuf(ino)
	if err != nil {
		return err
	}
	core := c.CoreSize()
	fork := b.data[core:]
	if len(target) <= len(fork) {
		copy(fork, target)
		binary.BigEndian.PutUint64(b.data[0x38:], uint64(len(target)))
		t.markDirty(b)
		return nil
	}
	space := int(g.blockSize)
	if g.crc {
		space -= layout.RemoteHdrSize
	}
	nblk := (len(target) + space - 1) / space
	if g.crc && nblk > 1 {
		return unsupported("a %d-byte symlink target over %d blocks of %d bytes", len(target), nblk, g.blockSize)
	}
	var exts []layout.Extent
	agHint := uint32(ino >> (g.agBlkLog + g.inoPBLog))
	rest := []byte(target)
	for i := 0; i < nblk; i++ {
		agbno, _, ag, err := t.allocAnyAG(agHint, 1, ownData(ino, uint64(i), false))
		if err != nil {
			return err
		}
		fsb := uint64(ag)<<g.agBlkLog | uint64(agbno)
		kind := kindRaw
		if g.crc {
			kind = kindRemote
		}
		lin := g.fsbLinear(fsb)
		rb, err := t.newBuf(lin<<g.blockLog, int(g.blockSize), kind, at("symlink block", ino))
		if err != nil {
			return err
		}
		n := min(space, len(rest))
		if g.crc {
			d := rb.data
			binary.BigEndian.PutUint32(d[0:], layout.SymlinkMagic)
			binary.BigEndian.PutUint32(d[4:], uint32(len(target)-len(rest)))
			binary.BigEndian.PutUint32(d[8:], uint32(n))
			copy(d[0x10:0x20], g.metaUUID[:])
			binary.BigEndian.PutUint64(d[0x20:], ino)
			binary.BigEndian.PutUint64(d[0x28:], uint64(lin<<g.blockLog)/layout.BBSize)
			copy(d[layout.RemoteHdrSize:], rest[:n])
		} else {
			copy(rb.data, rest[:n])
		}
		t.markDirty(rb)
		rest = rest[n:]
		if k := len(exts) - 1; k >= 0 && exts[k].StartBlock+uint64(exts[k].Count) == fsb && exts[k].StartBlock>>g.agBlkLog == uint64(ag) {
			exts[k].Count++
		} else {
			exts = append(exts, layout.Extent{StartOff: uint64(i), StartBlock: fsb, Count: 1})
		}
	}
	in, err := t.f.inode(ino)
	if err != nil {
		return err
	}
	if _, err := t.writeDataFork(in, exts, nil); err != nil {
		return err
	}
	binary.BigEndian.PutUint64(b.data[0x38:], uint64(len(target)))
	binary.BigEndian.PutUint64(b.data[0x40:], uint64(nblk))
	binary.BigEndian.PutUint32(b.data[0x4C:], uint32(len(exts)))
	t.markDirty(b)
	return nil
}

// Remove deletes the file, symlink (not its target) or empty directory
// at p; an inode's last link frees it and its blocks.
func (f *FS) Remove(p string) error {
	defer f.wlock()()
	if err := f.writable("remove", p); err != nil {
		return err
	}
	r, err := f.lresolve("remove", p)
	if err != nil {
		return err
	}
	switch {
	case r.Path == "/" || r.Name == "":
		return vfs.PathErr("remove", p, fmt.Errorf("the root: %w", fs.ErrInvalid))
	case !r.Exists:
		return vfs.PathErr("remove", p, fs.ErrNotExist)
	}
	now := f.now()
	if err := f.inTx(func(t *tx) error { return t.unlink(r.Parent, r.Name, r.Node, now) }); err != nil {
		return vfs.PathErr("remove", p, err)
	}
	return nil
}

// unlink removes name (inode ino) from directory dir, freeing the inode
// with its last link.
func (t *tx) unlink(dir uint64, name string, ino uint64, now time.Time) error {
	if err := t.checkDirWrite(dir); err != nil {
		return err
	}
	in, err := t.f.inode(ino)
	if err != nil {
		return err
	}
	if in.core.Flags&(layout.FlagImmutable|layout.FlagAppend) != 0 {
		return fmt.Errorf("xfs: inode %d is immutable or append-only: %w", ino, fs.ErrPermission)
	}
	if in.isDir() {
		ents, err := t.f.dirEntries(in)
		if err != nil {
			return err
		}
		if len(ents) > 0 {
			return fmt.Errorf("xfs: directory inode %d is not empty: %w", ino, fs.ErrExist)
		}
	}
	got, err := t.dirRemoveEntry(dir, name, now)
	if err != nil {
		return err
	}
	if got != ino {
		return at("directory", dir).corrupt("entry %q names inode %d, resolved to %d", name, got, ino)
	}
	if !in.isDir() && in.core.Links() > 1 {
		b, c, err := t.inodeBuf(ino)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(b.data[0x10:], c.Nlink-1)
		t.touchCtime(b, c, now)
		t.frees = true // the name goes before the link count drops
		return nil
	}
	if err := t.freeForks(in); err != nil {
		return err
	}
	return t.ifree(in, now)
}

// Link makes newpath a second name for the non-directory at oldpath (a
// final symlink not followed).
func (f *FS) Link(oldpath, newpath string) error {
	defer f.wlock()()
	if err := f.writable("link", newpath); err != nil {
		return err
	}
	_, in, err := f.resolve("link", oldpath, false)
	if err != nil {
		return err
	}
	if in.isDir() {
		return vfs.PathErr("link", oldpath, vfs.ErrIsDir)
	}
	r, err := f.lresolve("link", newpath)
	if err != nil {
		return err
	}
	if r.Exists {
		return vfs.PathErr("link", newpath, fs.ErrExist)
	}
	if in.core.Links() >= maxLinks {
		return vfs.PathErr("link", oldpath, fmt.Errorf("xfs: inode %d has %d links: %w", in.ino, in.core.Links(), fs.ErrInvalid))
	}
	now := f.now()
	err = f.inTx(func(t *tx) error {
		if err := t.checkDirWrite(r.Parent); err != nil {
			return err
		}
		if in.core.Flags&(layout.FlagImmutable|layout.FlagAppend) != 0 {
			return fmt.Errorf("xfs: inode %d is immutable or append-only: %w", in.ino, fs.ErrPermission)
		}
		b, c, err := t.inodeBuf(in.ino)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(b.data[0x10:], c.Nlink+1)
		t.touchCtime(b, c, now)
		return t.dirAddEntry(r.Parent, r.Name, in.ino, uint32(c.Mode), now)
	})
	if err != nil {
		return vfs.PathErr("link", newpath, err)
	}
	return nil
}
