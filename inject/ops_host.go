package inject

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/klauspost/compress/zstd"

	"github.com/guestinject/guestinject/vfs"
)

// The operations that bring host files into the guest. They read the host
// while planning, so what is written is what was validated.

func init() {
	register(OpSpec{Name: "upload", Metavar: "LOCAL:GUEST", Example: "./motd:/etc/motd",
		Help: "copy the host file LOCAL to GUEST, or into GUEST when it is an existing directory; the host file's permissions are kept, its owner becomes root:root (--host-owners keeps the host's ids)"}, opUpload)
	register(OpSpec{Name: "copy-in", Metavar: "LOCALPATH:GUESTDIR", Example: "./etc-overlay:/etc",
		Help: "copy the host file or directory tree LOCALPATH into the existing guest directory GUESTDIR: files, directories and symlinks with their permissions; owners become root:root (--host-owners keeps the host's ids); other file types are refused"}, opCopyIn)
	register(OpSpec{Name: "tar-in", Metavar: "TARFILE:GUESTDIR", Example: "./app.tar.gz:/opt",
		Help: "unpack the host tar archive TARFILE (plain, gzip, bzip2 or zstd; detected by content) into the existing guest directory GUESTDIR, with the archive's permissions and numeric owners; members leaving GUESTDIR, devices and fifos are refused"}, opTarIn)
}

// readHost reads a host regular file, counted against the plan's budget.
func (c *opCtx) readHost(p string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: host file: %w", ErrInvalidOp, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%w: host %s is not a regular file", ErrInvalidOp, p)
	}
	if err := c.hold(fi.Size()); err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, fi.Size()+1))
	if err != nil {
		return nil, nil, fmt.Errorf("host %s: %w", p, err)
	}
	if int64(len(b)) != fi.Size() {
		return nil, nil, fmt.Errorf("%w: host %s changed size while read", ErrInvalidOp, p)
	}
	return b, fi, nil
}

// hostPerm is the permission part of a host mode as a vfs mode.
func hostPerm(m os.FileMode) fs.FileMode { return m & vfs.PermMask }

// hostOwner is the owner a host object gets in the guest.
func (c *opCtx) hostOwner(fi os.FileInfo) (int, int) {
	if !c.hostOwners {
		return 0, 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

func opUpload(c *opCtx, arg string) error {
	local, g, err := splitArg(arg, "LOCAL:GUEST")
	if err != nil {
		return err
	}
	dst, err := guestPath(g)
	if err != nil {
		return err
	}
	data, fi, err := c.readHost(local)
	if err != nil {
		return err
	}
	if dst, err = c.into(filepath.Base(local), dst); err != nil {
		return err
	}
	c.it.rep.Path = dst
	if _, err := c.writeFile(dst, data, false); err != nil {
		return err
	}
	if err := c.chmod(dst, hostPerm(fi.Mode())); err != nil {
		return err
	}
	uid, gid := c.hostOwner(fi)
	return c.chown(dst, uid, gid)
}

// guestDir resolves an existing guest directory an operation writes into.
func (c *opCtx) guestDir(op, g string) (string, error) {
	p, err := guestPath(g)
	if err != nil {
		return "", err
	}
	r, err := c.existing(op, p, true)
	if err != nil {
		return "", err
	}
	if !r.Node.typ.IsDir() {
		return "", vfs.PathErr(op, p, vfs.ErrNotDir)
	}
	return r.Path, nil
}

func opCopyIn(c *opCtx, arg string) error {
	local, g, err := splitArg(arg, "LOCALPATH:GUESTDIR")
	if err != nil {
		return err
	}
	dir, err := c.guestDir("copy-in", g)
	if err != nil {
		return err
	}
	clean := filepath.Clean(local)
	return c.copyInTree(clean, simJoin(dir, filepath.Base(clean)), 0)
}

// copyInTree copies the host object at local (not following a symlink)
// to the guest path dst.
func (c *opCtx) copyInTree(local, dst string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: host %s: directories nested deeper than %d", ErrInvalidOp, local, maxDepth)
	}
	fi, err := os.Lstat(local)
	if err != nil {
		return fmt.Errorf("%w: host path: %w", ErrInvalidOp, err)
	}
	uid, gid := c.hostOwner(fi)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(local)
		if err != nil {
			return fmt.Errorf("host %s: %w", local, err)
		}
		return c.symlinkForce(t, dst)
	case fi.IsDir():
		r, err := c.resolve(dst, false)
		if err != nil {
			return err
		}
		if r.Exists && !r.Node.typ.IsDir() {
			return vfs.PathErr("copy-in", dst, vfs.ErrNotDir)
		}
		if !r.Exists {
			if err := c.mkdirAll(dst); err != nil {
				return err
			}
		}
		entries, err := os.ReadDir(local)
		if err != nil {
			return fmt.Errorf("host %s: %w", local, err)
		}
		for _, e := range entries {
			if err := c.copyInTree(filepath.Join(local, e.Name()), simJoin(dst, e.Name()), depth+1); err != nil {
				return err
			}
		}
	case fi.Mode().IsRegular():
		data, _, err := c.readHost(local)
		if err != nil {
			return err
		}
		if err := c.replaceObject(dst, data); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: host %s: cannot copy a %v", vfs.ErrUnsupported, local, fi.Mode().Type())
	}
	if err := c.chmod(dst, hostPerm(fi.Mode())); err != nil {
		return err
	}
	return c.chown(dst, uid, gid)
}

// replaceObject writes a regular file at dst, replacing a symlink there
// rather than writing through it (as tar and cp do).
func (c *opCtx) replaceObject(dst string, data []byte) error {
	r, err := c.resolve(dst, false)
	if err != nil {
		return err
	}
	if r.Exists && r.Node.typ&fs.ModeSymlink != 0 {
		if err := c.remove(r.Path); err != nil {
			return err
		}
	}
	_, err = c.writeFile(dst, data, false)
	return err
}

// decompress returns a reader of the tar stream inside f, detecting gzip,
// bzip2 and zstd by their magic; xz is refused with the reason.
func decompress(f io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReader(f)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), func() {}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, nil, fmt.Errorf("%w: xz-compressed archives are not read; give it uncompressed or as .tar.gz, .tar.bz2 or .tar.zst", vfs.ErrUnsupported)
	}
	return br, func() {}, nil
}

func opTarIn(c *opCtx, arg string) error {
	local, g, err := splitArg(arg, "TARFILE:GUESTDIR")
	if err != nil {
		return err
	}
	dir, err := c.guestDir("tar-in", g)
	if err != nil {
		return err
	}
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("%w: host file: %w", ErrInvalidOp, err)
	}
	defer f.Close()
	r, done, err := decompress(f)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidOp, local, err)
	}
	defer done()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidOp, local, err)
		}
		if err := c.tarMember(local, dir, h, tr); err != nil {
			return err
		}
	}
}

// memberPath places a tar member name below dir, refusing one that
// leaves it.
func memberPath(dir, name string) (string, bool, error) {
	clean := path.Clean("/" + name)
	for _, comp := range strings.Split(name, "/") {
		if comp == ".." {
			return "", false, fmt.Errorf("%w: tar member %q leaves the target directory", ErrInvalidOp, name)
		}
	}
	if clean == "/" {
		return dir, true, nil
	}
	if dir == "/" {
		return clean, false, nil
	}
	return dir + clean, false, nil
}

func (c *opCtx) tarMember(archive, dir string, h *tar.Header, r io.Reader) error {
	dst, isDir, err := memberPath(dir, h.Name)
	if err != nil {
		return err
	}
	where := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%s member %q: %w", archive, h.Name, err)
	}
	if h.Uid < 0 || h.Gid < 0 || h.Uid > 1<<31-1 || h.Gid > 1<<31-1 {
		return where(fmt.Errorf("%w: owner %d:%d out of range", ErrInvalidOp, h.Uid, h.Gid))
	}
	perm := vfs.PermFromUnix(uint32(h.Mode) & 0o7777)
	switch h.Typeflag {
	case tar.TypeDir:
		r, err := c.resolve(dst, true)
		if err != nil && !isMissing(err) {
			return where(err)
		}
		if err != nil || !r.Exists {
			if err := c.mkdirAll(dst); err != nil {
				return where(err)
			}
		} else if !r.Node.typ.IsDir() {
			return where(vfs.PathErr("tar-in", dst, vfs.ErrNotDir))
		}
		if isDir {
			return nil // "./": the target directory keeps its attributes
		}
	case tar.TypeReg:
		if h.Size < 0 {
			return where(fmt.Errorf("%w: negative size", ErrInvalidOp))
		}
		if err := c.hold(h.Size); err != nil {
			return where(err)
		}
		data, err := io.ReadAll(io.LimitReader(r, h.Size))
		if err != nil {
			return where(err)
		}
		c.held -= h.Size // writeFile counts it
		if err := c.replaceObject(dst, data); err != nil {
			return where(err)
		}
	case tar.TypeSymlink:
		return where(c.symlinkForce(h.Linkname, dst))
	case tar.TypeLink:
		old, _, err := memberPath(dir, h.Linkname)
		if err != nil {
			return where(err)
		}
		if rr, err := c.resolve(dst, false); err == nil && rr.Exists {
			if err := c.remove(rr.Path); err != nil {
				return where(err)
			}
		}
		return where(c.link(old, dst))
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return where(fmt.Errorf("%w: member type %q (devices, fifos and the like cannot be made)", vfs.ErrUnsupported, h.Typeflag))
	}
	if err := c.chmod(dst, perm); err != nil {
		return where(err)
	}
	return where(c.chown(dst, h.Uid, h.Gid))
}
