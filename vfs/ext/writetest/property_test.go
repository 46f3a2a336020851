package writetest

import (
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
)

// Property test knobs: WRITETEST_SEQUENCES (default 20) sequences, the
// first with seed WRITETEST_SEED (default 1), the next seeds following.
func propertyConfig(t *testing.T) (seqs int, seed int64) {
	seqs, seed = 20, 1
	if v := os.Getenv("WRITETEST_SEQUENCES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WRITETEST_SEQUENCES=%q: want a count >= 1", v)
		}
		seqs = n
	}
	if v := os.Getenv("WRITETEST_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("WRITETEST_SEED=%q: want an integer", v)
		}
		seed = n
	}
	return seqs, seed
}

// The feature sets the sequences cycle through.
var propertySets = []string{"ext4", "ext2-1k", "ext4-inline", "ext3-1k-128", "ext4-1k", "ext4-nojournal", "ext4-metabg", "ext4-2k", "ext4-casefold", "ext4-no64bit", "ext4-bigalloc"}

// The path pools: directory and file names never collide, so an object's
// type at a path is fixed and the model stays simple.
var (
	propDirs  = []string{"/p", "/p/q", "/p/q/r", "/s"}
	propFiles = []string{"/f0", "/p/f1", "/p/q/f2", "/s/f3", "/p/q/r/f4", "/s/f5"}
	propLinks = []string{"/l0", "/p/l1", "/s/l2"}
)

// TestPropertySequences runs seeded random sequences of 10-40 operations
// on small images of several feature sets. Each operation's outcome is
// predicted from a model (success, or an error that writes nothing); the
// touched path is read back after each; after each sequence e2fsck -fn
// must be clean and every modelled path must read back through a fresh
// engine and through debugfs.
func TestPropertySequences(t *testing.T) {
	seqs, seed := propertyConfig(t)
	for i := 0; i < seqs; i++ {
		sd := seed + int64(i)
		setName := propertySets[i%len(propertySets)]
		t.Run(fmt.Sprintf("seed%d-%s", sd, setName), func(t *testing.T) {
			t.Parallel()
			spec := specByName(t, setName)
			spec.mb = 16
			img := mkfs(t, spec, "")
			c := newChecker(t)
			im, fsys, err := openImage(t, img, ext.Options{})
			if err != nil {
				if _, ok := refusal(spec, err); ok && im.writeCount() == 0 {
					t.Logf("refused cleanly at Open: %v", err)
					return
				}
				c.Errorf("seed %d (%s): open: %v", sd, setName, err)
				return
			}
			s := &session{c: c, spec: spec, im: im, fsys: fsys, m: newModel(), bs: fsys.BlockSize()}
			p := &propRun{s: s, rng: rand.New(rand.NewSource(sd)), seed: sd}
			n := 10 + p.rng.Intn(31)
			for j := 0; j < n && !s.stopped; j++ {
				p.one()
			}
			if c.failed {
				t.Logf("reproduce: WRITETEST_SEED=%d WRITETEST_SEQUENCES=1 (feature set %s); operations:\n%s", sd, setName, strings.Join(p.log, "\n"))
			}
			verify(c, img, s.m)
			if c.failed {
				t.Logf("seed %d (%s) failed; operations:\n%s", sd, setName, strings.Join(p.log, "\n"))
			}
		})
	}
}

// propRun is one sequence.
type propRun struct {
	s    *session
	rng  *rand.Rand
	seed int64
	log  []string
}

func (p *propRun) pick(list []string) string { return list[p.rng.Intn(len(list))] }

func (p *propRun) size() int {
	bs := p.s.bs
	sizes := []int{0, 1, 100, bs - 1, bs, bs + 1, 3*bs + 17, 13 * bs}
	return sizes[p.rng.Intn(len(sizes))]
}

// isDir and exists consult the model.
func (p *propRun) isDir(d string) bool {
	if d == "/" {
		return true
	}
	n := p.s.m.nodes[d]
	return n != nil && n.mode&vfs.UnixTypeMask == vfs.UnixDir
}

func (p *propRun) exists(x string) bool { return p.s.m.nodes[x] != nil }

func (p *propRun) hasChildren(d string) bool {
	for x := range p.s.m.nodes {
		if path.Dir(x) == d && x != d {
			return true
		}
	}
	return false
}

// one runs a random operation.
func (p *propRun) one() {
	switch p.rng.Intn(8) {
	case 0:
		p.mkdir()
	case 1, 2:
		p.write(true)
	case 3:
		p.write(false)
	case 4:
		p.chmod()
	case 5:
		p.chown()
	case 6:
		p.symlink()
	case 7:
		p.remove()
	}
}

// do runs op, expecting success when ok (then update) or an error that
// wrote nothing.
func (p *propRun) do(desc string, ok bool, op func() error, update func()) {
	s := p.s
	p.log = append(p.log, desc)
	if ok {
		if s.step(desc, op, update) {
			p.readBack(desc)
		}
		return
	}
	writes := s.im.writeCount()
	err := op()
	switch {
	case err == nil:
		s.c.Errorf("seed %d: %s succeeded, the model expected an error", p.seed, desc)
		s.stopped = true
	case s.im.writeCount() != writes:
		s.c.Errorf("seed %d: %s failed (%v) but wrote to the image", p.seed, desc, err)
		s.stopped = true
	}
}

// readBack checks every modelled path under the same engine handle.
func (p *propRun) readBack(desc string) {
	s := p.s
	for _, x := range s.m.paths() {
		n := s.m.nodes[x]
		fi, err := s.fsys.Lstat(x)
		if err != nil || fi.Mode != vfs.ModeFromUnix(n.mode) || fi.UID != n.uid || fi.GID != n.gid {
			s.c.Errorf("seed %d: after %s: lstat %s: %v %d:%d (%v), want %v %d:%d", p.seed, desc, x, fi.Mode, fi.UID, fi.GID, err, vfs.ModeFromUnix(n.mode), n.uid, n.gid)
			s.stopped = true
			return
		}
		if n.mode&vfs.UnixTypeMask == vfs.UnixRegular {
			if b, err := s.fsys.ReadFile(x); err != nil || string(b) != string(n.data) {
				s.c.Errorf("seed %d: after %s: read %s: %d bytes (%v), want %d%s", p.seed, desc, x, len(b), err, len(n.data), diffAt(b, n.data))
				s.stopped = true
				return
			}
		}
	}
}

func (p *propRun) mkdir() {
	d := p.pick(propDirs)
	p.do("MakePath "+d, true, func() error { return p.s.fsys.MakePath(d) }, func() {
		for x := d; x != "/"; x = path.Dir(x) {
			if !p.exists(x) {
				p.s.m.set(x, &node{mode: vfs.UnixDir | 0o755})
			}
		}
	})
}

func (p *propRun) write(appendOp bool) {
	f := p.pick(propFiles)
	data := pattern(p.size(), fmt.Sprint(p.seed, len(p.log)))
	ok := p.isDir(path.Dir(f))
	desc := fmt.Sprintf("ReplaceFile %s (%d bytes)", f, len(data))
	op := func() error { return p.s.fsys.ReplaceFile(f, data) }
	if appendOp {
		desc = fmt.Sprintf("AppendFile %s +%d", f, len(data))
		op = func() error { return p.s.fsys.AppendFile(f, data) }
	}
	p.do(desc, ok, op, func() {
		n := p.s.m.nodes[f]
		if n == nil {
			n = &node{mode: vfs.UnixRegular | 0o644, data: []byte{}}
			p.s.m.set(f, n)
		}
		if appendOp {
			n.data = append(n.data, data...)
		} else {
			n.data = data
		}
	})
}

func (p *propRun) target() string {
	all := append(append([]string{}, propDirs...), propFiles...)
	return p.pick(all)
}

func (p *propRun) chmod() {
	x := p.target()
	modes := []fs.FileMode{0o644, 0o600, 0o755, 0o700, fs.ModeSetuid | 0o755, fs.ModeSetgid | 0o750, fs.ModeSticky | 0o777, 0}
	m := modes[p.rng.Intn(len(modes))]
	p.do(fmt.Sprintf("SetPermissions %s %v", x, m), p.exists(x), func() error { return p.s.fsys.SetPermissions(x, m) }, func() {
		n := p.s.m.nodes[x]
		n.mode = n.mode&vfs.UnixTypeMask | vfs.UnixPerm(m)
	})
}

func (p *propRun) chown() {
	x := p.target()
	uid, gid := p.rng.Intn(70000), p.rng.Intn(70000)
	p.do(fmt.Sprintf("SetOwnership %s %d:%d", x, uid, gid), p.exists(x), func() error {
		return p.s.fsys.SetOwnership(x, strconv.Itoa(uid), strconv.Itoa(gid))
	}, func() {
		n := p.s.m.nodes[x]
		n.uid, n.gid = uint32(uid), uint32(gid)
	})
}

func (p *propRun) symlink() {
	l := p.pick(propLinks)
	target := "/nowhere/" + strings.Repeat("x", p.rng.Intn(120))
	sl, ok := any(p.s.fsys).(vfs.Symlinker)
	if !ok {
		p.s.c.Errorf("*ext.FS does not serve vfs.Symlinker")
		p.s.stopped = true
		return
	}
	p.do(fmt.Sprintf("Symlink %s -> %s", l, target), p.isDir(path.Dir(l)) && !p.exists(l), func() error { return sl.Symlink(target, l) }, func() {
		p.s.m.set(l, &node{mode: vfs.UnixSymlink | 0o777, target: target})
	})
}

func (p *propRun) remove() {
	rm, ok := any(p.s.fsys).(vfs.Remover)
	if !ok {
		p.s.c.Errorf("*ext.FS does not serve vfs.Remover")
		p.s.stopped = true
		return
	}
	all := append(append(append([]string{}, propDirs...), propFiles...), propLinks...)
	x := p.pick(all)
	want := p.exists(x) && !(p.isDir(x) && p.hasChildren(x))
	p.do("Remove "+x, want, func() error { return rm.Remove(x) }, func() { p.s.m.remove(x) })
}
