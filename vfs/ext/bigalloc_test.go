package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
)

// bigallocKinds are the bigalloc filesystems the write tests cover: 4 KiB
// blocks in 16 KiB and 64 KiB clusters, 1 KiB blocks in 16 KiB clusters,
// without a journal and with the older checksums.
var bigallocKinds = []struct {
	name string
	mb   int
	args []string
}{
	{"4k-c16k", 128, []string{"-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "16384"}},
	{"4k-c64k", 256, []string{"-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "65536"}},
	{"1k-c16k", 64, []string{"-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384"}},
	{"4k-c16k-nojournal-gdtcsum", 128, []string{"-t", "ext4", "-b", "4096", "-O", "bigalloc,^has_journal,^metadata_csum,uninit_bg", "-C", "16384"}},
}

// pattern is n bytes of reproducible content.
func pattern(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestWriteBigalloc writes files of every size around the block and the
// cluster (sub-cluster, multi-cluster, sparse inside a cluster and across
// clusters, fragmented into an extent tree), replaces, truncates and
// removes them, sets an xattr block, makes a slow symlink and grows a
// directory into an htree, on each bigalloc filesystem: e2fsck -fn finds
// each stage clean (cluster bitmaps, free cluster counts, i_blocks in
// clusters, no cluster shared) and debugfs reads every file back.
func TestWriteBigalloc(t *testing.T) {
	testtool.Need(t, "e2fsck")
	for _, k := range bigallocKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, "", k.mb, append([]string{"-E", "lazy_itable_init=1"}, k.args...)...)
			f := openNoSync(t, img)
			bs, cs := int(f.geo.blockSize), int(f.geo.clusterSize)
			if cs <= bs {
				t.Fatalf("cluster %d, block %d: not a bigalloc filesystem", cs, bs)
			}
			must := func(what string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
			must("mkdir", f.MakePath("/data"))
			want := map[string][]byte{}
			sizes := []int{0, 1, 100, bs - 1, bs, bs + 1, cs - 1, cs, cs + 1, 3*cs + 5, 1<<20 + 7, 5 << 20}
			for i, n := range sizes {
				p := fmt.Sprintf("/data/f%d", i)
				want[p] = pattern(n, int64(i))
				must("write "+p, f.ReplaceFile(p, want[p]))
			}
			// Sparse: a hole inside the first cluster, then a hole of
			// whole clusters, then a block in the middle of a cluster.
			sp := []byte("head")
			must("sparse", f.ReplaceFile("/data/sparse", sp))
			for _, size := range []int{2*bs + 3, 5*cs + bs, 9*cs + 3*bs/2} {
				must("sparse grow", f.Truncate("/data/sparse", int64(size)))
				sp = append(sp, make([]byte, size-len(sp))...)
				must("sparse append", f.AppendFile("/data/sparse", []byte("tail")))
				sp = append(sp, "tail"...)
			}
			want["/data/sparse"] = sp
			// Fragmented: one block every other cluster, enough extents
			// for tree nodes below the root (each takes a cluster).
			fr := []byte{}
			must("frag", f.ReplaceFile("/data/frag", nil))
			for i := 0; i < 40; i++ {
				size := (2*i + 1) * cs
				must("frag grow", f.Truncate("/data/frag", int64(size)))
				fr = append(fr, make([]byte, size-len(fr))...)
				must("frag append", f.AppendFile("/data/frag", []byte{byte(i), 1, 2}))
				fr = append(fr, byte(i), 1, 2)
			}
			want["/data/frag"] = fr
			if ex := debugfsOut(t, img, "ex /data/frag"); bytes.Contains(ex, []byte(" 0/ 0 ")) {
				t.Fatalf("/data/frag has no extent tree node below its root:\n%.300s", ex)
			}
			fsck(t, img)
			checkContents(t, f, img, want)

			// Replace big with small, small with big; truncate into the
			// middle of a cluster, to a cluster boundary, to zero;
			// remove.
			p5, p1 := fmt.Sprintf("/data/f%d", len(sizes)-1), "/data/f1"
			want[p5] = pattern(cs/2, 99)
			must("replace big", f.ReplaceFile(p5, want[p5]))
			want[p1] = pattern(2*cs+bs, 98)
			must("replace small", f.ReplaceFile(p1, want[p1]))
			p10 := fmt.Sprintf("/data/f%d", len(sizes)-2)
			for _, size := range []int{3*cs + bs + 17, 3 * cs, cs / 2, 0} {
				must("truncate", f.Truncate(p10, int64(size)))
				want[p10] = want[p10][:size]
				fsck(t, img)
			}
			must("truncate sparse", f.Truncate("/data/sparse", int64(5*cs+bs/2)))
			want["/data/sparse"] = want["/data/sparse"][:5*cs+bs/2]
			must("truncate frag", f.Truncate("/data/frag", int64(15*cs+bs)))
			want["/data/frag"] = want["/data/frag"][:15*cs+bs]
			must("remove", f.Remove("/data/f9"))
			delete(want, "/data/f9")

			// An xattr block, a slow symlink, a directory grown into an
			// htree.
			must("xattr", f.SetXattr("/data/f2", "user.big", bytes.Repeat([]byte("x"), bs/2)))
			target := "/" + strings.Repeat("t", 200)
			must("symlink", f.Symlink(target, "/data/link"))
			for i := 0; i < 150; i++ {
				p := fmt.Sprintf("/data/dir/entry-with-a-long-name-%04d", i)
				if i == 0 {
					must("mkdir", f.MakePath("/data/dir"))
				}
				want[p] = []byte(p)
				must("dir file", f.ReplaceFile(p, want[p]))
			}
			fsck(t, img)
			checkContents(t, f, img, want)
			if got := debugfsOut(t, img, "stat /data/dir"); !bytes.Contains(got, []byte("Flags: 0x81000")) && !bytes.Contains(got, []byte("Flags: 0x1000")) {
				t.Fatalf("/data/dir did not become an htree:\n%s", got)
			}
			if s := debugfsStat(t, img, "/data/link"); s.typ != "symlink" {
				t.Fatalf("/data/link: %+v", s)
			}
			if got, err := mustOpen(t, img).Readlink("/data/link"); err != nil || got != target {
				t.Fatalf("readlink: %q %v", got, err)
			}

			// Remove everything: every cluster comes back.
			free0 := mustOpen(t, mkfs(t, "", k.mb, append([]string{"-E", "lazy_itable_init=1"}, k.args...)...)).Info().FreeBlocks
			for p := range want {
				must("remove "+p, f.Remove(p))
			}
			must("remove link", f.Remove("/data/link"))
			must("remove dir", f.Remove("/data/dir"))
			must("remove data", f.Remove("/data"))
			fsck(t, img)
			if got := mustOpen(t, img).Info().FreeBlocks; got != free0 {
				t.Fatalf("after removing everything %d blocks are free, a fresh filesystem has %d", got, free0)
			}
		})
	}
}

// openNoSync opens img for writing through a file without Sync: the
// engine's barriers cost nothing here (no crash is simulated), and the
// tests make hundreds of transactions.
func openNoSync(t testing.TB, img string) wfs {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	f, err := Open(struct {
		io.ReaderAt
		io.WriterAt
	}{fh, fh}, st.Size(), &Options{Writable: true})
	if err != nil {
		t.Fatalf("open %s for writing: %v", img, err)
	}
	return wfs{f}
}

// checkContents requires the engine and debugfs to read want.
func checkContents(t *testing.T, f wfs, img string, want map[string][]byte) {
	t.Helper()
	r := mustOpen(t, img)
	for p, w := range want {
		got, err := r.ReadFile(p)
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("engine reads %s: %d bytes (%v), want %d", p, len(got), err, len(w))
		}
		if len(w) <= 1<<20 {
			wantCat(t, img, p, w)
		}
	}
}

// TestWriteBigallocFull: on a nearly full bigalloc filesystem a write
// that needs one more cluster than is free fails with vfs.ErrNoSpace and
// leaves the image byte for byte unchanged; a write of exactly the free
// clusters (its last one holding one byte) lands, leaving no block free.
func TestWriteBigallocFull(t *testing.T) {
	testtool.Need(t, "e2fsck")
	img := mkfs(t, "", 32, "-t", "ext4", "-b", "1024", "-O", "bigalloc,^has_journal,^resize_inode", "-C", "16384", "-m", "0")
	f := openNoSync(t, img)
	r := f.ratio()
	// Fill with one-cluster files until a few clusters are left.
	for i := 0; f.Info().FreeBlocks > 3*r; i++ {
		if err := f.ReplaceFile(fmt.Sprintf("/fill%d", i), []byte{byte(i)}); err != nil {
			t.Fatalf("fill %d (%d blocks free): %v", i, f.Info().FreeBlocks, err)
		}
	}
	fsck(t, img)
	free := f.Info().FreeBlocks / r
	bs := int(f.geo.blockSize)
	data := make([]byte, 0)
	for i := uint64(0); i <= free; i++ {
		data = append(data, make([]byte, int(r)*bs)...)
	}
	before := fileBytes(t, img)
	err := f.ReplaceFile("/toomuch", data)
	if !errors.Is(err, vfs.ErrNoSpace) {
		t.Fatalf("writing %d clusters with %d free: %v, want ErrNoSpace", free+1, free, err)
	}
	if !bytes.Equal(before, fileBytes(t, img)) {
		t.Fatal("the refused write changed the image")
	}
	fsck(t, img)
	fits := pattern(int(free-1)*int(r)*bs+1, 7) // free clusters exactly, the last holding one byte
	if err := f.ReplaceFile("/fits", fits); err != nil {
		t.Fatalf("writing %d clusters with %d free: %v", free, free, err)
	}
	fsck(t, img)
	wantCat(t, img, "/fits", fits)
	if n := f.Info().FreeBlocks; n != 0 {
		t.Fatalf("%d blocks free after filling every cluster", n)
	}
	before = fileBytes(t, img)
	if err := f.ReplaceFile("/one-more", []byte("x")); !errors.Is(err, vfs.ErrNoSpace) {
		t.Fatalf("one more file on a full filesystem: %v, want ErrNoSpace", err)
	}
	if !bytes.Equal(before, fileBytes(t, img)) {
		t.Fatal("the refused write changed the image")
	}
}

// TestWriteBigallocBlockMappedRefused: a block-mapped inode on a bigalloc
// filesystem (bigalloc needs extents; here its EXTENTS flag was cleared)
// is refused, naming the inode, with nothing written.
func TestWriteBigallocBlockMappedRefused(t *testing.T) {
	img := mkfs(t, "", 64, "-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "16384")
	f := openW(t, img)
	if err := f.ReplaceFile("/f", nil); err != nil {
		t.Fatal(err)
	}
	testtool.Run(t, "debugfs", "-w", "-R", "set_inode_field /f flags 0", img)
	f = openW(t, img)
	before := fileBytes(t, img)
	err := f.AppendFile("/f", []byte("data"))
	if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "inode 12") {
		t.Fatalf("append to a block-mapped inode on bigalloc: %v", err)
	}
	if !bytes.Equal(before, fileBytes(t, img)) {
		t.Fatal("the refused write changed the image")
	}
}

// TestWriteBigallocMisalignedRefused: a file whose extent maps logical
// block 0 to the second block of a cluster breaks the cluster rule; a
// write that would fill the rest of that logical cluster is refused as
// corruption naming the inode and the blocks, with nothing written.
func TestWriteBigallocMisalignedRefused(t *testing.T) {
	img := mkfs(t, "", 64, "-t", "ext4", "-b", "4096", "-O", "bigalloc,^metadata_csum", "-C", "16384")
	f := openNoSync(t, img)
	if err := f.ReplaceFile("/f", pattern(4096, 1)); err != nil {
		t.Fatal(err)
	}
	// i_block: extent header (12 bytes), then the first extent: ee_block,
	// ee_len, ee_start_hi, ee_start_lo at +8.
	off := inodeOffset(t, img, "/f", 4096) + 0x28 + 12 + 8
	raw := fileBytes(t, img)
	start := uint32(raw[off]) | uint32(raw[off+1])<<8 | uint32(raw[off+2])<<16 | uint32(raw[off+3])<<24
	if start%4 != 0 {
		t.Fatalf("the file's first block %d is not at the start of its cluster", start)
	}
	patch(t, img, off, []byte{byte(start + 1), byte((start + 1) >> 8), byte((start + 1) >> 16), byte((start + 1) >> 24)})
	f = openNoSync(t, img)
	before := fileBytes(t, img)
	err := f.AppendFile("/f", []byte("more"))
	if !errors.Is(err, vfs.ErrCorrupt) || !strings.Contains(err.Error(), "another offset of its") || !strings.Contains(err.Error(), "inode 12") {
		t.Fatalf("append to a file breaking the cluster rule: %v", err)
	}
	if !bytes.Equal(before, fileBytes(t, img)) {
		t.Fatal("the refused write changed the image")
	}
}

// TestWriteBigallocMetadataClusterRefused: a file whose extent maps
// logical block 0 into the cluster of the inode bitmap (a damaged or
// hostile pointer; mke2fs leaves the bitmap at the cluster's last block)
// gets no block of that cluster: filling the rest of the logical cluster
// is refused, naming the bitmap, with nothing written.
func TestWriteBigallocMetadataClusterRefused(t *testing.T) {
	img := mkfs(t, "", 64, "-t", "ext4", "-b", "4096", "-O", "bigalloc,^metadata_csum", "-C", "16384")
	f := openNoSync(t, img)
	if err := f.ReplaceFile("/f", pattern(4096, 1)); err != nil {
		t.Fatal(err)
	}
	d, err := f.groupDesc(0)
	if err != nil {
		t.Fatal(err)
	}
	ib := d.InodeBitmap()
	bb := uint32(f.clusterStart(ib))
	if uint64(bb) == ib || uint64(bb)+1 == ib {
		t.Fatalf("inode bitmap at block %d: logical block 1 would land on it, not beside it", ib)
	}
	off := inodeOffset(t, img, "/f", 4096) + 0x28 + 12 + 8
	patch(t, img, off, []byte{byte(bb), byte(bb >> 8), byte(bb >> 16), byte(bb >> 24)})
	f = openNoSync(t, img)
	before := fileBytes(t, img)
	err = f.AppendFile("/f", []byte("more"))
	if !errors.Is(err, ErrBadTarget) || !strings.Contains(err.Error(), "inode bitmap") {
		t.Fatalf("append into the inode bitmap's cluster: %v", err)
	}
	if !bytes.Equal(before, fileBytes(t, img)) {
		t.Fatal("the refused write changed the image")
	}
}
