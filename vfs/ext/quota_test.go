package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// quotaImages are the quota filesystems the accounting tests write.
var quotaImages = []struct {
	name    string
	project bool
	args    []string
}{
	{"quota-4k", false, []string{"-t", "ext4", "-b", "4096", "-O", "quota"}},
	{"quota-1k", false, []string{"-t", "ext4", "-b", "1024", "-O", "quota"}},
	{"project", true, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "quota,project", "-E", "quotatype=usrquota:grpquota:prjquota"}},
	{"project-nojournal-1k", true, []string{"-t", "ext4", "-b", "1024", "-I", "256", "-O", "quota,project,^has_journal", "-E", "quotatype=usrquota:grpquota:prjquota"}},
}

// quotaUsage reads debugfs' list_quota of type typ: id → {space, inodes}.
func quotaUsage(t testing.TB, img, typ string) map[uint32][2]uint64 {
	t.Helper()
	m := map[uint32][2]uint64{}
	for _, line := range strings.Split(string(debugfsOut(t, img, "list_quota "+typ)), "\n") {
		f := strings.Fields(line)
		if len(f) != 7 {
			continue
		}
		id, err1 := strconv.ParseUint(f[0], 10, 32)
		space, err2 := strconv.ParseUint(f[1], 10, 64)
		inodes, err3 := strconv.ParseUint(f[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		m[uint32(id)] = [2]uint64{space, inodes}
	}
	if len(m) == 0 {
		t.Fatalf("debugfs list_quota %s lists no id", typ)
	}
	return m
}

// fsckQuota requires e2fsck -fn to find img clean, quota files included.
func fsckQuota(t testing.TB, img string) {
	t.Helper()
	out, rc := testtool.Output(t, "e2fsck", "-fn", img)
	text := strings.ReplaceAll(string(out), img, "IMG") // the test's name holds "Quota"
	if rc != 0 || strings.Contains(strings.ToLower(text), "quota") {
		t.Fatalf("e2fsck -fn exit %d:\n%s", rc, out)
	}
}

// spaceOf is what p charges, from debugfs' stat: i_blocks in bytes.
func spaceOf(t testing.TB, img, p string) uint64 {
	t.Helper()
	out := string(debugfsOut(t, img, "stat "+p))
	i := strings.Index(out, "Blockcount: ")
	if i < 0 {
		t.Fatalf("debugfs stat %s: no Blockcount:\n%s", p, out)
	}
	n, err := strconv.ParseUint(strings.Fields(out[i+len("Blockcount: "):])[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n * 512
}

// wantUsage requires id of type typ to use space bytes and inodes inodes.
func wantUsage(t testing.TB, usage map[uint32][2]uint64, typ string, id uint32, space, inodes uint64) {
	t.Helper()
	got, ok := usage[id]
	if !ok {
		t.Errorf("%s quota: no entry for id %d", typ, id)
		return
	}
	if got != [2]uint64{space, inodes} {
		t.Errorf("%s quota id %d: %d bytes, %d inodes; want %d bytes, %d inodes", typ, id, got[0], got[1], space, inodes)
	}
}

// TestQuotaAccounting writes, chowns, grows, links and removes files on
// quota and project-quota filesystems; e2fsck (which recomputes every
// id's usage and compares it with the quota files) must find them clean,
// and debugfs must list the usage each id's files charge, including ids
// new to the files (enough of them to grow the quota files).
func TestQuotaAccounting(t *testing.T) {
	for _, c := range quotaImages {
		t.Run(c.name, func(t *testing.T) {
			img := mkfs(t, "", 32, c.args...)
			if c.project {
				// /p has project 42 and PROJINHERIT: what is made in it
				// inherits the project (as the kernel does).
				testtool.Run(t, "debugfs", "-w", "-R", "mkdir /p", img)
				testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field /p projid 42", img)
				testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field /p flags 0x20080000", img)
				testtool.Output(t, "e2fsck", "-fy", img) // debugfs leaves the quota files behind
				fsckQuota(t, img)
			}
			size0 := quotaFileSize(t, img, layout.UsrQuotaIno)
			w := openW(t, img)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(w.MakePath("/d/sub"))
			must(w.ReplaceFile("/d/f", bytes.Repeat([]byte("f"), 20000)))
			must(w.SetOwnership("/d/f", "1000", "2000"))
			must(w.ReplaceFile("/d/g", bytes.Repeat([]byte("g"), 5000)))
			must(w.SetOwnership("/d/g", "1001", "2000"))
			must(w.AppendFile("/d/f", bytes.Repeat([]byte("F"), 9000)))
			must(w.Symlink(strings.Repeat("t", 200), "/d/slow"))
			const many = 40 // more ids than a quota data block holds (14)
			for i := range many {
				p := fmt.Sprintf("/d/sub/n%d", i)
				must(w.ReplaceFile(p, bytes.Repeat([]byte{byte(i)}, 100*i)))
				must(w.SetOwnership(p, strconv.Itoa(70000+i), strconv.Itoa(90000+i*256)))
			}
			must(w.Remove("/d/g"))
			must(w.Remove("/d/sub/n3"))
			if c.project {
				must(w.MakePath("/p/q"))
				must(w.ReplaceFile("/p/q/x", bytes.Repeat([]byte("x"), 7000)))
				must(w.SetOwnership("/p/q/x", "1000", ""))
			}
			fsckQuota(t, img)

			if size := quotaFileSize(t, img, layout.UsrQuotaIno); size <= size0 {
				t.Errorf("the user quota file did not grow for %d new ids: %d bytes, %d before", many+2, size, size0)
			}
			users, groups := quotaUsage(t, img, "user"), quotaUsage(t, img, "group")
			f, slow := spaceOf(t, img, "/d/f"), spaceOf(t, img, "/d/slow")
			if f < 29000 || slow == 0 {
				t.Fatalf("/d/f charges %d bytes, /d/slow %d", f, slow)
			}
			x := uint64(0)
			if c.project {
				x = spaceOf(t, img, "/p/q/x")
			}
			wantUsage(t, users, "user", 1000, f+x, 1+btou(c.project))
			wantUsage(t, users, "user", 1001, 0, 0)
			wantUsage(t, groups, "group", 2000, f, 1)
			for i := range many {
				if i == 3 {
					wantUsage(t, users, "user", 70000+uint32(i), 0, 0)
					continue
				}
				s := spaceOf(t, img, fmt.Sprintf("/d/sub/n%d", i))
				wantUsage(t, users, "user", 70000+uint32(i), s, 1)
				wantUsage(t, groups, "group", 90000+uint32(i)*256, s, 1)
			}
			if c.project {
				prj := quotaUsage(t, img, "project")
				q := spaceOf(t, img, "/p") + spaceOf(t, img, "/p/q") + x
				wantUsage(t, prj, "project", 42, q, 3)
			}
		})
	}
}

// quotaFileSize is the size debugfs gives quota file inode ino.
func quotaFileSize(t testing.TB, img string, ino int) int64 {
	t.Helper()
	out := string(debugfsOut(t, img, fmt.Sprintf("stat <%d>", ino)))
	i := strings.Index(out, "Size: ")
	if i < 0 {
		t.Fatalf("debugfs stat <%d>: no size:\n%s", ino, out)
	}
	n, err := strconv.ParseInt(strings.Fields(out[i+len("Size: "):])[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func btou(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// quotaFileOffset is the byte offset in img of quota block k of the
// quota file inode ino.
func quotaFileOffset(t testing.TB, img string, ino, k int, bs int64) int64 {
	t.Helper()
	off := int64(k) * layout.QuotaBlockSize
	out := strings.TrimSpace(string(debugfsOut(t, img, fmt.Sprintf("bmap <%d> %d", ino, off/bs))))
	p, err := strconv.ParseInt(out, 10, 64)
	if err != nil || p == 0 {
		t.Fatalf("debugfs bmap <%d>: %q", ino, out)
	}
	return p*bs + off%bs
}

// TestQuotaHostileFiles: a quota file that breaks the format (wrong
// magic, counts past the file, references out of range or in a loop,
// a bad free list) is refused with an error naming it, and nothing is
// written. mke2fs lays the user quota file out as: block 0 header and
// info, blocks 1-4 the tree path of id 0, block 5 its data block.
func TestQuotaHostileFiles(t *testing.T) {
	le := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	for _, c := range []struct {
		name  string
		block int
		at    int
		val   []byte
		want  error
	}{
		{"magic", 0, 0, le(0xd9c01927), vfs.ErrCorrupt},
		{"vfsv0", 0, 4, le(0), ErrUnsupportedFeature},
		{"version", 0, 4, le(7), vfs.ErrCorrupt},
		{"blocks-past-file", 0, layout.QuotaInfoOffset + 12, le(4000), vfs.ErrCorrupt},
		{"blocks-too-few", 0, layout.QuotaInfoOffset + 12, le(1), vfs.ErrCorrupt},
		{"free-entry-out-of-range", 0, layout.QuotaInfoOffset + 20, le(6), vfs.ErrCorrupt},
		{"free-blk-root", 0, layout.QuotaInfoOffset + 16, le(1), vfs.ErrCorrupt},
		{"root-ref-out-of-range", 1, 0, le(99), vfs.ErrCorrupt},
		{"ref-to-root", 2, 0, le(1), vfs.ErrCorrupt},
		{"ref-loop", 3, 0, le(2), vfs.ErrCorrupt},
		{"leaf-not-holding-id", 5, layout.QuotaDataHdrSize, le(77), vfs.ErrCorrupt},
		{"usage-below-zero", 5, layout.QuotaDataHdrSize + 0x18, make([]byte, 8), vfs.ErrCorrupt},
		{"free-entry-head-with-prev", 5, 4, le(3), vfs.ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := mkfs(t, "", 32, "-t", "ext4", "-b", "4096", "-O", "quota")
			patch(t, img, quotaFileOffset(t, img, layout.UsrQuotaIno, c.block, 4096)+int64(c.at), c.val)
			before := fileBytes(t, img)
			w := openW(t, img)
			// moves lost+found's usage from id 0 to a new id 5000
			err := w.SetOwnership("/lost+found", "5000", "")
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, c.want)
			}
			var ce *CorruptError
			if c.want == vfs.ErrCorrupt && (!errors.As(err, &ce) || ce.Ino != layout.UsrQuotaIno && ce.Num != layout.UsrQuotaIno) {
				t.Errorf("the error does not name the user quota inode: %v", err)
			}
			if after := fileBytes(t, img); !bytes.Equal(before, after) {
				t.Fatal("the refused write changed the image")
			}
		})
	}
}

// TestQuotaEAInodeRefused: quota with ea_inode is refused before any
// write (the charges of EA inodes are not tracked).
func TestQuotaEAInodeRefused(t *testing.T) {
	img := mkfs(t, "", 32, "-t", "ext4", "-O", "quota,ea_inode")
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	if _, err := Open(fh, st.Size(), &Options{Writable: true}); !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "ea_inode") {
		t.Fatalf("open quota,ea_inode for writing: %v", err)
	}
}

// TestQuotaFreeBlockReused: a quota file with a block on its free list
// (as the kernel leaves one after dropping entries) gives that block to
// the next new tree block before the file grows. The file is mke2fs's
// with a seventh block appended and put on the free list; a new id whose
// path needs two new tree blocks takes block 6, then appends block 7.
func TestQuotaFreeBlockReused(t *testing.T) {
	img := mkfs(t, "", 32, "-t", "ext4", "-b", "4096", "-O", "quota")
	testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field <3> size 7168", img)
	info := quotaFileOffset(t, img, layout.UsrQuotaIno, 0, 4096) + layout.QuotaInfoOffset
	patch(t, img, info+12, binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 7), 6)) // blocks 7, free block 6
	fsckQuota(t, img)                                                                                     // e2fsck takes the crafted file as valid
	w := openW(t, img)
	if err := w.SetOwnership("/lost+found", "70000", ""); err != nil { // 70000 = 0x11170: new blocks at depths 1 and 2
		t.Fatal(err)
	}
	fsckQuota(t, img)
	if size := quotaFileSize(t, img, layout.UsrQuotaIno); size != 8*layout.QuotaBlockSize {
		t.Errorf("user quota file is %d bytes, want %d (the free block reused, one appended)", size, 8*layout.QuotaBlockSize)
	}
	b := readImg(t, img, info, layout.QuotaInfoSize)
	if qi, _ := layout.DecodeQuotaInfo(b); qi.Blocks != 8 || qi.FreeBlk != 0 {
		t.Errorf("quota info after the insert: %+v, want 8 blocks and no free block", qi)
	}
	wantUsage(t, quotaUsage(t, img, "user"), "user", 70000, spaceOf(t, img, "/lost+found"), 1)
}

// TestQuotaFileInRegularInodeRefused: a user or group quota file in an
// inode past the reserved ones (which e2fsck charges to its owner, so its
// growth would be charged too) is refused, and nothing is written.
func TestQuotaFileInRegularInodeRefused(t *testing.T) {
	for _, typ := range []string{"user", "group"} {
		t.Run(typ, func(t *testing.T) {
			img := mkfs(t, "", 32, "-t", "ext4", "-b", "4096", "-O", "quota")
			editSuper(t, img, func(sb *layout.Superblock) {
				if typ == "user" {
					sb.UsrQuotaInum = 11
				} else {
					sb.GrpQuotaInum = 11
				}
			})
			before := fileBytes(t, img)
			w := openW(t, img)
			if err := w.MakePath("/d"); !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "inode 11") {
				t.Fatalf("got %v, want a refusal naming inode 11", err)
			}
			if !bytes.Equal(before, fileBytes(t, img)) {
				t.Fatal("the refused write changed the image")
			}
		})
	}
}

// TestRenameIntoProjectRefused: moving a file of another project into a
// PROJINHERIT directory is refused, as the kernel refuses it (EXDEV),
// before any write; moves inside the project's tree, and out of it, are
// made.
func TestRenameIntoProjectRefused(t *testing.T) {
	img := mkfs(t, "", 32, quotaImages[2].args...)
	testtool.Run(t, "debugfs", "-w", "-R", "mkdir /p", img)
	testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field /p projid 42", img)
	testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field /p flags 0x20080000", img)
	testtool.Output(t, "e2fsck", "-fy", img) // debugfs leaves the quota files behind
	w := openW(t, img)
	for _, err := range []error{w.ReplaceFile("/f", []byte("outside\n")), w.MakePath("/p/q"), w.ReplaceFile("/p/q/in", []byte("inside\n"))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	before := imageSum(t, img)
	for _, to := range []string{"/p/f", "/p/q/f"} {
		err := w.Rename("/f", to)
		if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "project 42") {
			t.Fatalf("rename /f %s: %v, want a refusal naming project 42", to, err)
		}
	}
	if imageSum(t, img) != before {
		t.Fatal("a refused rename changed the image")
	}
	if err := w.Rename("/p/q/in", "/p/in"); err != nil {
		t.Fatalf("a move inside the project's tree: %v", err)
	}
	if err := w.Rename("/p/in", "/out"); err != nil {
		t.Fatalf("a move out of the project's tree: %v", err)
	}
	fsckQuota(t, img)
}
