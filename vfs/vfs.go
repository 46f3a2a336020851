// Package vfs defines the small interface every guest filesystem backend
// serves (a host directory holding a guest root, the in-process ext and XFS
// engines, an in-memory tree for tests) and the guest-semantic helpers they share:
// path resolution with symlinks that never leave the guest root, and owner
// lookup against the guest's own /etc/passwd and /etc/group.
//
// Paths given to an FS are guest-absolute ("/etc/passwd"). Errors are
// *fs.PathError values carrying the guest path; compare them with errors.Is
// against fs.ErrNotExist, fs.ErrExist, fs.ErrPermission and the sentinels
// of this package.
package vfs

import (
	"io/fs"
	"time"
)

// FS is the seven operations of a guest filesystem, the same set OpenStack
// nova's disk VFS offers.
type FS interface {
	// MakePath creates a directory and any missing parents (mkdir -p).
	// New directories are 0755 root:root.
	MakePath(path string) error
	// AppendFile appends data to a regular file, creating it (0644
	// root:root) if it is missing. The parent directory must exist.
	AppendFile(path string, data []byte) error
	// ReplaceFile sets a regular file's content to data, creating it
	// (0644 root:root) if missing or truncating it if present.
	ReplaceFile(path string, data []byte) error
	// ReadFile returns a regular file's content.
	ReadFile(path string) ([]byte, error)
	// HasFile reports whether path names an existing object. A dangling
	// symlink is reported as missing. An error is returned only when the
	// question cannot be answered (I/O failure, symlink loop, corrupt
	// metadata).
	HasFile(path string) (bool, error)
	// SetPermissions sets the permission bits of path: mode may hold
	// fs.ModePerm bits and fs.ModeSetuid, fs.ModeSetgid, fs.ModeSticky.
	SetPermissions(path string, mode fs.FileMode) error
	// SetOwnership changes the owner and group of path. user and group
	// are names or decimal ids resolved against the guest's /etc/passwd
	// and /etc/group (never the host's); an empty string leaves that id
	// unchanged.
	SetOwnership(path, user, group string) error
}

// FileInfo describes one guest object, as Stat, Lstat and ReadDir report it.
type FileInfo struct {
	Name    string      // last path element
	Mode    fs.FileMode // type bits and permissions (setuid/setgid/sticky included)
	UID     uint32
	GID     uint32
	Size    int64
	Nlink   uint32
	Ino     uint64    // inode number where the backend has one, else 0
	ModTime time.Time // last modification
	Rdev    uint64    // device number for block and character devices
	Target  string    // symlink target, filled by Lstat and ReadDir for symlinks
}

// IsDir reports whether the object is a directory.
func (fi FileInfo) IsDir() bool { return fi.Mode.IsDir() }

// Reader is the optional read side a backend may serve beyond FS; the CLI's
// `ls` and `cat` and the injectors' checks use it when present.
type Reader interface {
	// Stat follows a final symlink (with guest semantics); Lstat does not.
	Stat(path string) (FileInfo, error)
	Lstat(path string) (FileInfo, error)
	// ReadDir lists a directory (without "." and ".."), sorted by name,
	// each entry described as by Lstat.
	ReadDir(path string) ([]FileInfo, error)
	// Readlink returns the target of the symlink at path.
	Readlink(path string) (string, error)
}

// XattrReader is served by backends that have extended attributes. Like
// XattrWriter, it does not follow a final symlink: a link's own attributes
// (its SELinux label) are read, as lgetxattr reads them.
type XattrReader interface {
	// ListXattr returns the full names ("user.foo", "security.selinux")
	// of path's extended attributes, sorted.
	ListXattr(path string) ([]string, error)
	// GetXattr returns one attribute's value; a missing one is ErrNoXattr.
	GetXattr(path, name string) ([]byte, error)
}

// Symlinker is served by backends that can create symbolic links.
type Symlinker interface {
	// Symlink creates a symlink at path pointing to target (stored
	// verbatim; it is resolved with guest semantics when followed).
	Symlink(target, path string) error
}

// Remover is served by backends that can remove objects.
type Remover interface {
	// Remove deletes a file, a symlink or an empty directory.
	Remove(path string) error
}

// Renamer is served by backends that can move an object inside the guest.
type Renamer interface {
	// Rename moves oldpath to newpath, as rename(2) does on one
	// filesystem: an existing newpath that is a file or symlink is
	// replaced; an existing directory newpath must be empty and oldpath
	// a directory too; a directory cannot move into its own subtree.
	// Neither final component is followed if it is a symlink.
	Rename(oldpath, newpath string) error
}

// Linker is served by backends that can create hard links.
type Linker interface {
	// Link makes newpath a second name for the non-directory oldpath
	// (oldpath's final symlink, if any, is not followed).
	Link(oldpath, newpath string) error
}

// XattrWriter is served by backends that can write extended attributes.
type XattrWriter interface {
	// SetXattr creates or replaces one attribute ("security.selinux",
	// "user.foo") of path; a final symlink is not followed.
	SetXattr(path, name string, value []byte) error
	// RemoveXattr deletes one attribute; a missing one is ErrNoXattr.
	RemoveXattr(path, name string) error
}

// TimeSetter is served by backends that can set timestamps.
type TimeSetter interface {
	// SetTimes sets path's access and modification times (and the
	// change time to now, as utimensat does); a final symlink is not
	// followed.
	SetTimes(path string, atime, mtime time.Time) error
}

// Truncater is served by backends that can change a file's size in place.
type Truncater interface {
	// Truncate sets a regular file's size: shorter drops the tail and
	// frees its blocks, longer adds a hole that reads as zeros.
	Truncate(path string, size int64) error
}

// PermMask is the part of an fs.FileMode that SetPermissions accepts.
const PermMask = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// UnixPerm converts the permission part of a FileMode to the unix 07777 bits.
func UnixPerm(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// PermFromUnix converts unix 07777 permission bits to a FileMode.
func PermFromUnix(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Unix file type bits, as stored in an inode's i_mode and in tar headers.
const (
	UnixTypeMask = 0o170000
	UnixSocket   = 0o140000
	UnixSymlink  = 0o120000
	UnixRegular  = 0o100000
	UnixBlock    = 0o060000
	UnixDir      = 0o040000
	UnixChar     = 0o020000
	UnixFIFO     = 0o010000
)

// ModeFromUnix converts a full unix mode (type and permission bits) to a
// FileMode. An unknown type becomes fs.ModeIrregular.
func ModeFromUnix(u uint32) fs.FileMode {
	m := PermFromUnix(u & 0o7777)
	switch u & UnixTypeMask {
	case UnixRegular:
	case UnixDir:
		m |= fs.ModeDir
	case UnixSymlink:
		m |= fs.ModeSymlink
	case UnixBlock:
		m |= fs.ModeDevice
	case UnixChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case UnixFIFO:
		m |= fs.ModeNamedPipe
	case UnixSocket:
		m |= fs.ModeSocket
	default:
		m |= fs.ModeIrregular
	}
	return m
}
