package inject

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// The ordered operations (--mkdir, --delete, --copy, ...) read what the
// earlier ones wrote: a --copy copies the file a --write made, a --delete
// glob sees the directories a --mkdir created. So they are planned on a
// model of the whole guest: an overlay that reads the backend lazily (one
// Lstat, ReadDir or ReadFile when an operation first needs it) and holds
// every change the plan makes in memory. Each primitive below changes the
// model exactly as the backend's write will change the guest, refusing
// what the backend would refuse, and records that write as a step; the
// steps are replayed on the backend only after every operation planned.

// maxHeld bounds the file content the plan holds in memory (copies,
// uploads, tar members), as the image layer bounds its staged writes.
const maxHeld = 1 << 30

// maxDepth bounds the directory depth a recursive operation descends.
const maxDepth = 512

// mnode is one object of the model.
type mnode struct {
	orig     string      // the backend's canonical path of the object; "" when the plan made it
	typ      fs.FileMode // type bits
	perm     fs.FileMode // permission bits (vfs.PermMask)
	uid, gid uint32
	nlink    uint32
	ino      uint64 // the backend's inode number, 0 when unknown or new
	size     int64
	target   string            // symlink target
	data     []byte            // content, when dataSet
	dataSet  bool              // the plan set the content (else it is the backend's, then tail)
	tail     []byte            // bytes the plan appended to the backend's content (when !dataSet)
	kids     map[string]*mnode // directory entries; nil until read from the backend
}

// model is the guest as the planned operations leave it.
type model struct {
	fsys    vfs.FS
	r       vfs.Reader
	root    *mnode
	byOrig  map[string]*mnode
	oneLink bool
	held    int64
	it      *item // the item whose steps the primitives record; nil: replay only
	// seen holds the backend directories one recursive operation has
	// entered, by inode: a corrupt tree whose directory links back to
	// an ancestor is refused instead of walked without end.
	seen map[uint64]bool
}

// enter notes that a recursive operation descends into the directory n
// at p; a directory entered twice is a cycle in the guest's tree.
func (m *model) enter(n *mnode, p string, depth int) error {
	if depth > maxDepth {
		return vfs.PathErr("walk", p, fmt.Errorf("%w: directories nested deeper than %d", vfs.ErrUnsupported, maxDepth))
	}
	if n.ino == 0 || n.orig == "" {
		return nil
	}
	if m.seen == nil {
		m.seen = map[uint64]bool{}
	}
	if m.seen[n.ino] {
		return vfs.PathErr("walk", p, fmt.Errorf("%w: directory inode %d is reached twice (a directory cycle)", vfs.ErrCorrupt, n.ino))
	}
	m.seen[n.ino] = true
	return nil
}

func newModel(fsys vfs.FS) (*model, error) {
	r, ok := fsys.(vfs.Reader)
	if !ok {
		return nil, fmt.Errorf("%w: the guest filesystem cannot be read (no Stat, ReadDir)", vfs.ErrUnsupported)
	}
	m := &model{fsys: fsys, r: r, byOrig: map[string]*mnode{}}
	fi, err := r.Lstat("/")
	if err != nil {
		return nil, err
	}
	m.root = m.fromInfo("/", fi)
	if lr, ok := fsys.(multiLinkRefuser); ok {
		m.oneLink = lr.RefusesMultiLinked()
	}
	return m, nil
}

func (m *model) fromInfo(p string, fi vfs.FileInfo) *mnode {
	if n, ok := m.byOrig[p]; ok {
		return n
	}
	n := &mnode{orig: p, typ: fi.Mode.Type(), perm: fi.Mode & vfs.PermMask, uid: fi.UID, gid: fi.GID, nlink: fi.Nlink, ino: fi.Ino, size: fi.Size, target: fi.Target}
	m.byOrig[p] = n
	return n
}

// The model is a vfs.Tree, so paths resolve exactly as the backends
// resolve them.
func (m *model) Root() (*mnode, error) { return m.root, nil }

func (m *model) Lookup(dir *mnode, name string) (*mnode, error) {
	if dir.kids != nil || dir.orig == "" {
		if n, ok := dir.kids[name]; ok {
			return n, nil
		}
		return nil, fs.ErrNotExist
	}
	p := simJoin(dir.orig, name)
	if n, ok := m.byOrig[p]; ok {
		return n, nil
	}
	fi, err := m.r.Lstat(p)
	if err != nil {
		return nil, err
	}
	return m.fromInfo(p, fi), nil
}

func (m *model) Type(n *mnode) (fs.FileMode, error) { return n.typ, nil }

func (m *model) Readlink(n *mnode) (string, error) {
	if n.target == "" && n.orig != "" {
		t, err := m.r.Readlink(n.orig)
		if err != nil {
			return "", err
		}
		n.target = t
	}
	return n.target, nil
}

func (m *model) resolve(p string, follow bool) (vfs.Resolved[*mnode], error) {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.Resolved[*mnode]{}, vfs.PathErr("resolve", p, err)
	}
	return vfs.Resolve[*mnode](m, p, follow)
}

// children returns dir's entries, read from the backend the first time.
func (m *model) children(dir *mnode) (map[string]*mnode, error) {
	if dir.kids != nil {
		return dir.kids, nil
	}
	dir.kids = map[string]*mnode{}
	if dir.orig == "" {
		return dir.kids, nil
	}
	list, err := m.r.ReadDir(dir.orig)
	if err != nil {
		dir.kids = nil
		return nil, err
	}
	for _, fi := range list {
		dir.kids[fi.Name] = m.fromInfo(simJoin(dir.orig, fi.Name), fi)
	}
	return dir.kids, nil
}

// names lists dir's entries sorted.
func (m *model) names(dir *mnode) ([]string, error) {
	kids, err := m.children(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(kids))
	for k := range kids {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// content is a regular file's content as the plan leaves it, read from
// the backend the first time an operation needs it (a copy, an upload
// over it), counted against maxHeld.
func (m *model) content(n *mnode, p string) ([]byte, error) {
	if n.dataSet || n.orig == "" {
		return n.data, nil
	}
	if err := m.hold(n.size); err != nil {
		return nil, vfs.PathErr("read", p, err)
	}
	b, err := m.fsys.ReadFile(n.orig)
	if err != nil {
		return nil, err
	}
	n.data, n.dataSet, n.tail = append(b, n.tail...), true, nil
	return n.data, nil
}

// config is content for a file an operation parses (os-release, hosts,
// passwd, a file --append-line judges): at most maxGuestFile bytes,
// checked on the size before anything is read, as readGuest does.
func (m *model) config(n *mnode, p string) ([]byte, error) {
	if n.size > maxGuestFile {
		return nil, vfs.PathErr("read", p, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n.size, maxGuestFile))
	}
	b, err := m.content(n, p)
	if err == nil && len(b) > maxGuestFile {
		return nil, vfs.PathErr("read", p, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), maxGuestFile))
	}
	return b, err
}

func (m *model) hold(n int64) error {
	if n < 0 || m.held+n > maxHeld {
		return fmt.Errorf("%w: the operations would hold more than %d bytes of file content", ErrTooLarge, int64(maxHeld))
	}
	m.held += n
	return nil
}

// need returns an error when the backend lacks the optional interface an
// operation needs, before anything is written.
func need[I any](m *model, op, p, what string) (I, error) {
	i, ok := m.fsys.(I)
	if !ok {
		return i, vfs.PathErr(op, p, fmt.Errorf("%w: this guest filesystem cannot %s", vfs.ErrUnsupported, what))
	}
	return i, nil
}

// record adds a step to the current item and notes its change.
func (m *model) record(s step, p, typ string, kind ChangeKind) *Change {
	if m.it == nil {
		return &Change{}
	}
	if s.Op != "" { // an empty step: a change to note, nothing to write
		m.it.steps = append(m.it.steps, s)
	}
	return m.it.touch(p, typ, kind)
}

func typeName(t fs.FileMode) string {
	switch {
	case t.IsDir():
		return "dir"
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t == 0:
		return "file"
	}
	return "special"
}

func (m *model) checkLinks(op, p string, n *mnode) error {
	if m.oneLink && !n.typ.IsDir() && n.nlink > 1 {
		return vfs.PathErr(op, p, fmt.Errorf("%w: the file has %d hard links, one may be outside the guest root", vfs.ErrUnsupported, n.nlink))
	}
	return nil
}

// newNode makes an object in the model.
func newNode(typ, perm fs.FileMode) *mnode {
	n := &mnode{typ: typ, perm: perm, nlink: 1, dataSet: true}
	if typ.IsDir() {
		n.kids = map[string]*mnode{}
	}
	return n
}

// attach puts n into dir under name.
func (m *model) attach(dir *mnode, name string, n *mnode) error {
	kids, err := m.children(dir)
	if err != nil {
		return err
	}
	kids[name] = n
	return nil
}

// mkdirAll is MakePath: each missing component created 0755 root:root.
func (m *model) mkdirAll(p string) error {
	if err := vfs.CheckPath(p); err != nil {
		return vfs.PathErr("mkdir", p, err)
	}
	created := false
	prefix := ""
	for _, c := range splitClean(p) {
		prefix = simJoin(prefixOrRoot(prefix), c)
		r, err := m.resolve(prefix, true)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil && r.Exists {
			if !r.Node.typ.IsDir() {
				return vfs.PathErr("mkdir", prefix, vfs.ErrNotDir)
			}
			continue
		}
		nr, err := m.resolve(prefix, false)
		if err != nil {
			return err
		}
		if nr.Exists { // a dangling symlink
			return vfs.PathErr("mkdir", prefix, fmt.Errorf("dangling symlink in the way: %w", fs.ErrExist))
		}
		if err := m.attach(nr.Parent, nr.Name, newNode(fs.ModeDir, 0o755)); err != nil {
			return err
		}
		created = true
		m.record(step{}, nr.Path, "dir", ChangeCreate)
	}
	if m.it != nil {
		if created {
			m.it.steps = append(m.it.steps, step{Action: Action{Op: OpMkdir, Path: p}})
		} else {
			m.it.touch(p, "dir", ChangeUnchanged)
		}
	}
	return nil
}

func prefixOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func splitClean(p string) []string {
	var out []string
	for _, c := range splitSlash(p) {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func splitSlash(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}

// writeFile is ReplaceFile (or AppendFile): the final symlink followed; a
// missing file created 0644 root:root in its existing parent.
func (m *model) writeFile(p string, data []byte, appendData bool) (*mnode, error) {
	op := OpReplace
	if appendData {
		op = OpAppend
	}
	r, err := m.resolve(p, true)
	if err != nil {
		return nil, err
	}
	if err := m.hold(int64(len(data))); err != nil {
		return nil, vfs.PathErr(string(op), p, err)
	}
	s := step{Action: Action{Op: op, Path: r.Path, Bytes: len(data)}, data: data}
	if !r.Exists {
		if !r.Parent.typ.IsDir() {
			return nil, vfs.PathErr(string(op), p, vfs.ErrNotDir)
		}
		n := newNode(0, 0o644)
		n.data, n.size = data, int64(len(data))
		if err := m.attach(r.Parent, r.Name, n); err != nil {
			return nil, err
		}
		m.record(s, r.Path, "file", ChangeCreate).Bytes += len(data)
		return n, nil
	}
	n := r.Node
	switch {
	case n.typ.IsDir():
		return nil, vfs.PathErr(string(op), p, vfs.ErrIsDir)
	case n.typ != 0:
		return nil, vfs.PathErr(string(op), p, vfs.ErrNotRegular)
	}
	if err := m.checkLinks(string(op), p, n); err != nil {
		return nil, err
	}
	kind := ChangeReplace
	switch {
	case appendData && !n.dataSet && n.orig != "": // the backend's content is read only if an operation needs it
		n.tail = append(n.tail, data...)
		n.size += int64(len(data))
		kind = ChangeAppend
	case appendData:
		n.data = append(append([]byte(nil), n.data...), data...)
		n.size = int64(len(n.data))
		kind = ChangeAppend
	default:
		n.data, n.dataSet, n.tail, n.size = data, true, nil, int64(len(data))
	}
	m.record(s, r.Path, "file", kind).Bytes += len(data)
	return n, nil
}

// chmod is SetPermissions, through a final symlink.
func (m *model) chmod(p string, perm fs.FileMode) error {
	r, err := m.existing("chmod", p, true)
	if err != nil {
		return err
	}
	if err := m.checkLinks("chmod", p, r.Node); err != nil {
		return err
	}
	mode := fmt.Sprintf("%04o", vfs.UnixPerm(perm))
	kind := ChangeModify
	if r.Node.perm == perm {
		kind = ChangeUnchanged
	}
	r.Node.perm = perm
	m.record(step{Action: Action{Op: OpChmod, Path: r.Path, Mode: mode}, mode: perm}, r.Path, typeName(r.Node.typ), kind).Mode = mode
	return nil
}

// chown is SetOwnership with numeric ids, through a final symlink.
func (m *model) chown(p string, uid, gid int) error {
	r, err := m.existing("chown", p, true)
	if err != nil {
		return err
	}
	if err := m.checkLinks("chown", p, r.Node); err != nil {
		return err
	}
	u, g := strconv.Itoa(uid), strconv.Itoa(gid)
	kind := ChangeModify
	if r.Node.uid == uint32(uid) && r.Node.gid == uint32(gid) {
		kind = ChangeUnchanged
	}
	r.Node.uid, r.Node.gid = uint32(uid), uint32(gid)
	m.record(step{Action: Action{Op: OpChown, Path: r.Path, Owner: u + ":" + g}, user: u, group: g}, r.Path, typeName(r.Node.typ), kind).Owner = u + ":" + g
	return nil
}

// existing resolves p and requires the object to exist.
func (m *model) existing(op, p string, follow bool) (vfs.Resolved[*mnode], error) {
	r, err := m.resolve(p, follow)
	if err != nil {
		return r, err
	}
	if !r.Exists {
		return r, vfs.PathErr(op, p, fs.ErrNotExist)
	}
	return r, nil
}

// symlink is Symlink: p must not exist; its parent must.
func (m *model) symlink(target, p string) error {
	if _, err := need[vfs.Symlinker](m, "symlink", p, "create symlinks"); err != nil {
		return err
	}
	if target == "" || len(target) > vfs.MaxPathLen || strings.IndexByte(target, 0) >= 0 {
		return vfs.PathErr("symlink", p, fmt.Errorf("%w: symlink target empty, longer than %d bytes or holding a NUL byte", vfs.ErrInvalidPath, vfs.MaxPathLen))
	}
	r, err := m.resolve(p, false)
	if err != nil {
		return err
	}
	if r.Exists {
		return vfs.PathErr("symlink", p, fs.ErrExist)
	}
	if !r.Parent.typ.IsDir() {
		return vfs.PathErr("symlink", p, vfs.ErrNotDir)
	}
	n := newNode(fs.ModeSymlink, 0o777)
	n.target, n.size = target, int64(len(target))
	if err := m.attach(r.Parent, r.Name, n); err != nil {
		return err
	}
	m.record(step{Action: Action{Op: OpSymlink, Path: r.Path, Target: target}}, r.Path, "symlink", ChangeCreate).Target = target
	return nil
}

// remove is Remove: a file, a symlink (not followed) or an empty directory.
func (m *model) remove(p string) error {
	if _, err := need[vfs.Remover](m, "remove", p, "remove objects"); err != nil {
		return err
	}
	r, err := m.existing("remove", p, false)
	if err != nil {
		return err
	}
	if r.Path == "/" {
		return vfs.PathErr("remove", p, fmt.Errorf("%w: the guest root cannot be removed", vfs.ErrInvalidPath))
	}
	if r.Node.typ.IsDir() {
		kids, err := m.children(r.Node)
		if err != nil {
			return err
		}
		if len(kids) > 0 {
			return vfs.PathErr("remove", p, ErrNotEmpty)
		}
	}
	if _, err := m.children(r.Parent); err != nil {
		return err
	}
	delete(r.Parent.kids, r.Name)
	if !r.Node.typ.IsDir() {
		r.Node.nlink--
	}
	m.record(step{Action: Action{Op: OpRemove, Path: r.Path}}, r.Path, typeName(r.Node.typ), ChangeDelete)
	return nil
}

// removeAll is rm -rf: the object (a final symlink not followed) and,
// for a directory, everything below it, deepest first.
func (m *model) removeAll(p string, depth int) error {
	r, err := m.existing("remove", p, false)
	if err != nil {
		return err
	}
	if r.Node.typ.IsDir() {
		if err := m.enter(r.Node, r.Path, depth); err != nil {
			return err
		}
		names, err := m.names(r.Node)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := m.removeAll(simJoin(r.Path, n), depth+1); err != nil {
				return err
			}
		}
	}
	return m.remove(r.Path)
}

// rename is Rename, as rename(2): neither final component followed.
func (m *model) rename(oldp, newp string) error {
	if _, err := need[vfs.Renamer](m, "rename", oldp, "move objects"); err != nil {
		return err
	}
	o, err := m.existing("rename", oldp, false)
	if err != nil {
		return err
	}
	if o.Path == "/" {
		return vfs.PathErr("rename", oldp, fmt.Errorf("%w: the guest root cannot move", vfs.ErrInvalidPath))
	}
	nr, err := m.resolve(newp, false)
	if err != nil {
		return err
	}
	if !nr.Parent.typ.IsDir() {
		return vfs.PathErr("rename", newp, vfs.ErrNotDir)
	}
	if o.Node.typ.IsDir() && (nr.Path == o.Path || len(nr.Path) > len(o.Path) && nr.Path[:len(o.Path)+1] == o.Path+"/") {
		return vfs.PathErr("rename", newp, fmt.Errorf("%w: a directory cannot move into itself", vfs.ErrInvalidPath))
	}
	kind := ChangeCreate
	if nr.Exists {
		if nr.Node == o.Node {
			m.record(step{}, o.Path, typeName(o.Node.typ), ChangeUnchanged)
			return nil
		}
		kind = ChangeReplace
		switch {
		case o.Node.typ.IsDir() && !nr.Node.typ.IsDir():
			return vfs.PathErr("rename", newp, vfs.ErrNotDir)
		case !o.Node.typ.IsDir() && nr.Node.typ.IsDir():
			return vfs.PathErr("rename", newp, vfs.ErrIsDir)
		case nr.Node.typ.IsDir():
			kids, err := m.children(nr.Node)
			if err != nil {
				return err
			}
			if len(kids) > 0 {
				return vfs.PathErr("rename", newp, ErrNotEmpty)
			}
		}
	}
	if _, err := m.children(o.Parent); err != nil {
		return err
	}
	if nr.Exists && !nr.Node.typ.IsDir() {
		nr.Node.nlink--
	}
	if err := m.attach(nr.Parent, nr.Name, o.Node); err != nil {
		return err
	}
	delete(o.Parent.kids, o.Name)
	typ := typeName(o.Node.typ)
	if m.it != nil {
		m.it.steps = append(m.it.steps, step{Action: Action{Op: OpRename, Path: o.Path, Target: nr.Path}})
		m.it.touch(o.Path, typ, ChangeDelete)
		m.it.touch(nr.Path, typ, kind)
	}
	return nil
}

// link is Link: newp a second name for the non-directory oldp.
func (m *model) link(oldp, newp string) error {
	if _, err := need[vfs.Linker](m, "link", newp, "create hard links"); err != nil {
		return err
	}
	o, err := m.existing("link", oldp, false)
	if err != nil {
		return err
	}
	if o.Node.typ.IsDir() {
		return vfs.PathErr("link", oldp, vfs.ErrIsDir)
	}
	nr, err := m.resolve(newp, false)
	if err != nil {
		return err
	}
	if nr.Exists {
		return vfs.PathErr("link", newp, fs.ErrExist)
	}
	if !nr.Parent.typ.IsDir() {
		return vfs.PathErr("link", newp, vfs.ErrNotDir)
	}
	if err := m.attach(nr.Parent, nr.Name, o.Node); err != nil {
		return err
	}
	o.Node.nlink++
	m.record(step{Action: Action{Op: OpLink, Path: nr.Path, Target: o.Path}}, nr.Path, typeName(o.Node.typ), ChangeCreate)
	return nil
}

// setTimes is SetTimes on p (a final symlink not followed).
func (m *model) setTimes(p string, t time.Time) error {
	if _, err := need[vfs.TimeSetter](m, "touch", p, "set timestamps"); err != nil {
		return err
	}
	r, err := m.existing("touch", p, false)
	if err != nil {
		return err
	}
	m.record(step{Action: Action{Op: OpTimes, Path: r.Path}, time: t}, r.Path, typeName(r.Node.typ), ChangeModify)
	return nil
}

// replay applies an already validated step of a classic item to the
// model, so the operations see what the items before them write.
func (m *model) replay(s *step) error {
	switch s.Op {
	case OpMkdir:
		return m.mkdirAll(s.Path)
	case OpAppend, OpReplace:
		_, err := m.writeFile(s.Path, s.data, s.Op == OpAppend)
		return err
	case OpChmod:
		return m.chmod(s.Path, s.mode)
	case OpChown:
		uid, err1 := strconv.Atoi(s.user)
		gid, err2 := strconv.Atoi(s.group)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("inject: chown step with names %q:%q", s.user, s.group)
		}
		return m.chown(s.Path, uid, gid)
	case OpSymlink:
		return m.symlink(s.Target, s.Path)
	case OpRemove:
		return m.remove(s.Path)
	case OpRename:
		return m.rename(s.Path, s.Target)
	case OpLink:
		return m.link(s.Target, s.Path)
	case OpTimes:
		return m.setTimes(s.Path, s.time)
	}
	return errors.New("inject: cannot model operation " + string(s.Op))
}

// runExtra performs the steps of the optional vfs interfaces.
func (s *step) runExtra(fsys vfs.FS) error {
	switch s.Op {
	case OpSymlink:
		if i, ok := fsys.(vfs.Symlinker); ok {
			return i.Symlink(s.Target, s.Path)
		}
	case OpRemove:
		if i, ok := fsys.(vfs.Remover); ok {
			return i.Remove(s.Path)
		}
	case OpRename:
		if i, ok := fsys.(vfs.Renamer); ok {
			return i.Rename(s.Path, s.Target)
		}
	case OpLink:
		if i, ok := fsys.(vfs.Linker); ok {
			return i.Link(s.Target, s.Path)
		}
	case OpTimes:
		if i, ok := fsys.(vfs.TimeSetter); ok {
			return i.SetTimes(s.Path, s.time, s.time)
		}
	case OpRelabel:
		if i, ok := fsys.(vfs.XattrWriter); ok {
			return i.SetXattr(s.Path, SELinuxXattr, s.data)
		}
	default:
		return errors.New("inject: unknown operation " + string(s.Op))
	}
	return vfs.PathErr(string(s.Op), s.Path, vfs.ErrUnsupported)
}

// guestPath checks an operation's guest path: absolute, and acceptable
// to vfs.CheckPath ("." and ".." are resolved in the guest, as the
// backends resolve them, never lexically).
func guestPath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", fmt.Errorf("%w: %q: want an absolute guest path", ErrInvalidOp, p)
	}
	if err := vfs.CheckPath(p); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidOp, err)
	}
	return p, nil
}
