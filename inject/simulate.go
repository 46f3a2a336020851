package inject

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"strconv"
	"strings"

	"github.com/guestinject/guestinject/vfs"
)

// The injectors' checks read the guest as it is, but each write lands on
// the guest as the earlier writes left it, and resolves its path the way
// the backend does (vfs.Resolve: the final symlink followed for a write,
// a missing parent an error unless MakePath made it). simulate replays
// every planned step, in apply order, on a model of the guest that lays
// the objects the earlier steps create over the backend's tree, with
// exactly those resolution rules; a step the model refuses fails its item
// before anything is written, in the dry run and in the real run alike.

// simTree is the guest as the planned steps leave it, as a vfs.Tree whose
// nodes are canonical guest paths (no symlink in them).
type simTree struct {
	r vfs.Reader
	// oneLink: the backend refuses to change a non-directory with several
	// hard links (vfs/local).
	oneLink bool
	made    map[string]fs.FileMode // objects planned steps create: canonical path -> type
	cache   map[string]simStat     // backend Lstat answers; nothing is written while planning
	attrs   map[string]simAttr     // mode and owner planned steps set: canonical path -> attributes
}

// simAttr is the mode and owner of an object as the planned steps leave
// it (an empty field: not set by the plan).
type simAttr struct {
	perm  string // "%04o"
	owner string // "uid:gid"
}

type simStat struct {
	fi  vfs.FileInfo
	err error
}

func newSimTree(r vfs.Reader) *simTree {
	return &simTree{r: r, made: map[string]fs.FileMode{}, cache: map[string]simStat{}, attrs: map[string]simAttr{}}
}

func (t *simTree) lstat(p string) (vfs.FileInfo, error) {
	if s, ok := t.cache[p]; ok {
		return s.fi, s.err
	}
	fi, err := t.r.Lstat(p)
	t.cache[p] = simStat{fi, err}
	return fi, err
}

func simJoin(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func (t *simTree) Root() (string, error) { return "/", nil }

func (t *simTree) Lookup(dir, name string) (string, error) {
	p := simJoin(dir, name)
	if _, ok := t.made[p]; ok {
		return p, nil
	}
	if _, ok := t.made[dir]; ok { // a directory the plan creates is empty
		return "", fs.ErrNotExist
	}
	if _, err := t.lstat(p); err != nil {
		return "", err
	}
	return p, nil
}

func (t *simTree) Type(n string) (fs.FileMode, error) {
	if typ, ok := t.made[n]; ok {
		return typ, nil
	}
	if n == "/" {
		return fs.ModeDir, nil
	}
	fi, err := t.lstat(n)
	if err != nil {
		return 0, err
	}
	return fi.Mode.Type(), nil
}

func (t *simTree) Readlink(n string) (string, error) {
	fi, err := t.lstat(n)
	if err == nil && fi.Target != "" {
		return fi.Target, nil
	}
	return t.r.Readlink(n)
}

// simulate runs every step of the items that validated through the model;
// an item whose step the model refuses fails (its creations are taken
// back, so a later item is judged without them, as a skipped optional
// item leaves the guest). A backend that cannot stat is not modelled.
func simulate(fsys vfs.FS, items []*item) {
	r, ok := fsys.(vfs.Reader)
	if !ok {
		return
	}
	t := newSimTree(r)
	if lr, ok := fsys.(multiLinkRefuser); ok {
		t.oneLink = lr.RefusesMultiLinked()
	}
	for _, it := range items {
		if it.err != nil {
			continue
		}
		var added []string
		attrs := maps.Clone(t.attrs)
		for i := range it.steps {
			s := &it.steps[i]
			made, err := t.step(s)
			added = append(added, made...)
			if err == nil {
				err = t.record(it, s, made)
			}
			if err != nil {
				for _, a := range added {
					delete(t.made, a)
				}
				t.attrs = attrs
				it.fail(fmt.Errorf("planned %s %s would fail: %w", s.Op, s.Path, err))
				break
			}
		}
	}
}

// step models one write and returns the canonical paths it creates.
func (t *simTree) step(s *step) ([]string, error) {
	switch s.Op {
	case OpMkdir:
		return t.makePath(s.Path)
	case OpAppend, OpReplace:
		return t.writeFile(s.Path)
	case OpChmod, OpChown:
		r, err := vfs.Resolve[string](t, s.Path, true)
		switch {
		case err != nil:
			return nil, err
		case !r.Exists:
			return nil, vfs.PathErr(string(s.Op), s.Path, fs.ErrNotExist)
		}
		return nil, t.checkLinks(string(s.Op), s.Path, r.Node)
	}
	return nil, errors.New("inject: unknown operation " + string(s.Op))
}

// makePath is MakePath on the model: each prefix resolved without
// following its final symlink; an existing one must be a directory or a
// symlink leading to one (a dangling link is in the way, fs.ErrExist); a
// missing one is created where its resolved parent is.
func (t *simTree) makePath(p string) ([]string, error) {
	if err := vfs.CheckPath(p); err != nil {
		return nil, vfs.PathErr("mkdir", p, err)
	}
	var made []string
	prefix := ""
	for _, c := range strings.Split(p, "/") {
		if c == "" {
			continue
		}
		prefix += "/" + c
		r, err := vfs.Resolve[string](t, prefix, false)
		if err != nil {
			return made, err
		}
		if !r.Exists {
			t.made[r.Path] = fs.ModeDir
			made = append(made, r.Path)
			continue
		}
		typ, err := t.Type(r.Node)
		if err != nil {
			return made, vfs.PathErr("mkdir", prefix, err)
		}
		if typ == fs.ModeSymlink {
			f, err := vfs.Resolve[string](t, prefix, true)
			switch {
			case errors.Is(err, fs.ErrNotExist) || err == nil && !f.Exists:
				return made, vfs.PathErr("mkdir", prefix, fmt.Errorf("dangling symlink in the way: %w", fs.ErrExist))
			case err != nil:
				return made, err
			}
			if typ, err = t.Type(f.Node); err != nil {
				return made, vfs.PathErr("mkdir", prefix, err)
			}
		}
		if !typ.IsDir() {
			return made, vfs.PathErr("mkdir", prefix, vfs.ErrNotDir)
		}
	}
	return made, nil
}

// writeFile is AppendFile and ReplaceFile on the model: the final symlink
// followed, a missing file created in its (existing) parent, an existing
// one a regular file.
func (t *simTree) writeFile(p string) ([]string, error) {
	r, err := vfs.Resolve[string](t, p, true)
	if err != nil {
		return nil, err
	}
	if !r.Exists {
		t.made[r.Path] = 0
		return []string{r.Path}, nil
	}
	typ, err := t.Type(r.Node)
	switch {
	case err != nil:
		return nil, vfs.PathErr("write", p, err)
	case typ.IsDir():
		return nil, vfs.PathErr("write", p, vfs.ErrIsDir)
	case typ != 0:
		return nil, vfs.PathErr("write", p, vfs.ErrNotRegular)
	}
	return nil, t.checkLinks("write", p, r.Node)
}

// multiLinkRefuser is served by backends that refuse to change a
// non-directory with several hard links.
type multiLinkRefuser interface{ RefusesMultiLinked() bool }

// checkLinks refuses, on such a backend, an existing non-directory n with
// several hard links, as the write would.
func (t *simTree) checkLinks(op, p, n string) error {
	if !t.oneLink {
		return nil
	}
	if _, made := t.made[n]; made {
		return nil
	}
	fi, err := t.lstat(n)
	if err != nil {
		return vfs.PathErr(op, p, err)
	}
	if !fi.IsDir() && fi.Nlink > 1 {
		return vfs.PathErr(op, p, fmt.Errorf("%w: the file has %d hard links, one may be outside the guest root", vfs.ErrUnsupported, fi.Nlink))
	}
	return nil
}

// changeRank orders the outcomes of several writes to one path: the
// strongest one names the change (a file created and then chmodded is
// created).
var changeRank = map[ChangeKind]int{ChangeUnchanged: 0, ChangeModify: 1, ChangeAppend: 2, ChangeReplace: 3, ChangeCreate: 4, ChangeDelete: 5}

// touch returns the item's change entry for p, made or raised to kind.
func (it *item) touch(p, typ string, kind ChangeKind) *Change {
	for i := range it.changes {
		if c := &it.changes[i]; c.Path == p {
			if changeRank[kind] > changeRank[c.Change] {
				c.Change = kind
			}
			return c
		}
	}
	it.changes = append(it.changes, Change{Path: p, Change: kind, Type: typ})
	return &it.changes[len(it.changes)-1]
}

// record notes what the step s, just modelled (made: the paths it
// created), does to its path: create, replace, append, modify or
// unchanged, judged against the guest as the earlier steps leave it.
func (t *simTree) record(it *item, s *step, made []string) error {
	switch s.Op {
	case OpMkdir:
		if len(made) == 0 {
			it.touch(s.Path, "dir", ChangeUnchanged)
		}
		for _, m := range made {
			it.touch(m, "dir", ChangeCreate)
		}
		return nil
	case OpAppend, OpReplace:
		kind := ChangeKind(s.Op)
		if len(made) > 0 {
			kind = ChangeCreate
		}
		it.touch(s.Path, "file", kind).Bytes += s.Bytes
		return nil
	}
	r, err := vfs.Resolve[string](t, s.Path, true)
	if err != nil {
		return err
	}
	typ, err := t.Type(r.Node)
	if err != nil {
		return err
	}
	kindName := "file"
	if typ.IsDir() {
		kindName = "dir"
	}
	cur, err := t.attr(r.Node)
	if err != nil {
		return err
	}
	want := cur
	if s.Op == OpChmod {
		want.perm = s.Mode
	} else {
		want.owner = s.Owner
	}
	kind := ChangeUnchanged
	if want != cur {
		kind = ChangeModify
	}
	c := it.touch(s.Path, kindName, kind)
	if s.Op == OpChmod {
		c.Mode = s.Mode
	} else {
		c.Owner = s.Owner
	}
	t.attrs[r.Node] = want
	return nil
}

// attr is the mode and owner of node as the planned steps leave it; an
// object the plan creates has none until a step sets them.
func (t *simTree) attr(node string) (simAttr, error) {
	a, ok := t.attrs[node]
	if _, made := t.made[node]; ok || made {
		return a, nil
	}
	fi, err := t.lstat(node)
	if err != nil {
		return a, err
	}
	a = simAttr{
		perm:  fmt.Sprintf("%04o", vfs.UnixPerm(fi.Mode)),
		owner: strconv.FormatUint(uint64(fi.UID), 10) + ":" + strconv.FormatUint(uint64(fi.GID), 10),
	}
	t.attrs[node] = a
	return a, nil
}
