package ext

import (
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// copyFile copies src to dst, keeping holes.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
}

// resize2fs grows img to its file size with e2fsprogs' resize2fs, lazy
// inode table initialisation forced so that its result does not depend on
// the host kernel.
func resize2fs(t testing.TB, img string) {
	t.Helper()
	cmd := exec.Command(testtool.Need(t, "resize2fs")[0], img)
	cmd.Env = append(os.Environ(), "RESIZE2FS_FORCE_LAZY_ITABLE_INIT=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("resize2fs: %v\n%s", err, out)
	}
}

// growImage grows img (already extended to its new size) with Grow.
func growImage(t testing.TB, img string) GrowReport {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	f, err := Open(fh, st.Size(), &Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.Grow(st.Size())
	if err != nil {
		t.Fatalf("Grow: %v", err)
	}
	if sb := f.sbCopy(); sb.BlocksCount() != rep.NewBlocks {
		t.Fatalf("after Grow the FS reports %d blocks, the report %d", sb.BlocksCount(), rep.NewBlocks)
	}
	return rep
}

var (
	csumRE   = regexp.MustCompile(`(?i)\s*(csum|checksum) 0x[0-9a-f]+,?`)
	headerRE = regexp.MustCompile(`^(Block count|Inode count|Free blocks|Free inodes|Reserved block count|Reserved GDT blocks|Blocks per group|Inodes per group|Flex block group size|Filesystem features|Overhead clusters|Backup block groups):`)
)

// layoutOf is dumpe2fs's account of img: the superblock counts and every
// group's placement, flags and free counts, checksums and times left out.
func layoutOf(t testing.TB, img string) (header, groups []string) {
	t.Helper()
	out := string(testtool.Run(t, "dumpe2fs", img))
	inGroups := false
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Group 0:") {
			inGroups = true
		}
		switch {
		case !inGroups && headerRE.MatchString(l):
			header = append(header, l)
		case inGroups && strings.TrimSpace(l) != "":
			groups = append(groups, strings.TrimSpace(csumRE.ReplaceAllString(l, "")))
		}
	}
	return header, groups
}

// compareWithResize2fs makes a filesystem of oldMB with mke2fs args, grows
// a copy of it to newMB with resize2fs and another with Grow, and requires
// e2fsck to find the latter clean and dumpe2fs to show the two alike.
func compareWithResize2fs(t *testing.T, oldMB, newMB int64, args ...string) GrowReport {
	t.Helper()
	src := srcTree(t, 50)
	img := mkfs(t, src, int(oldMB), args...)
	if err := os.Truncate(img, newMB<<20); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(t.TempDir(), "ref.img")
	copyFile(t, img, ref)
	resize2fs(t, ref)
	before := debugfsOut(t, img, "ls -l -p /")
	bigBefore := debugfsCat(t, img, "/big.bin")
	rep := growImage(t, img)
	fsck(t, img)
	wh, wg := layoutOf(t, ref)
	gh, gg := layoutOf(t, img)
	if len(wh) < 8 || len(wg) < 2*int(rep.NewGroups) {
		t.Fatalf("dumpe2fs gave %d header and %d group lines for %d groups", len(wh), len(wg), rep.NewGroups)
	}
	if strings.Join(wh, "\n") != strings.Join(gh, "\n") {
		t.Errorf("dumpe2fs -h differs:\nresize2fs:\n%s\nGrow:\n%s", strings.Join(wh, "\n"), strings.Join(gh, "\n"))
	}
	if len(wg) != len(gg) {
		t.Errorf("dumpe2fs shows %d group lines after resize2fs, %d after Grow", len(wg), len(gg))
	}
	for i := 0; i < min(len(wg), len(gg)); i++ {
		if wg[i] != gg[i] {
			t.Errorf("group layout differs at line %d:\nresize2fs: %s\nGrow:      %s", i, wg[i], gg[i])
			break
		}
	}
	if after := debugfsOut(t, img, "ls -l -p /"); string(after) != string(before) {
		t.Errorf("root directory changed:\n%s\n%s", before, after)
	}
	if string(debugfsCat(t, img, "/big.bin")) != string(bigBefore) {
		t.Error("/big.bin changed")
	}
	wantCat(t, img, "/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"))
	return rep
}

func TestGrowExt4DefaultsLikeResize2fs(t *testing.T) {
	rep := compareWithResize2fs(t, 256, 1024, "-t", "ext4")
	if rep.NewBlocks*uint64(rep.BlockSize) != 1<<30 || rep.NewGroups <= rep.OldGroups {
		t.Errorf("report %+v", rep)
	}
}

func TestGrowExt4FourKiBBlocksLikeResize2fs(t *testing.T) {
	// mkfs.ext4's defaults for a disk image: 4 KiB blocks, flex_bg,
	// resize_inode, sparse_super, metadata_csum, 64bit.
	compareWithResize2fs(t, 600, 4000, "-t", "ext4", "-T", "default", "-b", "4096", "-O", "64bit,metadata_csum")
}

func TestGrowExt4WholeGroupsLikeResize2fs(t *testing.T) {
	// 2 GiB of 4 KiB blocks is 16 whole groups, one whole flex group:
	// the old last group keeps its length and resize2fs flags it
	// BLOCK_UNINIT all the same; mke2fs -d records the overhead.
	compareWithResize2fs(t, 2048, 9000, "-t", "ext4", "-T", "default", "-b", "4096")
}

func TestGrowExt4FourKiBPartialFlexGroupLikeResize2fs(t *testing.T) {
	// 19 groups: a flex group and three groups of the next, grown into it.
	compareWithResize2fs(t, 2400, 9000, "-t", "ext4", "-T", "default", "-b", "4096")
}

func TestGrowExt4MetaBGLikeResize2fs(t *testing.T) {
	// meta_bg without resize_inode: 16 descriptors a block with 1 KiB
	// blocks, so the growth fills the last meta group and adds new ones.
	compareWithResize2fs(t, 300, 1500, "-t", "ext4", "-O", "meta_bg,^resize_inode")
}

func TestGrowExt4MetaBGFourKiBLikeResize2fs(t *testing.T) {
	compareWithResize2fs(t, 900, 9000, "-t", "ext4", "-T", "default", "-b", "4096", "-O", "meta_bg,^resize_inode")
}

func TestGrowExt4SparseSuper2LikeResize2fs(t *testing.T) {
	// The second backup moves from the old last group to the new one,
	// and the old one's blocks are freed.
	compareWithResize2fs(t, 300, 1024, "-t", "ext4", "-O", "sparse_super2")
}

func TestGrowExt4SparseSuper2FourKiBLikeResize2fs(t *testing.T) {
	compareWithResize2fs(t, 700, 5000, "-t", "ext4", "-T", "default", "-b", "4096", "-O", "sparse_super2")
}

func TestGrowExt4PartialFlexGroupLikeResize2fs(t *testing.T) {
	// 3 groups of 32768 4 KiB blocks plus a partial one, grown across
	// several flex groups.
	compareWithResize2fs(t, 400, 3000, "-t", "ext4")
}

func TestGrowExt4OneKiBBlocksLikeResize2fs(t *testing.T) {
	compareWithResize2fs(t, 20, 300, "-t", "ext4", "-b", "1024")
}

func TestGrowExt2LikeResize2fs(t *testing.T) {
	compareWithResize2fs(t, 20, 100, "-t", "ext2")
}

func TestGrowExt3LikeResize2fs(t *testing.T) {
	compareWithResize2fs(t, 40, 200, "-t", "ext3")
}

// TestGrowRefusesFreeBackupArea: a damaged filesystem whose bitmap marks
// a backup descriptor block free (a file could own it) is refused before
// anything is written; the growth would write the new descriptors there.
func TestGrowRefusesFreeBackupArea(t *testing.T) {
	img := mkfs(t, "", 64, "-t", "ext2", "-b", "1024")
	out := string(testtool.Run(t, "dumpe2fs", img))
	m := regexp.MustCompile(`Group 1: \(Blocks (\d+)-\d+\)[^\n]*\n[^\n]*superblock[^\n]*\n[^\n]*\n\s*Block bitmap at (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dumpe2fs: no group 1 with a backup:\n%.2000s", out)
	}
	bb, _ := strconv.ParseInt(m[2], 10, 64)
	b := readImg(t, img, bb*1024, 1)
	patch(t, img, bb*1024, []byte{b[0] &^ 0x02}) // group 1's first descriptor copy
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	before := fileBytesSum(t, img)
	fh, _ := os.OpenFile(img, os.O_RDWR, 0)
	defer fh.Close()
	f, err := Open(fh, 256<<20, &Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Grow(256 << 20); err == nil || !strings.Contains(err.Error(), "marked free") {
		t.Fatalf("growing over a free backup area: %v", err)
	}
	if fileBytesSum(t, img) != before {
		t.Fatal("a refused growth wrote")
	}
}

func TestGrowRefusals(t *testing.T) {
	t.Run("shrink", func(t *testing.T) {
		img := mkfs(t, "", 64, "-t", "ext4")
		fh, _ := os.OpenFile(img, os.O_RDWR, 0)
		defer fh.Close()
		f, err := Open(fh, 64<<20, &Options{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Grow(32 << 20); !errors.Is(err, ErrCannotGrow) {
			t.Fatalf("shrinking: %v", err)
		}
	})
	t.Run("no reserved GDT blocks", func(t *testing.T) {
		img := mkfs(t, "", 64, "-t", "ext4", "-O", "^resize_inode", "-b", "1024")
		os.Truncate(img, 2<<30)
		before := fileBytesSum(t, img)
		fh, _ := os.OpenFile(img, os.O_RDWR, 0)
		defer fh.Close()
		f, err := Open(fh, 2<<30, &Options{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Grow(2 << 30)
		if !errors.Is(err, ErrCannotGrow) || !strings.Contains(err.Error(), "reserved GDT") {
			t.Fatalf("growth past the descriptor table: %v", err)
		}
		if fileBytesSum(t, img) != before {
			t.Fatal("a refused growth wrote")
		}
	})
	t.Run("errors", func(t *testing.T) {
		img := mkfs(t, "", 64, "-t", "ext4")
		editSuper(t, img, func(sb *layout.Superblock) { sb.State |= 2 })
		os.Truncate(img, 128<<20)
		fh, _ := os.OpenFile(img, os.O_RDWR, 0)
		defer fh.Close()
		f, err := Open(fh, 128<<20, &Options{Writable: true})
		if err == nil {
			_, err = f.Grow(128 << 20)
		}
		if !errors.Is(err, ErrUnclean) {
			t.Fatalf("growing a filesystem with errors: %v", err)
		}
	})
}

// fileBytesSum is the SHA-256 of img's bytes.
func fileBytesSum(t testing.TB, img string) [32]byte {
	t.Helper()
	return sha256.Sum256(fileBytes(t, img))
}

// BenchmarkGrow2GiBTo1TiB grows a 2 GiB ext4 image (mkfs.ext4 defaults)
// to 1 TiB in process, a fresh sparse copy per run (outside the timing).
func BenchmarkGrow2GiBTo1TiB(b *testing.B) {
	img := mkfs(b, "", 2048, "-t", "ext4", "-T", "default")
	dir := b.TempDir()
	for b.Loop() {
		b.StopTimer()
		cp := filepath.Join(dir, "t.img")
		os.Remove(cp)
		copyFile(b, img, cp)
		if err := os.Truncate(cp, 1<<40); err != nil {
			b.Fatal(err)
		}
		fh, err := os.OpenFile(cp, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		f, err := Open(fh, 1<<40, &Options{Writable: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Grow(1 << 40); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fh.Close()
		b.StartTimer()
	}
}
