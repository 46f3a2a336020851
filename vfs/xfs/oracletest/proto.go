// Package oracletest checks the xfs engine against images built by
// mkfs.xfs -p from a host tree, with xfs_db as a second oracle; proto.go
// is the protofile generator that fixtures/xfs/mkimages.sh also uses.
package oracletest

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// WriteProtofile writes to w a mkfs.xfs protofile that reproduces the host
// tree at root: directories, regular files (their content read from the
// host path), symlinks, fifos, character and block devices, with mode,
// owner and group.
//
// Limits of the protofile format (xfsprogs 6.1), which the tests work
// around with xfs_db: no hard links (each name becomes its own inode), no
// sockets, no sticky bit, no extended attributes, no timestamps (all get
// mkfs time), names without spaces, colons or a leading '$', and regular
// files are written in full (holes in the source are filled with zeros).
func WriteProtofile(w io.Writer, root string) error {
	st, err := os.Lstat(root)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "guestinject\n0 0\n")
	if err := entry(w, "", root, st, 0); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "$")
	return err
}

func entry(w io.Writer, name, p string, st fs.FileInfo, depth int) error {
	if name != "" && (strings.ContainsAny(name, " \t\n:") || strings.HasPrefix(name, "$")) {
		return fmt.Errorf("%s: name cannot be written in a protofile", p)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", p)
	}
	m := st.Mode()
	typ := byte('-')
	switch {
	case m.IsDir():
		typ = 'd'
	case m&fs.ModeSymlink != 0:
		typ = 'l'
	case m&fs.ModeNamedPipe != 0:
		typ = 'p'
	case m&fs.ModeCharDevice != 0:
		typ = 'c'
	case m&fs.ModeDevice != 0:
		typ = 'b'
	case m.IsRegular():
	default:
		return fmt.Errorf("%s: type %v cannot be written in a protofile", p, m.Type())
	}
	su, sg := byte('-'), byte('-')
	if m&fs.ModeSetuid != 0 {
		su = 'u'
	}
	if m&fs.ModeSetgid != 0 {
		sg = 'g'
	}
	indent := strings.Repeat(" ", min(depth, 8))
	fmt.Fprintf(w, "%s%s %c%c%c%03o %d %d", indent, name, typ, su, sg, m.Perm(), sys.Uid, sys.Gid)
	switch typ {
	case '-':
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		if strings.ContainsAny(abs, " \t\n:") {
			return fmt.Errorf("%s: host path cannot be written in a protofile", abs)
		}
		fmt.Fprintf(w, " %s\n", abs)
	case 'l':
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if strings.ContainsAny(t, " \t\n:") {
			return fmt.Errorf("%s: symlink target %q cannot be written in a protofile", p, t)
		}
		fmt.Fprintf(w, " %s\n", t)
	case 'c', 'b':
		fmt.Fprintf(w, " %d %d\n", unix.Major(uint64(sys.Rdev)), unix.Minor(uint64(sys.Rdev)))
	case 'p':
		fmt.Fprintln(w)
	case 'd':
		fmt.Fprintln(w)
		ents, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		for _, e := range ents {
			cst, err := os.Lstat(filepath.Join(p, e.Name()))
			if err != nil {
				return err
			}
			if err := entry(w, e.Name(), filepath.Join(p, e.Name()), cst, depth+1); err != nil {
				return err
			}
		}
		if name != "" {
			fmt.Fprintf(w, "%s$\n", indent)
		}
	}
	return nil
}
