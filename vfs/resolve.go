package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Limits of guest path resolution, the same the Linux kernel applies.
const (
	MaxSymlinkHops = 40   // symlinks followed while resolving one path
	MaxPathLen     = 4096 // bytes in a path or a symlink target (PATH_MAX)
	MaxNameLen     = 255  // bytes in one path component (NAME_MAX)
)

// Tree is what a backend gives the shared resolver: a root, one-name
// lookups in a directory, an object's type, and a symlink's target. N is
// the backend's handle for an object (an inode number, a host path, a
// node pointer).
type Tree[N any] interface {
	Root() (N, error)
	// Lookup finds name (never "", "." or "..") in directory dir; a
	// missing name is an error wrapping fs.ErrNotExist.
	Lookup(dir N, name string) (N, error)
	// Type returns the type bits of n (fs.ModeDir, fs.ModeSymlink, 0 for
	// a regular file, ...).
	Type(n N) (fs.FileMode, error)
	// Readlink returns the target of the symlink n.
	Readlink(n N) (string, error)
}

// Resolved is where a guest path leads.
type Resolved[N any] struct {
	// Node is the object the path names; meaningful only when Exists.
	Node   N
	Exists bool
	// Parent is the directory that holds (or would hold) the object, and
	// Name its name there; for the root itself Parent is the root and
	// Name is "".
	Parent N
	Name   string
	// Path is the canonical guest path of the object: absolute, with no
	// symlink, "." or ".." left in it.
	Path string
}

// CheckPath validates a guest-absolute path: it must start with "/", hold no
// NUL byte, and respect MaxPathLen and MaxNameLen.
func CheckPath(p string) error {
	switch {
	case p == "" || p[0] != '/':
		return fmt.Errorf("%w: %q is not absolute", ErrInvalidPath, p)
	case len(p) > MaxPathLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidPath, MaxPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("%w: NUL byte", ErrInvalidPath)
	}
	for _, c := range strings.Split(p, "/") {
		if len(c) > MaxNameLen {
			return fmt.Errorf("%w: component longer than %d bytes", ErrInvalidPath, MaxNameLen)
		}
	}
	return nil
}

// Resolve walks the guest path p from t's root with guest semantics: an
// absolute symlink target restarts from the guest root, ".." never climbs
// above the guest root, more than MaxSymlinkHops symlinks is
// ErrTooManyLinks. Intermediate symlinks are always followed; the final one
// only when followLast is set.
//
// A missing final component is not an error: Exists is false and Parent and
// Name say where it would be created (through a dangling final symlink when
// followLast is set, as the kernel's open(O_CREAT) does). A missing or
// non-directory intermediate component is fs.ErrNotExist or ErrNotDir.
// Errors are *fs.PathError values naming p.
func Resolve[N any](t Tree[N], p string, followLast bool) (Resolved[N], error) {
	var r Resolved[N]
	fail := func(err error) (Resolved[N], error) { return Resolved[N]{}, PathErr("resolve", p, err) }
	if err := CheckPath(p); err != nil {
		return fail(err)
	}
	root, err := t.Root()
	if err != nil {
		return fail(err)
	}
	type elem struct {
		name string
		node N
	}
	var stack []elem // resolved components below the root
	cur := func() N {
		if len(stack) == 0 {
			return root
		}
		return stack[len(stack)-1].node
	}
	// A trailing slash names a directory: the final symlink is followed
	// and a final non-directory is ErrNotDir, as in the kernel.
	slash := len(p) > 1 && p[len(p)-1] == '/'
	followLast = followLast || slash
	isDir := func(n N) error {
		typ, err := t.Type(n)
		if err == nil && !typ.IsDir() {
			err = ErrNotDir
		}
		return err
	}
	todo := splitPath(p)
	hops := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		dir := cur()
		if err := isDir(dir); err != nil {
			return fail(err) // "x/name", "x/." and "x/.." need x to be a directory
		}
		if name == "." {
			continue
		}
		if name == ".." {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		last := len(todo) == 0
		n, err := t.Lookup(dir, name)
		if errors.Is(err, fs.ErrNotExist) && last {
			r.Parent, r.Name, r.Path = dir, name, joinStack(len(stack), func(i int) string { return stack[i].name })+"/"+name
			if len(stack) == 0 {
				r.Path = "/" + name
			}
			return r, nil
		}
		if err != nil {
			return fail(err)
		}
		typ, err := t.Type(n)
		if err != nil {
			return fail(err)
		}
		if typ&fs.ModeSymlink != 0 && (!last || followLast) {
			hops++
			if hops > MaxSymlinkHops {
				return fail(ErrTooManyLinks)
			}
			target, err := t.Readlink(n)
			if err != nil {
				return fail(err)
			}
			if target == "" {
				return fail(fs.ErrNotExist)
			}
			if len(target) > MaxPathLen || strings.IndexByte(target, 0) >= 0 {
				return fail(fmt.Errorf("%w: symlink %q has an invalid target", ErrInvalidPath, name))
			}
			if target[0] == '/' {
				stack = stack[:0]
			}
			todo = append(splitPath(target), todo...)
			continue
		}
		stack = append(stack, elem{name, n})
	}
	if slash {
		if err := isDir(cur()); err != nil {
			return fail(err)
		}
	}
	r.Exists = true
	r.Path = joinStack(len(stack), func(i int) string { return stack[i].name })
	switch len(stack) {
	case 0:
		r.Node, r.Parent, r.Name, r.Path = root, root, "", "/"
	case 1:
		r.Node, r.Parent, r.Name = stack[0].node, root, stack[0].name
	default:
		top := stack[len(stack)-1]
		r.Node, r.Parent, r.Name = top.node, stack[len(stack)-2].node, top.name
	}
	return r, nil
}

// splitPath returns p's components without empty ones. A "." stays: the
// component before it must be a directory.
func splitPath(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func joinStack(n int, name func(int) string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte('/')
		b.WriteString(name(i))
	}
	return b.String()
}

// Exists answers FS.HasFile for a backend that resolves through t: whether
// p names an object, a final symlink followed (a dangling one does not).
// A missing or non-directory component on the way means no; any other
// failure (I/O, a loop, corrupt metadata) is an error naming "stat" and p.
func Exists[N any](t Tree[N], p string) (bool, error) {
	r, err := Resolve(t, p, true)
	switch {
	case err == nil:
		return r.Exists, nil
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotDir):
		return false, nil
	}
	return false, Relabel("stat", p, err)
}

// Relabel gives an error from Resolve (which names its operation
// "resolve") the caller's operation name, keeping the cause.
func Relabel(op, p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return PathErr(op, p, pe.Err)
	}
	return PathErr(op, p, err)
}
