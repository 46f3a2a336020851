package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// smallSrc is a tiny tree for the tests that damage an image.
func smallSrc(t *testing.T) string { return srcTree(t, 0) }

func TestNotExt(t *testing.T) {
	img := mkfs(t, "", 8, "-t", "ext4", "-b", "4096")
	patch(t, img, 0x438, []byte{0, 0})
	if _, err := openImage(t, img, nil); !errors.Is(err, ErrNotExt) {
		t.Fatalf("want ErrNotExt, got %v", err)
	}
}

func TestUnknownIncompat(t *testing.T) {
	img := mkfs(t, "", 8, "-t", "ext4", "-b", "4096")
	editSuper(t, img, func(sb *layout.Superblock) { sb.FeatureIncompat |= 1 << 30 })
	_, err := openImage(t, img, nil)
	if !errors.Is(err, ErrUnsupportedFeature) || !errors.Is(err, vfs.ErrUnsupported) || !strings.Contains(err.Error(), "FEATURE_I30") {
		t.Fatalf("want ErrUnsupportedFeature naming FEATURE_I30, got %v", err)
	}
}

func TestUnknownROCompatOpens(t *testing.T) {
	img := mkfs(t, "", 8, "-t", "ext4", "-b", "4096")
	editSuper(t, img, func(sb *layout.Superblock) { sb.FeatureROCompat |= 1 << 29 })
	f := mustOpen(t, img)
	if f.Info().UnknownROCompat != 1<<29 {
		t.Fatalf("unknown ro_compat not recorded: %#x", f.Info().UnknownROCompat)
	}
}

func TestSuperblockChecksum(t *testing.T) {
	img := mkfs(t, "", 8, "-t", "ext4", "-b", "4096")
	patch(t, img, 1024+0x78, []byte("X")) // the label, covered by the checksum
	_, err := openImage(t, img, nil)
	var ce *CorruptError
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, vfs.ErrCorrupt) || !errors.As(err, &ce) || ce.What != "superblock" {
		t.Fatalf("want a superblock checksum error, got %v", err)
	}
}

func TestInodeChecksum(t *testing.T) {
	img := mkfs(t, smallSrc(t), 16, "-t", "ext4", "-b", "4096")
	off := inodeOffset(t, img, "/etc/passwd", 4096)
	b := readImg(t, img, off+0x10, 1)
	patch(t, img, off+0x10, []byte{b[0] ^ 0xFF}) // mtime
	f := mustOpen(t, img)
	_, err := f.ReadFile("/etc/passwd")
	var ce *CorruptError
	if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) || ce.What != "inode" || ce.Num < 11 {
		t.Fatalf("want an inode checksum error, got %v", err)
	}
	if _, err := f.ReadFile("/etc/hostname"); err != nil {
		t.Fatalf("an undamaged inode must still read: %v", err)
	}
}

func TestGroupDescChecksum(t *testing.T) {
	for _, feat := range []string{"metadata_csum", "^metadata_csum,uninit_bg"} {
		img := mkfs(t, "", 16, "-t", "ext4", "-b", "4096", "-O", feat)
		// Group 0's descriptor: block 1 of a 4 KiB filesystem; flip its free count.
		b := readImg(t, img, 4096+0xC, 1)
		patch(t, img, 4096+0xC, []byte{b[0] ^ 1})
		f := mustOpen(t, img) // Open reads no descriptor
		_, err := f.Stat("/")
		var ce *CorruptError
		if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) || ce.What != "group descriptor" || ce.Num != 0 {
			t.Fatalf("%s: want a group descriptor 0 checksum error, got %v", feat, err)
		}
	}
}

func TestDirBlockChecksum(t *testing.T) {
	img := mkfs(t, smallSrc(t), 16, "-t", "ext4", "-b", "4096")
	blk := firstBlock(t, img, "/etc")
	patch(t, img, blk*4096+40, []byte("Z"))
	f := mustOpen(t, img)
	_, err := f.ReadDir("/etc")
	var ce *CorruptError
	if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) || ce.What != "directory block" || ce.Num != uint64(blk) {
		t.Fatalf("want a directory block %d checksum error, got %v", blk, err)
	}
}

func TestRecLenZero(t *testing.T) {
	img := mkfs(t, smallSrc(t), 16, "-t", "ext4", "-b", "4096", "-O", "^metadata_csum")
	blk := firstBlock(t, img, "/etc")
	patch(t, img, blk*4096+4, []byte{0, 0}) // rec_len of "."
	f := mustOpen(t, img)
	_, err := f.ReadDir("/etc")
	var ce *CorruptError
	if !errors.Is(err, vfs.ErrCorrupt) || errors.Is(err, ErrChecksum) || !errors.As(err, &ce) || ce.What != "directory block" {
		t.Fatalf("want a corrupt directory block, got %v", err)
	}
	if _, err := f.ReadFile("/etc/passwd"); !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("lookup through the damaged block: %v", err)
	}
}

func TestExtentDepth(t *testing.T) {
	img := mkfs(t, smallSrc(t), 16, "-t", "ext4", "-b", "4096", "-O", "^metadata_csum")
	off := inodeOffset(t, img, "/big.bin", 4096)
	var d [2]byte
	binary.LittleEndian.PutUint16(d[:], 6)
	patch(t, img, off+0x28+6, d[:]) // eh_depth of the in-inode root
	f := mustOpen(t, img)
	_, err := f.ReadFile("/big.bin")
	var ce *CorruptError
	if !errors.Is(err, vfs.ErrCorrupt) || !errors.As(err, &ce) || ce.What != "extent node" {
		t.Fatalf("want a corrupt extent node, got %v", err)
	}
}

func TestExtentOutsideFS(t *testing.T) {
	img := mkfs(t, smallSrc(t), 16, "-t", "ext4", "-b", "4096", "-O", "^metadata_csum")
	off := inodeOffset(t, img, "/big.bin", 4096)
	patch(t, img, off+0x28+12+8, []byte{0xFF, 0xFF, 0xFF, 0x7F}) // ee_start_lo of extent 0
	f := mustOpen(t, img)
	if _, err := f.ReadFile("/big.bin"); !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("want ErrCorrupt, got %v", err)
	}
}

// TestNeedsRecovery: a journal needing recovery is replayed in memory at a
// read-only open (here an empty log under a stale flag); one that cannot
// be replayed (an external journal) is refused, or read unreplayed with a
// warning under AllowDirtyJournal. Nothing is written either way.
func TestNeedsRecovery(t *testing.T) {
	img := mkfs(t, smallSrc(t), 16, "-t", "ext4", "-b", "4096")
	editSuper(t, img, func(sb *layout.Superblock) { sb.FeatureIncompat |= layout.IncompatRecover })
	orig := readImg(t, img, 0, 1<<20)
	var warned string
	f, err := openImage(t, img, &Options{Warn: func(m string) { warned = m }})
	if err != nil || !strings.Contains(warned, "in memory") {
		t.Fatalf("open: %v, warning %q", err, warned)
	}
	if !f.Info().Journal.NeedsRecovery || f.sbCopy().FeatureIncompat.Has(layout.IncompatRecover) {
		t.Fatal("Info must report the image's dirty journal, the view must be replayed")
	}
	if _, err := f.ReadFile("/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	editSuper(t, img, func(sb *layout.Superblock) { sb.JournalUUID[0] = 1 })
	if _, err := openImage(t, img, nil); !errors.Is(err, ErrNeedsRecovery) || !strings.Contains(err.Error(), "external") {
		t.Fatalf("external journal: want ErrNeedsRecovery naming it, got %v", err)
	}
	f, err = openImage(t, img, &Options{AllowDirtyJournal: true, Warn: func(m string) { warned = m }})
	if err != nil || !strings.Contains(warned, "not replayed") {
		t.Fatalf("allowed open: %v, warning %q", err, warned)
	}
	if _, err := f.ReadFile("/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	if now := readImg(t, img, 0, 1<<20); !bytes.Equal(now[4096:], orig[4096:]) {
		t.Fatal("a read-only open wrote to the image")
	}
}

func TestSymlinkLoop(t *testing.T) {
	img := mkfs(t, smallSrc(t), 16, "-t", "ext4", "-b", "4096")
	f := mustOpen(t, img)
	for _, p := range []string{"/links/loop1", "/links/loop2/x"} {
		if _, err := f.Stat(p); !errors.Is(err, vfs.ErrTooManyLinks) {
			t.Errorf("stat %s: %v", p, err)
		}
	}
	fi, err := f.Lstat("/links/loop1")
	if err != nil || fi.Target != "loop2" {
		t.Fatalf("lstat loop1: %+v %v", fi, err)
	}
	if _, err := f.Stat("/links/dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat dangling: %v", err)
	}
}

func TestBadGeometry(t *testing.T) {
	for name, edit := range map[string]func(*layout.Superblock){
		"blocksize":   func(sb *layout.Superblock) { sb.LogBlockSize = 7 },
		"blockcount":  func(sb *layout.Superblock) { sb.BlocksCountLo *= 4 },
		"ipg":         func(sb *layout.Superblock) { sb.InodesPerGroup = 0 },
		"inodecount":  func(sb *layout.Superblock) { sb.InodesCount++ },
		"inodesize":   func(sb *layout.Superblock) { sb.InodeSize = 200 },
		"descsize":    func(sb *layout.Superblock) { sb.DescSize = 48 },
		"firstdata":   func(sb *layout.Superblock) { sb.FirstDataBlock = 1 },
		"bpg":         func(sb *layout.Superblock) { sb.BlocksPerGroup = 1 << 20 },
		"firstino":    func(sb *layout.Superblock) { sb.FirstIno = 3 },
		"clustersize": func(sb *layout.Superblock) { sb.LogClusterSize = 4 },
	} {
		img := mkfs(t, "", 8, "-t", "ext4", "-b", "4096")
		editSuper(t, img, edit)
		if _, err := openImage(t, img, nil); !errors.Is(err, vfs.ErrCorrupt) {
			t.Errorf("%s: want ErrCorrupt, got %v", name, err)
		}
	}
}
