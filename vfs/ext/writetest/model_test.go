package writetest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
)

// checker reports failures of one test, downgraded to logs when the test
// is listed in knownEngineGap.
type checker struct {
	t      testing.TB
	gap    string
	failed bool
}

func newChecker(t testing.TB) *checker {
	c := &checker{t: t, gap: knownEngineGap[t.Name()]}
	if c.gap != "" {
		t.Cleanup(func() {
			if !c.failed {
				t.Logf("knownEngineGap[%q] passes now: remove the entry", t.Name())
			}
		})
	}
	return c
}

// Errorf fails the test, or logs for a known engine gap.
func (c *checker) Errorf(format string, args ...any) {
	c.t.Helper()
	c.failed = true
	if c.gap != "" {
		c.t.Logf("KNOWN ENGINE GAP (%s): "+format, append([]any{c.gap}, args...)...)
		return
	}
	c.t.Errorf(format, args...)
}

// node is what the model expects at one path.
type node struct {
	mode     uint32 // type and permission bits
	uid, gid uint32
	data     []byte // regular files
	target   string // symlinks
}

// model maps guest paths to what must be there; removed paths must be gone.
type model struct {
	nodes   map[string]*node
	removed map[string]bool
}

func newModel() *model {
	return &model{nodes: map[string]*node{}, removed: map[string]bool{}}
}

func (m *model) set(p string, n *node) {
	m.nodes[p] = n
	delete(m.removed, p)
}

func (m *model) remove(p string) {
	delete(m.nodes, p)
	m.removed[p] = true
}

func (m *model) paths() []string {
	ps := make([]string, 0, len(m.nodes))
	for p := range m.nodes {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// refusals collects every refusal a test accepted, for the log summary.
var refusals struct {
	sync.Mutex
	list []string
}

func noteRefusal(what string) {
	refusals.Lock()
	refusals.list = append(refusals.list, what)
	refusals.Unlock()
}

// verify checks the image: e2fsck -fn exits 0, and every model path reads
// back as modelled through a fresh read-only engine and through debugfs.
func verify(c *checker, img string, m *model) {
	t := c.t
	t.Helper()
	if out, ok := fsck(t, img); !ok {
		c.Errorf("e2fsck -fn %s is not clean:\n%s", img, out)
	}
	r := openRead(t, img)
	for _, p := range m.paths() {
		n := m.nodes[p]
		verifyEngine(c, r, p, n)
		verifyDebugfs(c, img, p, n)
	}
	for p := range m.removed {
		if ok, err := r.HasFile(p); ok || err != nil {
			c.Errorf("%s: removed, but the engine still finds it (%v, %v)", p, ok, err)
		}
		if st := debugfsStat(t, img, p); st.found {
			c.Errorf("%s: removed, but debugfs still finds it:\n%s", p, st.raw)
		}
	}
}

// verifyEngine reads p back through the engine.
func verifyEngine(c *checker, r *ext.FS, p string, n *node) {
	fi, err := r.Lstat(p)
	if err != nil {
		c.Errorf("engine lstat %s: %v", p, err)
		return
	}
	want := vfs.ModeFromUnix(n.mode)
	if fi.Mode != want || fi.UID != n.uid || fi.GID != n.gid {
		c.Errorf("engine lstat %s: %v %d:%d, want %v %d:%d", p, fi.Mode, fi.UID, fi.GID, want, n.uid, n.gid)
	}
	switch n.mode & vfs.UnixTypeMask {
	case vfs.UnixRegular:
		b, err := r.ReadFile(p)
		if err != nil || !bytes.Equal(b, n.data) {
			c.Errorf("engine read %s: %d bytes (%v), want %d bytes%s", p, len(b), err, len(n.data), diffAt(b, n.data))
		}
	case vfs.UnixSymlink:
		if tg, err := r.Readlink(p); err != nil || tg != n.target {
			c.Errorf("engine readlink %s: %q %v, want %q", p, tg, err, n.target)
		}
	}
}

// verifyDebugfs reads p back through debugfs: stat (type, mode, owner,
// size) and cat (content, or a slow symlink's target).
func verifyDebugfs(c *checker, img, p string, n *node) {
	t := c.t
	st := debugfsStat(t, img, p)
	if !st.found {
		c.Errorf("debugfs stat %s: not found:\n%s", p, st.raw)
		return
	}
	typ := map[uint32]string{vfs.UnixRegular: "regular", vfs.UnixDir: "directory", vfs.UnixSymlink: "symlink"}[n.mode&vfs.UnixTypeMask]
	if st.typ != typ || st.perm != n.mode&0o7777 || st.uid != n.uid || st.gid != n.gid {
		c.Errorf("debugfs stat %s: %s %#o %d:%d, want %s %#o %d:%d", p, st.typ, st.perm, st.uid, st.gid, typ, n.mode&0o7777, n.uid, n.gid)
	}
	switch n.mode & vfs.UnixTypeMask {
	case vfs.UnixRegular:
		if st.size != int64(len(n.data)) {
			c.Errorf("debugfs stat %s: size %d, want %d", p, st.size, len(n.data))
		}
		b, err := debugfsOut(t, img, "cat "+quoteDebugfs(p))
		if st.flags&flagInline != 0 && len(b) > len(n.data) && allZero(b[len(n.data):]) {
			// debugfs 1.47 cats an inline file's whole inline area (60
			// bytes and more), zeros after i_size included.
			b = b[:len(n.data)]
		}
		if err != nil || !bytes.Equal(b, n.data) {
			c.Errorf("debugfs cat %s: %d bytes (%v), want %d bytes%s", p, len(b), err, len(n.data), diffAt(b, n.data))
		}
	case vfs.UnixSymlink:
		if st.size != int64(len(n.target)) {
			c.Errorf("debugfs stat %s: symlink size %d, want %d", p, st.size, len(n.target))
		}
		got := st.fastTarget
		if got == "" {
			b, err := debugfsOut(t, img, "cat "+quoteDebugfs(p))
			if err != nil {
				c.Errorf("debugfs cat symlink %s: %v", p, err)
			}
			got = string(b)
		}
		if got != n.target {
			c.Errorf("debugfs symlink %s -> %q, want %q", p, got, n.target)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// diffAt describes where two contents first differ.
func diffAt(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf(" (first difference at byte %d)", i)
}

// lstatNode takes an existing object's state from the engine into a node
// (for objects the test changes but did not create).
func lstatNode(r vfs.Reader, fsys vfs.FS, p string) (*node, error) {
	fi, err := r.Lstat(p)
	if err != nil {
		return nil, err
	}
	n := &node{mode: modeToUnix(fi.Mode), uid: fi.UID, gid: fi.GID}
	switch {
	case fi.Mode.IsRegular():
		n.data, err = fsys.ReadFile(p)
	case fi.Mode&fs.ModeSymlink != 0:
		n.target, err = r.Readlink(p)
	}
	return n, err
}

// modeToUnix converts a FileMode of a regular file, directory or symlink
// to unix mode bits.
func modeToUnix(m fs.FileMode) uint32 {
	typ := uint32(vfs.UnixRegular)
	switch {
	case m.IsDir():
		typ = vfs.UnixDir
	case m&fs.ModeSymlink != 0:
		typ = vfs.UnixSymlink
	}
	return typ | vfs.UnixPerm(m)
}

// refusal decides whether err is an acceptable refusal for spec: it must
// be an ErrUnsupported naming one of the image's refusable features.
func refusal(spec imageSpec, err error) (string, bool) {
	if !errors.Is(err, vfs.ErrUnsupported) {
		return "", false
	}
	for _, w := range spec.refusable {
		if strings.Contains(err.Error(), w) {
			return w, true
		}
	}
	return "", false
}
