package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// attrFormats are the filesystems the attribute writer is tested on:
// v5 at three block sizes and two inode sizes, v5 with the reverse-mapping
// btree (attr-fork blocks are mapped with the attr flag), v4 (attr2) at two.
var attrFormats = []struct {
	name string
	args []string
}{
	{"v5", nil},
	{"v5-1k", []string{"-b", "size=1024"}},
	{"v5-64k", []string{"-b", "size=65536"}},
	{"v5-i1k", []string{"-i", "size=1024"}},
	{"v5-rmap", []string{"-m", "rmapbt=1"}},
	{"v5-rmap-1k", []string{"-m", "rmapbt=1", "-b", "size=1024"}},
	{"v4", []string{"-m", "crc=0"}},
	{"v4-i256-1k", []string{"-m", "crc=0", "-i", "size=256", "-b", "size=1024"}},
}

// attrImage makes a filesystem with a file, a directory, a symlink and
// a device node to label.
func attrImage(t *testing.T, args []string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	mkfs(t, img, 320<<20, args...)
	f := openRW(t, img)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.MakePath("/d"))
	must(f.ReplaceFile("/d/file", pattern(5000, 1)))
	must(f.Symlink("/d/file", "/d/link"))
	return img
}

// wantAttrs checks the attributes of p as a fresh open reads them.
func wantAttrs(t *testing.T, img, p string, want map[string][]byte) {
	t.Helper()
	f := openImage(t, img, nil)
	in := pathInode(t, f, p)
	xs, err := f.storedXattrs(in)
	if err != nil {
		t.Fatalf("%s: reading attributes: %v", p, err)
	}
	got := map[string][]byte{}
	for _, x := range xs {
		v, err := f.xattrValue(in, x)
		if err != nil {
			t.Fatalf("%s: %s: %v", p, x.name, err)
		}
		got[x.name] = v
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d attributes %q, want %d", p, len(got), slices.Sorted(mapKeys(got)), len(want))
	}
	for n, v := range want {
		if g, ok := got[n]; !ok || !bytes.Equal(g, v) {
			t.Errorf("%s: %s = %.40q (present %v), want %.40q (%d bytes)", p, n, g, ok, v, len(v))
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func pathInode(t *testing.T, f *FS, p string) *inode {
	t.Helper()
	_, in, err := f.resolve("test", p, false)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestXattrWriteForms: set, replace and remove in short form, growth to
// a leaf block with local and remote values, back to short form and to
// no fork, on every format; xfs_repair -n clean and a fresh open reads
// exactly the attributes after each step, and xfs_db sees the form.
func TestXattrWriteForms(t *testing.T) {
	for _, c := range attrFormats {
		t.Run(c.name, func(t *testing.T) {
			img := attrImage(t, c.args)
			want := map[string][]byte{}
			set := func(name string, v []byte) {
				t.Helper()
				f := openRW(t, img)
				if err := f.SetXattr("/d/file", name, v); err != nil {
					t.Fatalf("SetXattr %s (%d bytes): %v", name, len(v), err)
				}
				want[name] = v
			}
			del := func(name string) {
				t.Helper()
				f := openRW(t, img)
				if err := f.RemoveXattr("/d/file", name); err != nil {
					t.Fatalf("RemoveXattr %s: %v", name, err)
				}
				delete(want, name)
			}
			check := func(form layout.ForkFormat) {
				t.Helper()
				repairClean(t, img)
				wantAttrs(t, img, "/d/file", want)
				ino := pathInode(t, openImage(t, img, nil), "/d/file").ino
				out := xfsDB(t, img, fmt.Sprintf("inode %d", ino), "p core.aformat")
				if want := fmt.Sprintf("core.aformat = %d ", form); !strings.HasPrefix(out, want) {
					t.Errorf("xfs_db: %q, want %q", strings.TrimSpace(out), want)
				}
			}
			set("security.selinux", []byte("system_u:object_r:etc_t:s0\x00"))
			if sb := openImage(t, img, nil).sb; sb.Version() == 4 && sb.Bits()&layout.VersionAttr == 0 {
				t.Errorf("v4 superblock without the ATTR bit after the first attr fork")
			}
			set("user.a", []byte("1"))
			set("trusted.t", []byte("root only"))
			check(layout.FormatLocal)
			set("user.a", []byte("replaced and longer"))
			del("trusted.t")
			check(layout.FormatLocal)
			// A 255-byte value cannot be short form: a leaf.
			set("user.long", bytes.Repeat([]byte{'L'}, 255))
			check(layout.FormatExtents)
			for i := 0; i < 12; i++ {
				set(fmt.Sprintf("user.n%02d", i), pattern(20+i, byte(i)))
			}
			// A value for remote blocks (several blocks, and several
			// headers on v5).
			bs := int(openImage(t, img, nil).geo.blockSize)
			big := pattern(min(bs+bs/2, 60000), 9)
			set("user.big", big)
			set("security.ima", pattern(bs*3/4, 7))
			check(layout.FormatExtents)
			set("user.big", pattern(min(3*bs+5, 65536), 3)) // remote replaced by remote
			set("security.ima", []byte("now local"))
			check(layout.FormatExtents)
			del("user.big")
			del("user.long")
			for i := 0; i < 12; i++ {
				del(fmt.Sprintf("user.n%02d", i))
			}
			// Everything left fits the inode: back to short form.
			check(layout.FormatLocal)
			if err := openRW(t, img).RemoveXattr("/d/file", "user.nothere"); !errors.Is(err, vfs.ErrNoXattr) {
				t.Errorf("removing a missing attribute: %v, want ErrNoXattr", err)
			}
			for n := range want {
				del(n)
			}
			repairClean(t, img)
			wantAttrs(t, img, "/d/file", want)
			f := openImage(t, img, nil)
			if in := pathInode(t, f, "/d/file"); in.core.ForkOff != 0 || in.attr != nil {
				t.Errorf("after removing every attribute forkoff = %d, want no attr fork", in.core.ForkOff)
			}
			// The data survived every fork offset.
			if got, err := f.ReadFile("/d/file"); err != nil || !bytes.Equal(got, pattern(5000, 1)) {
				t.Errorf("file content changed: %v", err)
			}
		})
	}
}

// TestXattrWriteObjects labels a directory (short form, then nearly full
// ones), the symlink itself (not followed) and the root, as a relabel
// does, and checks xfs_repair and the read side.
func TestXattrWriteObjects(t *testing.T) {
	for _, c := range attrFormats {
		t.Run(c.name, func(t *testing.T) {
			img := attrImage(t, c.args)
			f := openRW(t, img)
			// A short-form directory filled close to the literal area:
			// the attr fork cannot sit after it, so it becomes a block.
			in := pathInode(t, f, "/d")
			lit := int(f.geo.inodeSize) - in.core.CoreSize()
			for i := 0; ; i++ {
				in := pathInode(t, f, "/d")
				if in.core.Format != layout.FormatLocal || int(in.core.Size)+40 > lit {
					break
				}
				if err := f.MakePath(fmt.Sprintf("/d/s%03d", i)); err != nil {
					t.Fatal(err)
				}
			}
			label := []byte("system_u:object_r:etc_t:s0\x00")
			for _, p := range []string{"/", "/d", "/d/link", "/d/file", "/d/s000"} {
				if err := f.SetXattr(p, "security.selinux", label); err != nil {
					t.Fatalf("SetXattr %s: %v", p, err)
				}
			}
			repairClean(t, img)
			for _, p := range []string{"/", "/d", "/d/link", "/d/file", "/d/s000"} {
				wantAttrs(t, img, p, map[string][]byte{"security.selinux": label})
			}
			g := openImage(t, img, nil)
			if got, err := g.Readlink("/d/link"); err != nil || got != "/d/file" {
				t.Errorf("symlink now reads %q, %v", got, err)
			}
			ents, err := g.ReadDir("/d")
			if err != nil || len(ents) < 3 {
				t.Errorf("directory reads %d entries, %v", len(ents), err)
			}
		})
	}
}

// TestXattrBigDataFork: a file whose extents fill the inode (the attr
// fork forces a bmap btree) and a file with a btree data fork get
// attributes; the data reads back unchanged.
func TestXattrBigDataFork(t *testing.T) {
	for _, c := range attrFormats {
		t.Run(c.name, func(t *testing.T) {
			img := attrImage(t, c.args)
			f := openRW(t, img)
			bs := int(f.geo.blockSize)
			lit := int(f.geo.inodeSize) - 176
			if !f.geo.crc {
				lit = int(f.geo.inodeSize) - 100
			}
			// Fragment two files: interleaved one-block appends. /a
			// stops with its extents filling the literal area, /b goes
			// on to a bmap btree.
			var a, b []byte
			for i := 0; i < lit/16+8; i++ {
				blk := pattern(bs, byte(i))
				if i < lit/16 {
					if err := f.AppendFile("/a", blk); err != nil {
						t.Fatal(err)
					}
					a = append(a, blk...)
				} else if err := f.AppendFile("/spacer", blk); err != nil {
					t.Fatal(err)
				}
				if err := f.AppendFile("/b", blk); err != nil {
					t.Fatal(err)
				}
				b = append(b, blk...)
			}
			repairClean(t, img)
			for _, p := range []string{"/a", "/b"} {
				in := pathInode(t, openImage(t, img, nil), p)
				t.Logf("%s: format %s, %d extents", p, in.core.Format, in.core.DataExtents())
				f := openRW(t, img)
				if err := f.SetXattr(p, "security.selinux", []byte("system_u:object_r:etc_t:s0\x00")); err != nil {
					t.Fatalf("SetXattr %s: %v", p, err)
				}
				if err := f.SetXattr(p, "user.x", bytes.Repeat([]byte("x"), 100)); err != nil {
					t.Fatalf("SetXattr %s: %v", p, err)
				}
				repairClean(t, img)
			}
			g := openImage(t, img, nil)
			if in := pathInode(t, g, "/a"); in.core.Format != layout.FormatBtree || in.core.ForkOff == 0 {
				t.Errorf("/a: data fork %s, fork offset %d; want its full extent list converted to a btree beside the attr fork", in.core.Format, in.core.ForkOff)
			}
			for p, want := range map[string][]byte{"/a": a, "/b": b} {
				got, err := g.ReadFile(p)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: content changed (%d bytes, want %d): %v", p, len(got), len(want), err)
				}
				wantAttrs(t, img, p, map[string][]byte{"security.selinux": []byte("system_u:object_r:etc_t:s0\x00"), "user.x": bytes.Repeat([]byte("x"), 100)})
			}
		})
	}
}

// TestXattrRefusals: what the writer does not write is refused with the
// image unchanged: more leaves than one node block points at (a deeper
// da btree), system.* names besides the ACLs, an invalid ACL.
func TestXattrRefusals(t *testing.T) {
	img := attrImage(t, []string{"-b", "size=1024"})
	f := openRW(t, img)
	var i int
	var err error
	for i = 0; i < 400; i++ {
		if err = f.SetXattr("/d/file", fmt.Sprintf("user.attr%03d", i), pattern(300, byte(i))); err != nil {
			break
		}
	}
	if !errors.Is(err, vfs.ErrUnsupported) || i < 200 {
		t.Fatalf("attribute %d: %v, want ErrUnsupported past one node's leaves", i, err)
	}
	repairClean(t, img)
	before, _ := os.ReadFile(img)
	for _, c := range []struct {
		name  string
		value []byte
		want  error
	}{
		{"user.more", pattern(300, 1), vfs.ErrUnsupported},
		{"system.foo", []byte("x"), vfs.ErrUnsupported},
		{"system.posix_acl_access", []byte{1, 0, 0, 0}, os.ErrInvalid},
	} {
		if err := openRW(t, img).SetXattr("/d/file", c.name, c.value); !errors.Is(err, c.want) {
			t.Errorf("SetXattr %s: %v, want %v", c.name, err, c.want)
		}
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Errorf("a refused set changed the image")
	}
}

// TestXattrACL: POSIX ACLs are stored as XFS stores them (SGI_ACL_FILE,
// trusted) and read back through the system.* names.
func TestXattrACL(t *testing.T) {
	for _, c := range []string{"v5", "v4"} {
		t.Run(c, func(t *testing.T) {
			var args []string
			if c == "v4" {
				args = []string{"-m", "crc=0"}
			}
			img := attrImage(t, args)
			// user::rw- user:1000:r-- group::r-- mask::r-- other::---
			acl := []byte{2, 0, 0, 0}
			for _, e := range [][3]uint32{{1, 6, 0xFFFFFFFF}, {2, 4, 1000}, {4, 4, 0xFFFFFFFF}, {0x10, 4, 0xFFFFFFFF}, {0x20, 0, 0xFFFFFFFF}} {
				acl = append(acl, byte(e[0]), byte(e[0]>>8), byte(e[1]), byte(e[1]>>8), byte(e[2]), byte(e[2]>>8), byte(e[2]>>16), byte(e[2]>>24))
			}
			if err := openRW(t, img).SetXattr("/d/file", posixACLAccess, acl); err != nil {
				t.Fatal(err)
			}
			repairClean(t, img)
			got, err := openImage(t, img, nil).GetXattr("/d/file", posixACLAccess)
			if err != nil || !bytes.Equal(got, acl) {
				t.Errorf("ACL reads back %x, %v; want %x", got, err, acl)
			}
			out := xfsDB(t, img, fmt.Sprintf("inode %d", pathInode(t, openImage(t, img, nil), "/d/file").ino), "p a")
			if !strings.Contains(out, "SGI_ACL_FILE") {
				t.Errorf("xfs_db shows no SGI_ACL_FILE:\n%s", out)
			}
			if err := openRW(t, img).RemoveXattr("/d/file", posixACLAccess); err != nil {
				t.Fatal(err)
			}
			repairClean(t, img)
			wantAttrs(t, img, "/d/file", map[string][]byte{})
		})
	}
}

// TestXattrRandom: random sets and removes on a few objects against a
// model; xfs_repair -n clean and a fresh open matching the model at
// checkpoints.
func TestXattrRandom(t *testing.T) {
	seed := seedFromEnv()
	t.Logf("seed %d (XFSDIR_SEED to repeat)", seed)
	rng := rand.New(rand.NewSource(seed))
	formats := attrFormats
	if testing.Short() {
		formats = formats[:2]
	}
	for _, c := range formats {
		t.Run(c.name, func(t *testing.T) {
			img := attrImage(t, c.args)
			paths := []string{"/d/file", "/d", "/d/link"}
			model := map[string]map[string][]byte{}
			for _, p := range paths {
				model[p] = map[string][]byte{}
			}
			f := openRW(t, img)
			bs := int(f.geo.blockSize)
			sizes := []int{0, 1, 10, 30, 254, 255, 300, bs / 2, bs*3/4 + 1, min(bs+100, 65536)}
			for step := 0; step < 150; step++ {
				p := paths[rng.Intn(len(paths))]
				name := []string{"user.", "trusted.", "security."}[rng.Intn(3)] + fmt.Sprintf("k%d", rng.Intn(14))
				if rng.Intn(3) == 0 {
					err := f.RemoveXattr(p, name)
					if errors.Is(err, vfs.ErrUnsupported) {
						continue // refused, nothing written
					}
					if _, ok := model[p][name]; ok {
						if err != nil {
							t.Fatalf("step %d: RemoveXattr %s %s: %v", step, p, name, err)
						}
						delete(model[p], name)
					} else if !errors.Is(err, vfs.ErrNoXattr) {
						t.Fatalf("step %d: RemoveXattr %s missing %s: %v", step, p, name, err)
					}
				} else {
					v := pattern(sizes[rng.Intn(len(sizes))], byte(step))
					err := f.SetXattr(p, name, v)
					if errors.Is(err, vfs.ErrUnsupported) {
						continue // more than one leaf: refused, nothing written
					}
					if err != nil {
						t.Fatalf("step %d: SetXattr %s %s (%d bytes): %v", step, p, name, len(v), err)
					}
					model[p][name] = v
				}
				if step%25 == 24 {
					repairClean(t, img)
					for _, p := range paths {
						wantAttrs(t, img, p, model[p])
					}
				}
			}
		})
	}
}

// TestXattrHostile: a leaf block that lies (a name record in the header,
// a remote value in an unmapped block, an entry count past the block, a
// name stored twice, a short-form total past the fork) is refused by
// SetXattr and RemoveXattr with a corrupt error naming the inode, and
// nothing is written.
func TestXattrHostile(t *testing.T) {
	for _, c := range []struct {
		name  string
		patch func(t *testing.T, leaf []byte, hdr, info int)
		sf    bool
	}{
		{"name in header", func(t *testing.T, leaf []byte, hdr, info int) { leaf[hdr+4], leaf[hdr+5] = 0, 0x10 }, false},
		{"count past block", func(t *testing.T, leaf []byte, hdr, info int) { leaf[info], leaf[info+1] = 0xFF, 0xF0 }, false},
		{"remote unmapped", func(t *testing.T, leaf []byte, hdr, info int) {
			// The remote entry's record: valueblk set to 1000.
			for i := 0; ; i++ {
				e := leaf[hdr+i*8:]
				if e[6]&layout.AttrLocal == 0 {
					p := int(e[4])<<8 | int(e[5])
					leaf[p], leaf[p+1], leaf[p+2], leaf[p+3] = 0, 0, 0x03, 0xE8
					return
				}
			}
		}, false},
		{"name twice", func(t *testing.T, leaf []byte, hdr, info int) {
			// The second entry points at the first's record.
			copy(leaf[hdr+8:hdr+16], leaf[hdr:hdr+8])
		}, false},
		{"short-form total", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := attrImage(t, nil)
			f := openRW(t, img)
			bs := int(f.geo.blockSize)
			if err := f.SetXattr("/d/file", "user.a", []byte("1")); err != nil {
				t.Fatal(err)
			}
			if !c.sf {
				for _, n := range []string{"user.b", "user.c"} {
					if err := f.SetXattr("/d/file", n, pattern(300, 2)); err != nil {
						t.Fatal(err)
					}
				}
				if err := f.SetXattr("/d/file", "user.remote", pattern(bs, 3)); err != nil {
					t.Fatal(err)
				}
			}
			g := openImage(t, img, nil)
			in := pathInode(t, g, "/d/file")
			if c.sf {
				// totsize past the attr fork.
				off := g.geo.inoAddr(in.ino) + int64(in.core.CoreSize()) + int64(in.core.ForkOff)*8
				patchAt(t, img, off, []byte{0x7F, 0xFF})
				raw := make([]byte, g.geo.inodeSize)
				fh, _ := os.Open(img)
				fh.ReadAt(raw, g.geo.inoAddr(in.ino))
				fh.Close()
				putCRC(raw, layout.InodeCRCOffset)
				patchAt(t, img, g.geo.inoAddr(in.ino), raw)
			} else {
				exts, err := g.readForkExtents(in, true)
				if err != nil {
					t.Fatal(err)
				}
				x := findExtent(exts, 0)
				off := g.geo.fsbLinear(exts[x].StartBlock-exts[x].StartOff) << g.geo.blockLog
				leaf := make([]byte, bs)
				fh, _ := os.Open(img)
				fh.ReadAt(leaf, off)
				fh.Close()
				c.patch(t, leaf, g.attrLeafHdrSize(), g.daInfoSize())
				putCRC(leaf, layout.DA3BlkinfoCRCOffset)
				patchAt(t, img, off, leaf)
			}
			before, _ := os.ReadFile(img)
			for _, op := range []func(f *FS) error{
				func(f *FS) error { return f.SetXattr("/d/file", "user.new", []byte("x")) },
				func(f *FS) error { return f.RemoveXattr("/d/file", "user.a") },
			} {
				err := op(openRW(t, img))
				var ce *CorruptError
				if !errors.Is(err, vfs.ErrCorrupt) || !errors.As(err, &ce) || ce.Ino != in.ino {
					t.Errorf("%v, want a corrupt error naming inode %d", err, in.ino)
				}
			}
			if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
				t.Errorf("a refused write changed the image")
			}
		})
	}
}

// TestXattrNodeForm: attributes outgrow one leaf into a node over
// leaves (a remote value among them), grow to many leaves, and
// shrink back through one leaf to short form and no fork; xfs_repair -n
// clean and a fresh open reading exactly the model at each stage, and
// xfs_db sees a node at block 0.
func TestXattrNodeForm(t *testing.T) {
	for _, c := range attrFormats {
		// 64 KiB leaves take thousands of attributes before a node;
		// each set rewrites every leaf, so that format stays with the
		// one-leaf tests.
		if c.name == "v5-64k" || testing.Short() && c.name != "v5-1k" && c.name != "v4" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			img := attrImage(t, c.args)
			f := openRW(t, img)
			bs := int(f.geo.blockSize)
			n := 6 * bs / 100 // about six leaves of entries
			want := map[string][]byte{}
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("user.node%04d", i)
				v := pattern(40+i%50, byte(i))
				if i == n/2 {
					v = pattern(bs, byte(i)) // one remote value
				}
				if err := f.SetXattr("/d/file", name, v); err != nil {
					t.Fatalf("SetXattr %s: %v", name, err)
				}
				want[name] = v
			}
			repairClean(t, img)
			wantAttrs(t, img, "/d/file", want)
			g := openImage(t, img, nil)
			st, err := g.loadAttrs(pathInode(t, g, "/d/file"))
			if err != nil || st.form != attrNode || len(st.leaves) < 3 {
				t.Fatalf("after %d sets: form %d with %d leaves, %v; want a node over leaves", n, st.form, len(st.leaves), err)
			}
			ino := pathInode(t, g, "/d/file").ino
			if out := xfsDB(t, img, fmt.Sprintf("inode %d", ino), "ablock 0", "p hdr.level"); !strings.Contains(out, "hdr.level = 1") {
				t.Errorf("xfs_db at attr block 0: %s", out)
			}
			// Shrink: remove all but a few, checking on the way.
			f = openRW(t, img)
			k := 0
			for name := range want {
				if len(want) <= 3 {
					break
				}
				if err := f.RemoveXattr("/d/file", name); err != nil {
					t.Fatalf("RemoveXattr %s: %v", name, err)
				}
				delete(want, name)
				if k++; k%(n/4) == 0 {
					repairClean(t, img)
					wantAttrs(t, img, "/d/file", want)
				}
			}
			repairClean(t, img)
			wantAttrs(t, img, "/d/file", want)
			g = openImage(t, img, nil)
			in := pathInode(t, g, "/d/file")
			if st, err := g.loadAttrs(in); err != nil || st.form == attrNode {
				t.Errorf("with %d attributes left: form %d, %v; want the node gone", len(want), st.form, err)
			}
		})
	}
}
