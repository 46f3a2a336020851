package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/xfs"
)

// openForRead parses the read verbs' shared flags and opens TARGET
// read-only. It returns the positional arguments after TARGET.
func openForRead(verb string, args []string, long *bool, stderr io.Writer) (*guest, []string, error) {
	var img imageFlags
	fs := newFlagSet(verb)
	img.register(fs)
	img.registerShare(fs)
	var quiet bool
	fs.BoolVar(&quiet, "q", false, "")
	fs.BoolVar(&quiet, "quiet", false, "")
	if long != nil {
		fs.BoolVar(long, "l", false, "")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, flagError(err)
	}
	if err := img.parsed(fs); err != nil {
		return nil, nil, err
	}
	switch {
	case len(pos) == 1 && verb == "ls": // ls lists the root by default
		pos = append(pos, "/")
	case len(pos) < 2:
		return nil, nil, usagef("%s: want TARGET GUESTPATH", verb)
	}
	if quiet {
		stderr = io.Discard // warnings only: errors are returned
	}
	img.warnShare(warner(stderr))
	g, err := openGuest(pos[0], openOptions{allowDirty: true, warn: warner(stderr), img: img})
	if err != nil {
		return nil, nil, fmt.Errorf("target %w", err)
	}
	return g, pos[1:], nil
}

// warner prints warnings of the layers below on stderr.
func warner(stderr io.Writer) func(string) {
	return func(msg string) { fmt.Fprintf(stderr, "inject: warning: %s\n", msg) }
}

// runCat prints guest files in order; a failed one is reported and the
// rest still printed (exit 1 at the end), as cat(1) does. Files are
// streamed: memory stays constant whatever size the image gives them.
func runCat(args []string, stdout, stderr io.Writer) int {
	t, paths, err := openForRead("cat", args, nil, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, verbHelp("cat"))
		return exitOK
	}
	if err != nil {
		return fail(stderr, err)
	}
	defer t.release()
	status := exitOK
	for _, p := range paths {
		if err := catFile(t.fs, p, stdout); err != nil {
			fmt.Fprintf(stderr, "inject: cat: %s: %v\n", t.where, err)
			status = exitFail
		}
	}
	return status
}

// catFile copies the guest file p to w in pieces: the ext engine and a
// host directory serve it as a stream; only a backend without one (the
// in-memory memfs) goes through ReadFile.
func catFile(fsys vfs.FS, p string, w io.Writer) error {
	var r io.Reader
	switch f := fsys.(type) {
	case *ext.FS:
		fl, err := f.OpenFile(p)
		if err != nil {
			return err
		}
		r = fl.Reader()
	case *xfs.FS:
		fl, err := f.OpenFile(p)
		if err != nil {
			return err
		}
		r = fl.Reader()
	case *local.FS:
		fl, err := f.OpenFile(p)
		if err != nil {
			return err
		}
		defer fl.Close()
		r = fl
	default:
		b, err := fsys.ReadFile(p)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// runLs lists one guest directory (or describes one file).
func runLs(args []string, stdout, stderr io.Writer) int {
	var long bool
	t, paths, err := openForRead("ls", args, &long, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, verbHelp("ls"))
		return exitOK
	}
	if err == nil && len(paths) != 1 {
		t.release()
		err = usagef("ls: want exactly one GUESTPATH")
	}
	if err != nil {
		return fail(stderr, err)
	}
	defer t.release()
	r, ok := t.fs.(vfs.Reader)
	if !ok {
		return fail(stderr, fmt.Errorf("ls: this target cannot list directories: %w", vfs.ErrUnsupported))
	}
	ents, err := listing(r, paths[0])
	for _, e := range ents { // what could be read, even beside an error
		if long {
			fmt.Fprintln(stdout, longLine(e))
		} else {
			fmt.Fprintln(stdout, e.Name)
		}
	}
	if err != nil {
		return fail(stderr, fmt.Errorf("ls: %s: %w", t.where, err))
	}
	return exitOK
}

// listing returns the entries of the directory p leads to, or p itself
// when it is not a directory. Like ReadDir, it may return entries beside
// an error naming the ones it could not describe.
func listing(r vfs.Reader, p string) ([]vfs.FileInfo, error) {
	fi, err := r.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return r.ReadDir(p)
	}
	fi, err = r.Lstat(p)
	if err != nil {
		return nil, err
	}
	fi.Name = p
	return []vfs.FileInfo{fi}, nil
}

// longLine is one `ls -l` line: mode, uid, gid, size, name, link target.
func longLine(e vfs.FileInfo) string {
	s := fmt.Sprintf("%s %5d %5d %10d %s", lsMode(e.Mode), e.UID, e.GID, e.Size, e.Name)
	if e.Mode&fs.ModeSymlink != 0 {
		s += " -> " + e.Target
	}
	return s
}

// lsMode renders m as ls(1) does: a type letter, then rwx triplets with
// s/S for setuid and setgid and t/T for sticky.
func lsMode(m fs.FileMode) string {
	b := []byte("?rwxrwxrwx")
	b[0] = typeLetter(m)
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special(b, 3, m&fs.ModeSetuid != 0, 's')
	special(b, 6, m&fs.ModeSetgid != 0, 's')
	special(b, 9, m&fs.ModeSticky != 0, 't')
	return string(b)
}

// special marks a setuid, setgid or sticky bit in the execute slot i:
// lower case when the execute bit is set too, upper case when not.
func special(b []byte, i int, set bool, c byte) {
	if !set {
		return
	}
	if b[i] == '-' {
		c -= 'a' - 'A'
	}
	b[i] = c
}

func typeLetter(m fs.FileMode) byte {
	switch {
	case m.IsDir():
		return 'd'
	case m&fs.ModeSymlink != 0:
		return 'l'
	case m&fs.ModeCharDevice != 0:
		return 'c'
	case m&fs.ModeDevice != 0:
		return 'b'
	case m&fs.ModeNamedPipe != 0:
		return 'p'
	case m&fs.ModeSocket != 0:
		return 's'
	case m.IsRegular():
		return '-'
	}
	return '?'
}
