package inject

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// The operations on guest files, with virt-customize's spellings and
// semantics (virt-customize(1)).

func init() {
	register(OpSpec{Name: "mkdir", Metavar: "DIR", Example: "/opt/app/conf",
		Help: "create a directory and any missing parents (mkdir -p); an existing directory is left as it is"}, opMkdir)
	register(OpSpec{Name: "chmod", Metavar: "PERMS:FILE", Example: "0755:/usr/local/bin/run",
		Help: "set FILE's permissions; PERMS is octal with a leading 0 (0755): virt-customize reads PERMS without one as decimal, so such a value is refused here"}, opChmod)
	register(OpSpec{Name: "chown", Metavar: "USER:GROUP:FILE", Example: "debian:debian:/home/debian/app",
		Help: "set FILE's owner and group; names are looked up in the guest's /etc/passwd and /etc/group (as the operations before leave them), a decimal id is taken as it is, an empty USER or GROUP is left unchanged"}, opChown)
	register(OpSpec{Name: "link", Metavar: "TARGET:LINK[:LINK...]", Example: "/usr/bin/python3:/usr/local/bin/python",
		Help: "make each LINK a symbolic link to TARGET (ln -sf: an existing non-directory LINK is replaced)"}, opLink)
	register(OpSpec{Name: "delete", Metavar: "PATH", Example: "/var/log/*.log",
		Help: "delete PATH and, for a directory, everything below it (rm -rf; a symlink itself, not what it points to); shell globs (* ? [...]) expand in the guest; no match deletes nothing"}, opDelete)
	register(OpSpec{Name: "move", Metavar: "SOURCE:DEST", Example: "/etc/motd:/etc/motd.orig",
		Help: "move SOURCE to DEST (mv); into DEST when DEST is an existing directory"}, opMove)
	register(OpSpec{Name: "copy", Metavar: "SOURCE:DEST", Example: "/etc/skel:/home/ops",
		Help: "copy SOURCE to DEST recursively keeping modes, owners and symlinks (cp -a); into DEST when DEST is an existing directory"}, opCopy)
	register(OpSpec{Name: "touch", Metavar: "FILE", Example: "/etc/cloud/cloud-init.disabled",
		Help: "create FILE empty if it is missing, else set its times to now; FILE must be a regular file"}, opTouch)
	register(OpSpec{Name: "truncate", Metavar: "FILE", Example: "/etc/machine-id",
		Help: "make the existing FILE empty"}, opTruncate)
	register(OpSpec{Name: "truncate-recursive", Metavar: "PATH", Example: "/var/log",
		Help: "make every regular file under PATH empty (symlinks are not followed)"}, opTruncateRecursive)
	register(OpSpec{Name: "write", Metavar: "FILE:CONTENT", Example: "/etc/motd:welcome",
		Help: "set FILE's content to CONTENT (no newline added); a new file is 0644 root:root"}, opWrite)
	register(OpSpec{Name: "append-line", Metavar: "FILE:LINE", Example: "/etc/hosts:10.0.0.1 db",
		Help: "append LINE and a line end to FILE, first adding a line end if the file lacks a final one; the line end is the file's own, judged from its first 8 KiB as virt-customize does (CRLF if one is there, else LF); a missing or empty file gets LINE and LF"}, opAppendLine)
}

func opMkdir(c *opCtx, arg string) error {
	p, err := guestPath(arg)
	if err != nil {
		return err
	}
	return c.mkdirAll(p)
}

// parsePerms reads --chmod's PERMS: octal with a leading 0.
func parsePerms(s string) (fs.FileMode, error) {
	if len(s) < 2 || s[0] != '0' {
		return 0, fmt.Errorf("%w: permissions %q: write them in octal with a leading 0, e.g. 0755 (virt-customize would read %q as decimal)", ErrInvalidOp, s, s)
	}
	v, err := strconv.ParseUint(s[1:], 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("%w: permissions %q: want octal 00000 to 07777", ErrInvalidOp, s)
	}
	return vfs.PermFromUnix(uint32(v)), nil
}

func opChmod(c *opCtx, arg string) error {
	perms, file, err := splitArg(arg, "PERMS:FILE")
	if err != nil {
		return err
	}
	mode, err := parsePerms(perms)
	if err != nil {
		return err
	}
	p, err := guestPath(file)
	if err != nil {
		return err
	}
	c.it.rep.Path = p
	return c.chmod(p, mode)
}

func opChown(c *opCtx, arg string) error {
	parts := strings.SplitN(arg, ":", 3)
	if len(parts) != 3 || parts[0] == "" && parts[1] == "" {
		return fmt.Errorf("%w: %q: want USER:GROUP:FILE", ErrInvalidOp, arg)
	}
	p, err := guestPath(parts[2])
	if err != nil {
		return err
	}
	c.it.rep.Path = p
	uid, gid, err := c.resolveOwner(parts[0], parts[1])
	if err != nil {
		return err
	}
	r, err := c.existing("chown", p, true)
	if err != nil {
		return err
	}
	if uid < 0 {
		uid = int(r.Node.uid)
	}
	if gid < 0 {
		gid = int(r.Node.gid)
	}
	return c.chown(p, uid, gid)
}

func opLink(c *opCtx, arg string) error {
	parts := strings.Split(arg, ":")
	if len(parts) < 2 || parts[0] == "" {
		return fmt.Errorf("%w: %q: want TARGET:LINK[:LINK...]", ErrInvalidOp, arg)
	}
	target := parts[0]
	for _, l := range parts[1:] {
		p, err := guestPath(l)
		if err != nil {
			return err
		}
		if err := c.symlinkForce(target, p); err != nil {
			return err
		}
	}
	return nil
}

// symlinkForce is ln -sf TARGET LINK: an existing LINK that is no
// directory is replaced; a directory (even through a symlink, as ln
// follows one) is refused rather than given a link inside it.
func (c *opCtx) symlinkForce(target, p string) error {
	r, err := c.resolve(p, false)
	if err != nil {
		return err
	}
	if r.Exists {
		f, err := c.resolve(p, true)
		if err == nil && f.Exists && f.Node.typ.IsDir() {
			return vfs.PathErr("link", p, fmt.Errorf("%w: %w: ln -sf would put the link inside the directory; name the link itself", ErrInvalidOp, vfs.ErrIsDir))
		}
		if err := c.remove(r.Path); err != nil {
			return err
		}
		if err := c.symlink(target, r.Path); err != nil {
			return err
		}
		if c.it != nil {
			for i := range c.it.changes {
				if c.it.changes[i].Path == r.Path {
					c.it.changes[i].Change, c.it.changes[i].Type = ChangeReplace, "symlink"
				}
			}
		}
		return nil
	}
	return c.symlink(target, p)
}

func opDelete(c *opCtx, arg string) error {
	if arg == "" || arg[0] != '/' {
		return fmt.Errorf("%w: %q: want an absolute guest path or glob", ErrInvalidOp, arg)
	}
	matches, err := c.glob(arg)
	if err != nil {
		return err
	}
	for _, p := range matches {
		if p == "/" {
			return vfs.PathErr("delete", arg, fmt.Errorf("%w: refusing to delete the guest root", ErrInvalidOp))
		}
		if err := c.removeAll(p, 0); err != nil {
			return err
		}
	}
	if len(matches) == 0 {
		c.it.rep.Summary = "no match"
	}
	return nil
}

// hasGlob reports whether s holds a glob metacharacter.
func hasGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// glob expands an absolute shell pattern in the guest as glob(3) does:
// a wildcard does not match a leading dot, directories on the way are
// followed through symlinks, and the matches come sorted. A pattern
// without metacharacters matches itself when it exists (a dangling
// symlink included).
func (c *opCtx) glob(pattern string) ([]string, error) {
	comps := splitClean(pattern)
	cur := []string{"/"}
	for i, comp := range comps {
		last := i == len(comps)-1
		var next []string
		for _, dir := range cur {
			if !hasGlob(comp) {
				p := simJoin(dir, comp)
				r, err := c.resolve(p, !last)
				if err != nil && !isMissing(err) {
					return nil, err
				}
				if err == nil && r.Exists {
					next = append(next, p)
				}
				continue
			}
			if _, err := path.Match(comp, ""); err != nil {
				return nil, fmt.Errorf("%w: glob %q: %w", ErrInvalidOp, pattern, err)
			}
			r, err := c.resolve(dir, true)
			if err != nil || !r.Exists || !r.Node.typ.IsDir() {
				if err != nil && !isMissing(err) {
					return nil, err
				}
				continue
			}
			names, err := c.names(r.Node)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if n[0] == '.' && comp[0] != '.' {
					continue
				}
				if ok, _ := path.Match(comp, n); ok {
					next = append(next, simJoin(dir, n))
				}
			}
		}
		cur = next
		if len(cur) == 0 {
			return nil, nil
		}
		if len(cur) > 1<<20 {
			return nil, fmt.Errorf("%w: glob %q matches more than %d paths", ErrInvalidOp, pattern, 1<<20)
		}
	}
	return cur, nil
}

func isMissing(err error) bool {
	return err != nil && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, vfs.ErrNotDir))
}

// into returns dest, or dest/base(src) when dest is an existing directory
// (following symlinks), as mv and cp do.
func (c *opCtx) into(src, dest string) (string, error) {
	r, err := c.resolve(dest, true)
	if err != nil && !isMissing(err) {
		return "", err
	}
	if err == nil && r.Exists && r.Node.typ.IsDir() {
		return simJoin(r.Path, path.Base(src)), nil
	}
	return dest, nil
}

// sourceDest parses op's SOURCE:DEST, resolves the existing source (a
// final symlink not followed) and where it goes: into DEST when DEST is a
// directory, else DEST itself.
func sourceDest(c *opCtx, op, arg string) (vfs.Resolved[*mnode], string, error) {
	s, d, err := splitArg(arg, "SOURCE:DEST")
	if err != nil {
		return vfs.Resolved[*mnode]{}, "", err
	}
	src, err := guestPath(s)
	if err != nil {
		return vfs.Resolved[*mnode]{}, "", err
	}
	dst, err := guestPath(d)
	if err != nil {
		return vfs.Resolved[*mnode]{}, "", err
	}
	sr, err := c.existing(op, src, false)
	if err != nil {
		return vfs.Resolved[*mnode]{}, "", err
	}
	c.it.rep.Path = sr.Path
	dst, err = c.into(sr.Path, dst)
	return sr, dst, err
}

func opMove(c *opCtx, arg string) error {
	sr, dst, err := sourceDest(c, "move", arg)
	if err != nil {
		return err
	}
	return c.rename(sr.Path, dst)
}

func opCopy(c *opCtx, arg string) error {
	sr, dst, err := sourceDest(c, "copy", arg)
	if err != nil {
		return err
	}
	dr, err := c.resolve(dst, false)
	if err != nil {
		return err
	}
	if sr.Node.typ.IsDir() && (dr.Path == sr.Path || strings.HasPrefix(dr.Path, sr.Path+"/")) {
		return vfs.PathErr("copy", dst, fmt.Errorf("%w: cannot copy a directory into itself", ErrInvalidOp))
	}
	return c.copyTree(sr.Path, sr.Node, dr.Path, 0)
}

// copyTree copies the node n (at src) to dst as cp -a does: content,
// permissions, owner, symlinks as symlinks, directories merged.
func (c *opCtx) copyTree(src string, n *mnode, dst string, depth int) error {
	switch {
	case n.typ.IsDir():
		if err := c.enter(n, src, depth); err != nil {
			return err
		}
		r, err := c.resolve(dst, false)
		if err != nil {
			return err
		}
		if r.Exists && !r.Node.typ.IsDir() {
			return vfs.PathErr("copy", dst, vfs.ErrNotDir)
		}
		if !r.Exists {
			if err := c.mkdirAll(dst); err != nil {
				return err
			}
		}
		names, err := c.names(n)
		if err != nil {
			return err
		}
		kids := n.kids
		for _, name := range names {
			if err := c.copyTree(simJoin(src, name), kids[name], simJoin(dst, name), depth+1); err != nil {
				return err
			}
		}
	case n.typ&fs.ModeSymlink != 0:
		t, err := c.Readlink(n)
		if err != nil {
			return vfs.PathErr("copy", src, err)
		}
		if err := c.symlinkForce(t, dst); err != nil {
			return err
		}
		return nil // the owner of a symlink itself cannot be set through vfs
	case n.typ == 0:
		data, err := c.content(n, src)
		if err != nil {
			return err
		}
		r, err := c.resolve(dst, false)
		if err != nil {
			return err
		}
		if r.Exists && r.Node.typ&fs.ModeSymlink != 0 {
			if err := c.remove(r.Path); err != nil { // cp -a replaces a symlink, never writes through it
				return err
			}
		}
		if _, err := c.writeFile(dst, data, false); err != nil {
			return err
		}
	default:
		return vfs.PathErr("copy", src, fmt.Errorf("%w: cannot copy a %s", vfs.ErrUnsupported, typeName(n.typ)))
	}
	if err := c.chmod(dst, n.perm); err != nil {
		return err
	}
	return c.chown(dst, int(n.uid), int(n.gid))
}

func opTouch(c *opCtx, arg string) error {
	p, err := guestPath(arg)
	if err != nil {
		return err
	}
	r, err := c.resolve(p, false)
	if err != nil {
		return err
	}
	if !r.Exists {
		_, err := c.writeFile(p, nil, true)
		return err
	}
	if r.Node.typ != 0 {
		return vfs.PathErr("touch", p, fmt.Errorf("%w: touch works on regular files only", vfs.ErrNotRegular))
	}
	return c.setTimes(r.Path, time.Now())
}

func opTruncate(c *opCtx, arg string) error {
	p, err := guestPath(arg)
	if err != nil {
		return err
	}
	if _, err := c.existing("truncate", p, true); err != nil {
		return err
	}
	_, err = c.writeFile(p, nil, false)
	return err
}

func opTruncateRecursive(c *opCtx, arg string) error {
	p, err := guestPath(arg)
	if err != nil {
		return err
	}
	r, err := c.existing("truncate", p, true)
	if err != nil {
		return err
	}
	return c.truncateTree(r.Path, r.Node, 0)
}

func (c *opCtx) truncateTree(p string, n *mnode, depth int) error {
	switch {
	case n.typ == 0:
		_, err := c.writeFile(p, nil, false)
		return err
	case !n.typ.IsDir():
		return nil
	}
	if err := c.enter(n, p, depth); err != nil {
		return err
	}
	names, err := c.names(n)
	if err != nil {
		return err
	}
	kids := n.kids
	for _, name := range names {
		if err := c.truncateTree(simJoin(p, name), kids[name], depth+1); err != nil {
			return err
		}
	}
	return nil
}

func opWrite(c *opCtx, arg string) error {
	f, content, err := splitArg(arg, "FILE:CONTENT")
	if err != nil {
		return err
	}
	p, err := guestPath(f)
	if err != nil {
		return err
	}
	c.it.rep.Path = p
	_, err = c.writeFile(p, []byte(content), false)
	return err
}

func opAppendLine(c *opCtx, arg string) error {
	f, line, err := splitArg(arg, "FILE:LINE")
	if err != nil {
		return err
	}
	p, err := guestPath(f)
	if err != nil {
		return err
	}
	c.it.rep.Path = p
	r, err := c.resolve(p, true)
	if err != nil {
		return err
	}
	var old []byte
	if r.Exists && r.Node.typ != 0 {
		return vfs.PathErr("append-line", p, vfs.ErrNotRegular)
	}
	if r.Exists {
		if old, err = c.config(r.Node, r.Path); err != nil {
			return err
		}
	}
	nl := lineEnd(old)
	var add []byte
	if len(old) > 0 && !bytes.HasSuffix(old, []byte(nl)) {
		add = append(add, nl...)
	}
	add = append(append(add, line...), nl...)
	_, err = c.writeFile(p, add, true)
	return err
}

// lineEnd is the line ending a file uses, judged as virt-customize does
// from its first 8 KiB: CRLF if one is there, else LF, else a lone CR,
// else LF.
func lineEnd(b []byte) string {
	head := b[:min(len(b), 8192)]
	switch {
	case bytes.Contains(head, []byte("\r\n")):
		return "\r\n"
	case bytes.Contains(head, []byte("\n")):
		return "\n"
	case bytes.Contains(head, []byte("\r")):
		return "\r"
	}
	return "\n"
}
