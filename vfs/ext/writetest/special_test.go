package writetest

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
)

// openEmpty makes spec's image from the demo guest and opens it writable;
// a clean refusal at Open returns nil (see openSession).
func openEmpty(t *testing.T, spec imageSpec, extra ...string) *session {
	t.Helper()
	return openSession(t, spec, extra...)
}

// TestHtreeSplits grows a directory to 20,000 entries (an indexed
// directory from the first blocks on), then keeps inserting until the
// hash tree has split several more leaves; e2fsck checks the index and
// every name is found by the engine and by debugfs.
func TestHtreeSplits(t *testing.T) {
	for _, name := range []string{"ext4", "ext4-1k", "ext2-4k"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := specByName(t, name)
			spec.mb = 64
			s := openEmpty(t, spec, "-N", "30000")
			if s == nil {
				return
			}
			s.htree(20000)
		})
	}
}

func (s *session) htree(entries int) {
	t := s.c.t
	const dir = "/big"
	if !s.step("MakePath "+dir, func() error { return s.fsys.MakePath(dir) }, nil) {
		return
	}
	for i := 0; i < entries; i++ {
		p := fmt.Sprintf("%s/entry-%05d", dir, i)
		if !s.step("ReplaceFile "+p, func() error { return s.fsys.ReplaceFile(p, nil) }, nil) {
			return
		}
	}
	if out, ok := fsck(t, s.im.path); !ok {
		s.c.Errorf("after %d entries: e2fsck -fn:\n%s", entries, out)
		return
	}
	st := debugfsStat(t, s.im.path, dir)
	if st.flags&flagIndex == 0 {
		s.c.Errorf("%s with %d entries is not hash-indexed (flags %#x)", dir, entries, st.flags)
		return
	}
	leaves := htreeLeaves(t, s.im.path, dir)
	grown, n := leaves, entries
	for n < entries+20000 && grown < leaves+3 {
		for end := n + 200; n < end; n++ {
			p := fmt.Sprintf("%s/more-%05d", dir, n)
			if !s.step("ReplaceFile "+p, func() error { return s.fsys.ReplaceFile(p, []byte(p)) }, nil) {
				return
			}
		}
		grown = htreeLeaves(t, s.im.path, dir)
	}
	t.Logf("%s: %d leaves at %d entries, %d leaves at %d entries", dir, leaves, entries, grown, n)
	if grown < leaves+3 {
		s.c.Errorf("inserting %d entries split %d leaves, want at least 3", n-entries, grown-leaves)
	}
	if out, ok := fsck(t, s.im.path); !ok {
		s.c.Errorf("e2fsck -fn after the splits:\n%s", out)
	}
	r := openRead(t, s.im.path)
	for _, i := range []int{0, 1, entries / 2, entries - 1} {
		p := fmt.Sprintf("%s/entry-%05d", dir, i)
		if ok, err := r.HasFile(p); !ok || err != nil {
			s.c.Errorf("engine lookup %s: %v %v", p, ok, err)
		}
	}
	for _, i := range []int{entries, n - 1} {
		p := fmt.Sprintf("%s/more-%05d", dir, i)
		if b, err := debugfsOut(t, s.im.path, "cat "+p); err != nil || string(b) != p {
			s.c.Errorf("debugfs cat %s: %q %v", p, b, err)
		}
	}
	if list, err := r.ReadDir(dir); err != nil || len(list) != n {
		s.c.Errorf("ReadDir %s: %d entries (%v), want %d", dir, len(list), err, n)
	}
}

// TestInlineToExtents: on an inline_data filesystem, files and a
// directory mke2fs wrote inline grow out of the inode into extents; a new
// small file and a new directory are written inline, as the kernel does.
func TestInlineToExtents(t *testing.T) {
	spec := specByName(t, "ext4-inline")
	t.Run("grow-file", func(t *testing.T) {
		if s := openEmpty(t, spec); s != nil {
			s.growInline("/etc/hostname")
		}
	})
	t.Run("grow-dir", func(t *testing.T) {
		if s := openEmpty(t, spec); s != nil {
			s.growInlineDir("/etc/network")
		}
	})
	t.Run("new-file", func(t *testing.T) {
		if s := openEmpty(t, spec); s != nil {
			s.newInline()
		}
	})
}

// growInline appends to an inline file until it needs blocks.
func (s *session) growInline(p string) {
	t := s.c.t
	if st := debugfsStat(t, s.im.path, p); st.flags&flagInline == 0 {
		t.Fatalf("mke2fs did not write %s inline (flags %#x): the test needs it", p, st.flags)
	}
	n, err := lstatNode(s.fsys, s.fsys, p)
	must(t, err)
	for i, size := range []int{20, 100, 5000, 3 * s.bs} {
		more := pattern(size, fmt.Sprint("grow", i))
		s.step(fmt.Sprintf("AppendFile %s +%d", p, size), func() error { return s.fsys.AppendFile(p, more) }, func() {
			n.data = append(n.data, more...)
			s.m.set(p, n)
		})
	}
	if st := debugfsStat(t, s.im.path, p); !s.stopped && (st.flags&flagInline != 0 || st.flags&flagExtents == 0) {
		s.c.Errorf("%s (%d bytes) did not move to extents: flags %#x", p, len(n.data), st.flags)
	}
	verify(s.c, s.im.path, s.m)
}

// growInlineDir adds entries to an inline directory until it needs blocks.
func (s *session) growInlineDir(d string) {
	t := s.c.t
	if st := debugfsStat(t, s.im.path, d); st.flags&flagInline == 0 {
		t.Fatalf("mke2fs did not write %s inline (flags %#x): the test needs it", d, st.flags)
	}
	s.bulk = true
	for i := 0; i < 40; i++ {
		f := fmt.Sprintf("%s/file-with-a-longish-name-%02d", d, i)
		s.step("ReplaceFile "+f, func() error { return s.fsys.ReplaceFile(f, []byte(f)) }, func() {
			s.m.set(f, &node{mode: vfs.UnixRegular | 0o644, data: []byte(f)})
		})
	}
	if st := debugfsStat(t, s.im.path, d); !s.stopped && st.flags&flagInline != 0 {
		s.c.Errorf("%s: still inline after 40 entries: flags %#x", d, st.flags)
	}
	verify(s.c, s.im.path, s.m)
}

// newInline creates a small file and a directory: both fit in the inode.
func (s *session) newInline() {
	t := s.c.t
	small := []byte("fits in the inode\n")
	s.step("ReplaceFile /etc/small", func() error { return s.fsys.ReplaceFile("/etc/small", small) }, func() {
		s.m.set("/etc/small", &node{mode: vfs.UnixRegular | 0o644, data: small})
	})
	s.step("MakePath /etc/idir", func() error { return s.fsys.MakePath("/etc/idir") }, func() {
		s.m.set("/etc/idir", &node{mode: vfs.UnixDir | 0o755})
	})
	verify(s.c, s.im.path, s.m)
	for _, p := range []string{"/etc/small", "/etc/idir"} {
		if st := debugfsStat(t, s.im.path, p); !s.stopped && st.flags&flagInline == 0 {
			s.c.Errorf("new %s is not inline on an inline_data filesystem: flags %#x", p, st.flags)
		}
	}
}

// TestExtentTreeDeepens interleaves one-block appends to two files so
// every append starts a new extent, until the extent tree needs index
// levels: depth 1 on 4 KiB blocks, depth 2 on 1 KiB blocks.
func TestExtentTreeDeepens(t *testing.T) {
	for _, c := range []struct {
		name    string
		appends int
		depth   int
	}{{"ext4", 12, 1}, {"ext4-1k", 400, 2}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := openEmpty(t, specByName(t, c.name))
			if s == nil {
				return
			}
			files := []string{"/frag-a", "/frag-b"}
			content := map[string][]byte{}
			for i := 0; i < c.appends && !s.stopped; i++ {
				for _, p := range files {
					b := pattern(s.bs, fmt.Sprint(p, i))
					s.step(fmt.Sprintf("AppendFile %s #%d", p, i), func() error { return s.fsys.AppendFile(p, b) }, func() {
						content[p] = append(content[p], b...)
						s.m.set(p, &node{mode: vfs.UnixRegular | 0o644, data: content[p]})
					})
				}
			}
			if !s.stopped {
				depth, leaves := extentDepth(t, s.im.path, files[0])
				t.Logf("%s: %d extents, depth %d", files[0], leaves, depth)
				if depth < c.depth {
					s.c.Errorf("%s: extent depth %d after %d interleaved appends (%d extents), want >= %d", files[0], depth, c.appends, leaves, c.depth)
				}
			}
			verify(s.c, s.im.path, s.m)
		})
	}
}

// TestDoubleIndirect writes ext2/ext3 files past the direct and single
// indirect blocks, by one replace and by appends crossing each boundary.
func TestDoubleIndirect(t *testing.T) {
	for _, name := range []string{"ext2-1k", "ext2-4k", "ext3-4k", "ext3-1k-128"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := openEmpty(t, specByName(t, name))
			if s == nil {
				return
			}
			perBlock := s.bs / 4
			whole := pattern((12+perBlock+10)*s.bs+123, "dind")
			s.step("ReplaceFile /dind", func() error { return s.fsys.ReplaceFile("/dind", whole) }, func() {
				s.m.set("/dind", &node{mode: vfs.UnixRegular | 0o644, data: whole})
			})
			var grown []byte
			for i, n := range []int{11*s.bs + 5, s.bs, (perBlock + 3) * s.bs} {
				b := pattern(n, fmt.Sprint("grow", i))
				s.step(fmt.Sprintf("AppendFile /grown +%d", n), func() error { return s.fsys.AppendFile("/grown", b) }, func() {
					grown = append(grown, b...)
					s.m.set("/grown", &node{mode: vfs.UnixRegular | 0o644, data: grown})
				})
			}
			for _, p := range []string{"/dind", "/grown"} {
				if st := debugfsStat(t, s.im.path, p); !s.stopped && !strings.Contains(st.raw, "(DIND)") {
					s.c.Errorf("%s has no double-indirect block:\n%s", p, st.raw)
				}
			}
			verify(s.c, s.im.path, s.m)
		})
	}
}

var reFree = regexp.MustCompile(`(?m)^Free (blocks|inodes):\s+(\d+)`)

// freeCounts returns the superblock's free blocks and inodes.
func freeCounts(t testing.TB, img string) (blocks, inodes int64) {
	t.Helper()
	out := debugfs(t, img, "stats")
	for _, m := range reFree.FindAllStringSubmatch(out, 2) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		if m[1] == "blocks" {
			blocks = v
		} else {
			inodes = v
		}
	}
	return blocks, inodes
}

// TestNearlyFull fills filesystems: a write that cannot fit fails with
// ErrNoSpace and leaves the image byte-for-byte unchanged, what fits is
// written, and e2fsck stays clean. Inodes run out the same way.
func TestNearlyFull(t *testing.T) {
	for _, name := range []string{"ext4", "ext2-1k", "ext4-1k", "ext4-1k-bigalloc"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := specByName(t, name)
			spec.mb = 24 // three block groups on 1 KiB blocks
			t.Run("blocks", func(t *testing.T) {
				if s := openEmpty(t, spec); s != nil {
					s.fill()
				}
			})
			t.Run("inodes", func(t *testing.T) {
				if s := openEmpty(t, spec, "-N", "64"); s != nil {
					s.fillInodes()
				}
			})
		})
	}
}

// noSpace runs op, which must fail with ErrNoSpace and write nothing.
func (s *session) noSpace(what string, op func() error) {
	t := s.c.t
	sum, writes := fileSHA(t, s.im.path), s.im.writeCount()
	err := op()
	if !errors.Is(err, vfs.ErrNoSpace) {
		s.c.Errorf("%s: %v, want ErrNoSpace", what, err)
		if err == nil {
			s.stopped = true
		}
		return
	}
	if s.im.writeCount() != writes || fileSHA(t, s.im.path) != sum {
		s.c.Errorf("%s failed with %v but the image changed", what, err)
	}
}

func (s *session) fill() {
	t := s.c.t
	freeBlocks, _ := freeCounts(t, s.im.path)
	free := int(freeBlocks) * s.bs
	s.noSpace("ReplaceFile /fill larger than the free space", func() error {
		return s.fsys.ReplaceFile("/fill", pattern(free+16*s.bs, "too big"))
	})
	big := pattern(free-free/16, "fill")
	s.step("ReplaceFile /fill 15/16 of the free space", func() error { return s.fsys.ReplaceFile("/fill", big) }, func() {
		s.m.set("/fill", &node{mode: vfs.UnixRegular | 0o644, data: big})
	})
	if s.stopped {
		return
	}
	s.noSpace("AppendFile /fill beyond the free space", func() error {
		return s.fsys.AppendFile("/fill", pattern(free/8, "more"))
	})
	// Top up block by block until the filesystem is full; the append
	// that does not fit must write nothing.
	var err error
	for i := 0; i < free/s.bs && err == nil; i++ {
		b := pattern(s.bs, fmt.Sprint("top", i))
		writes := s.im.writeCount()
		if err = s.fsys.AppendFile("/fill", b); err == nil {
			n := s.m.nodes["/fill"]
			n.data = append(n.data, b...)
		} else if s.im.writeCount() != writes {
			s.c.Errorf("the append that did not fit (%v) wrote to the image", err)
		}
	}
	if !errors.Is(err, vfs.ErrNoSpace) {
		s.c.Errorf("topping up /fill: %v, want ErrNoSpace at the end", err)
	}
	// More than the slack of the last block needs a new block.
	s.noSpace("AppendFile to a full filesystem", func() error { return s.fsys.AppendFile("/fill", pattern(s.bs+1, "x")) })
	if out, ok := fsck(t, s.im.path); !ok {
		s.c.Errorf("e2fsck -fn on the full filesystem:\n%s", out)
	}
	verify(s.c, s.im.path, s.m)
}

// fillInodes creates empty files until no inode is left.
func (s *session) fillInodes() {
	t := s.c.t
	_, freeInodes := freeCounts(t, s.im.path)
	var err error
	for i := 0; i <= int(freeInodes); i++ {
		p := fmt.Sprintf("/e%03d", i)
		if err = s.fsys.ReplaceFile(p, nil); err != nil {
			break
		}
		s.m.set(p, &node{mode: vfs.UnixRegular | 0o644, data: []byte{}})
	}
	if !errors.Is(err, vfs.ErrNoSpace) {
		s.c.Errorf("creating %d+1 files with %d free inodes: %v, want ErrNoSpace", freeInodes, freeInodes, err)
		return
	}
	s.noSpace("ReplaceFile with no free inode", func() error { return s.fsys.ReplaceFile("/one-more", nil) })
	s.noSpace("MakePath with no free inode", func() error { return s.fsys.MakePath("/one-more-dir") })
	verify(s.c, s.im.path, s.m)
}

// TestCasefoldDirectory writes into a casefolded directory (flag set by
// debugfs on an empty directory mke2fs made): names are found whatever
// their case, a name differing only in case is the same file, and the
// directory grows into an index whose hashes e2fsck accepts.
func TestCasefoldDirectory(t *testing.T) {
	spec := specByName(t, "ext4-casefold")
	s := openEmpty(t, spec)
	if s == nil {
		return
	}
	const d = "/home/debian/cf"
	// Make the empty directory with the engine, then flag it casefolded
	// with debugfs (the engine is reopened afterwards).
	if !s.step("MakePath "+d, func() error { return s.fsys.MakePath(d) }, nil) {
		return
	}
	debugfsWrite(t, s.im.path, "sif "+d+" flags 0x40080000")
	im, fsys, err := openImage(t, s.im.path, ext.Options{})
	if err != nil {
		s.c.Errorf("reopen: %v", err)
		return
	}
	s.im, s.fsys = im, fsys
	s.m.set(d, &node{mode: vfs.UnixDir | 0o755})
	s.step("ReplaceFile "+d+"/Hello.TXT", func() error { return s.fsys.ReplaceFile(d+"/Hello.TXT", []byte("one\n")) }, nil)
	s.step("AppendFile "+d+"/hello.txt", func() error { return s.fsys.AppendFile(d+"/hello.txt", []byte("two\n")) }, func() {
		s.m.set(d+"/Hello.TXT", &node{mode: vfs.UnixRegular | 0o644, data: []byte("one\ntwo\n")})
	})
	s.bulk = true
	for i := 0; i < 600 && !s.stopped; i++ {
		p := fmt.Sprintf("%s/Entry-%03d-ÄÖÜ", d, i)
		s.step("ReplaceFile "+p, func() error { return s.fsys.ReplaceFile(p, []byte(p)) }, func() {
			if i%50 == 0 { // a sample: debugfs reads of all 600 would dominate
				s.m.set(p, &node{mode: vfs.UnixRegular | 0o644, data: []byte(p)})
			}
		})
	}
	if s.stopped {
		verify(s.c, s.im.path, s.m)
		return
	}
	for _, p := range []string{d + "/HELLO.txt", fmt.Sprintf("%s/entry-123-äöü", d)} {
		if ok, err := s.fsys.HasFile(p); !ok || err != nil {
			s.c.Errorf("casefold lookup %s: %v %v", p, ok, err)
		}
	}
	if st := debugfsStat(t, s.im.path, d); st.flags&flagIndex == 0 {
		s.c.Errorf("%s with 600 entries is not indexed: flags %#x", d, st.flags)
	}
	verify(s.c, s.im.path, s.m)
}

// debugfsWrite runs one debugfs request read-write.
func debugfsWrite(t testing.TB, img, req string) {
	t.Helper()
	testtool.Run(t, "debugfs", "-w", "-R", req, img)
}
