package xfs

import (
	"bytes"
	"fmt"
	"math/rand"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"
)

// modelFile is a regular file of the model; hard links share one.
type modelFile struct{ data []byte }

// fsModel is what the filesystem must hold: directories, files (by
// name, hard links sharing a *modelFile) and symlinks.
type fsModel struct {
	dirs  map[string]bool
	files map[string]*modelFile
	links map[string]string // symlink → target
}

func (m *fsModel) exists(p string) bool {
	_, f := m.files[p]
	_, l := m.links[p]
	return m.dirs[p] || f || l
}

// children returns the names directly in directory d.
func (m *fsModel) children(d string) []string {
	var out []string
	add := func(p string) {
		if p != "/" && path.Dir(p) == d {
			out = append(out, path.Base(p))
		}
	}
	for p := range m.dirs {
		add(p)
	}
	for p := range m.files {
		add(p)
	}
	for p := range m.links {
		add(p)
	}
	sort.Strings(out)
	return out
}

// pick returns a random key of a set in a stable order (map order would
// make a seed's run unrepeatable).
func pick[V any](rng *rand.Rand, m map[string]V) (string, bool) {
	if len(m) == 0 {
		return "", false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[rng.Intn(len(keys))], true
}

// rename moves every path at or under from to the same place under to.
func (m *fsModel) rename(from, to string) {
	move := func(p string) (string, bool) {
		if p == from {
			return to, true
		}
		if strings.HasPrefix(p, from+"/") {
			return to + p[len(from):], true
		}
		return "", false
	}
	dirs, files, links := map[string]bool{}, map[string]*modelFile{}, map[string]string{}
	for p := range m.dirs {
		if q, ok := move(p); ok {
			dirs[q] = true
		} else {
			dirs[p] = true
		}
	}
	for p, f := range m.files {
		if q, ok := move(p); ok {
			files[q] = f
		} else if p != to {
			files[p] = f
		}
	}
	for p, l := range m.links {
		if q, ok := move(p); ok {
			links[q] = l
		} else if p != to {
			links[p] = l
		}
	}
	m.dirs, m.files, m.links = dirs, files, links
}

// TestFaceRandomOps is the property test of issue 12: random sequences
// of the write operations (mkdir -p, new and replaced files of every
// size, appends, truncations, symlinks, hard links, removals, renames of
// files and directories, over existing targets too) applied to the
// engine and to a model; every 40 operations and at the end xfs_repair
// -n is clean and a fresh engine reads back exactly the model: every
// directory's names, every file's bytes and link count, every symlink's
// target. v5 and v4 (1 KiB blocks), batched and not. XFSDIR_SEED=n
// picks another sequence.
func TestFaceRandomOps(t *testing.T) {
	seed := seedFromEnv()
	n := 400
	if testing.Short() {
		n = 160
	}
	for _, c := range []struct {
		name  string
		args  []string
		batch bool
	}{
		{"v5", nil, false},
		{"v5-batch", nil, true},
		{"v4-1k-batch", []string{"-m", "crc=0", "-b", "size=1024"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			img := emptyImage(t, c.args...)
			f := openRWOpts(t, img, &Options{Batch: c.batch})
			bs := f.BlockSize()
			m := &fsModel{dirs: map[string]bool{"/": true}, files: map[string]*modelFile{}, links: map[string]string{}}
			content := func() []byte {
				switch rng.Intn(4) {
				case 0:
					return nil
				case 1:
					return pattern(1+rng.Intn(100), byte(rng.Intn(256)))
				}
				return pattern(rng.Intn(12)*bs+rng.Intn(bs), byte(rng.Intn(256)))
			}
			fresh := func() string {
				// Half the new names go to the fullest directory, which
				// so grows out of short form into block and leaf form (long names).
				d, _ := pick(rng, m.dirs)
				if rng.Intn(2) == 0 {
					for e := range m.dirs {
						if ne, nd := len(m.children(e)), len(m.children(d)); ne > nd || ne == nd && e < d {
							d = e
						}
					}
				}
				for {
					p := path.Join(d, fmt.Sprintf("n%d-%s", rng.Intn(1000), strings.Repeat("x", rng.Intn(120))))
					if !m.exists(p) {
						return p
					}
				}
			}
			var done []string
			do := func(what string, err error) {
				t.Helper()
				done = append(done, what)
				if err != nil {
					t.Fatalf("seed %d, operation %d (%s): %v\nbefore it: %s", seed, len(done), what, err, strings.Join(done[max(0, len(done)-10):len(done)-1], "; "))
				}
			}
			for i := 0; i < n; i++ {
				switch op := rng.Intn(10); {
				case op == 0: // mkdir -p, one or two levels
					p := fresh()
					if rng.Intn(2) == 0 {
						p += "/sub"
					}
					do("mkdir "+p, f.MakePath(p))
					for q := p; !m.dirs[q]; q = path.Dir(q) {
						m.dirs[q] = true
					}
				case op <= 2: // a new file, or an existing one replaced
					p := fresh()
					if q, ok := pick(rng, m.files); ok && rng.Intn(2) == 0 {
						p = q
					}
					data := content()
					do(fmt.Sprintf("write %s (%d bytes)", p, len(data)), f.ReplaceFile(p, data))
					if mf := m.files[p]; mf != nil {
						mf.data = data
					} else {
						m.files[p] = &modelFile{data: data}
					}
				case op == 3: // append
					p, ok := pick(rng, m.files)
					if !ok {
						continue
					}
					data := content()
					do(fmt.Sprintf("append %s (%d bytes)", p, len(data)), f.AppendFile(p, data))
					m.files[p].data = append(slices.Clip(m.files[p].data), data...)
				case op == 4: // truncate, shorter or longer
					p, ok := pick(rng, m.files)
					if !ok {
						continue
					}
					mf := m.files[p]
					size := rng.Intn(len(mf.data) + 2*bs)
					do(fmt.Sprintf("truncate %s to %d", p, size), f.Truncate(p, int64(size)))
					if size <= len(mf.data) {
						mf.data = slices.Clone(mf.data[:size])
					} else {
						mf.data = append(slices.Clone(mf.data), make([]byte, size-len(mf.data))...)
					}
				case op == 5: // symlink, inline or remote
					p, target := fresh(), strings.Repeat("t", 1+rng.Intn(maxSymlinkLen))
					do("symlink "+p, f.Symlink(target, p))
					m.links[p] = target
				case op == 6: // hard link
					old, ok := pick(rng, m.files)
					if !ok {
						continue
					}
					p := fresh()
					do("link "+old+" "+p, f.Link(old, p))
					m.files[p] = m.files[old]
				case op == 7: // remove a file, a symlink or an empty directory
					var p string
					switch k := rng.Intn(3); {
					case k == 0 && len(m.links) > 0:
						p, _ = pick(rng, m.links)
					case k == 1 && len(m.dirs) > 1:
						d, _ := pick(rng, m.dirs)
						if d == "/" || len(m.children(d)) > 0 {
							continue
						}
						p = d
					default:
						var ok bool
						if p, ok = pick(rng, m.files); !ok {
							continue
						}
					}
					do("remove "+p, f.Remove(p))
					delete(m.files, p)
					delete(m.links, p)
					delete(m.dirs, p)
				default: // rename a file or a directory, to a new name or over a target
					var from, to string
					if d, ok := pick(rng, m.dirs); ok && d != "/" && rng.Intn(3) == 0 {
						from = d
						to = fresh()
						if strings.HasPrefix(to, from+"/") {
							continue // into its own subtree: refused, TestRename
						}
						if e, ok := pick(rng, m.dirs); ok && e != "/" && e != from && rng.Intn(2) == 0 &&
							len(m.children(e)) == 0 && !strings.HasPrefix(e, from+"/") && !strings.HasPrefix(from, e+"/") {
							to = e // over an empty directory
							delete(m.dirs, e)
						}
					} else if p, ok := pick(rng, m.files); ok {
						from, to = p, fresh()
						if q, ok := pick(rng, m.files); ok && q != p && m.files[q] != m.files[p] && rng.Intn(2) == 0 {
							to = q // over another file
						}
					} else {
						continue
					}
					do("rename "+from+" "+to, f.Rename(from, to))
					m.rename(from, to)
				}
				if (i+1)%40 == 0 || i == n-1 {
					do("flush", f.Flush())
					repairClean(t, img)
					checkModel(t, openImage(t, img, nil), m, fmt.Sprintf("seed %d after %d operations", seed, i+1))
				}
			}
			shapes := map[string]int{}
			g := openImage(t, img, nil)
			for d := range m.dirs {
				shapes[dirShape(t, g, d)]++
			}
			t.Logf("%d operations (%d renames); directories by form: %v", n, strings.Count(strings.Join(done, "\n"), "rename "), shapes)
		})
	}
}

// checkModel compares the filesystem with the model.
func checkModel(t *testing.T, g *FS, m *fsModel, when string) {
	t.Helper()
	names := map[*modelFile]uint32{}
	for _, mf := range m.files {
		names[mf]++
	}
	for d := range m.dirs {
		ents, err := g.ReadDir(d)
		if err != nil {
			t.Fatalf("%s: ReadDir %s: %v", when, d, err)
		}
		var got []string
		for _, e := range ents {
			got = append(got, e.Name)
		}
		sort.Strings(got)
		if want := m.children(d); !slices.Equal(got, want) {
			t.Fatalf("%s: %s holds %v, want %v", when, d, got, want)
		}
	}
	for p, mf := range m.files {
		got, err := g.ReadFile(p)
		if err != nil || !bytes.Equal(got, mf.data) {
			t.Fatalf("%s: %s reads %d bytes (%v), want the %d written", when, p, len(got), err, len(mf.data))
		}
		if st, err := g.Lstat(p); err != nil || st.Nlink != names[mf] {
			t.Fatalf("%s: %s has %d links (%v), want %d", when, p, st.Nlink, err, names[mf])
		}
	}
	for p, target := range m.links {
		if got, err := g.Readlink(p); err != nil || got != target {
			t.Fatalf("%s: symlink %s → %d bytes (%v), want %d", when, p, len(got), err, len(target))
		}
	}
}
