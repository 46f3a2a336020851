package xfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

var createConfigs = []struct {
	name string
	args []string
}{
	{"v5-defaults", nil},
	{"v5-nofinobt-nobigtime", []string{"-m", "finobt=0,bigtime=0,inobtcount=0"}},
	{"v5-nosparse", []string{"-i", "sparse=0"}},
	{"v5-rmapbt", []string{"-m", "rmapbt=1"}},
	{"v5-rmapbt-nosparse-nofinobt-1k", []string{"-m", "rmapbt=1,finobt=0", "-i", "sparse=0", "-b", "size=1024", "-d", "agcount=2"}},
	{"v4-ftype", []string{"-m", "crc=0", "-n", "ftype=1"}},
	{"v4", []string{"-m", "crc=0", "-n", "ftype=0"}},
}

// TestCreateShortForm creates empty files and directories in the root, a
// short-form directory, taking inodes from the existing chunk: the inode
// btrees (inobt and finobt in step), AGI and superblock counts, the new
// inode cores (v3 CRC, generation, timestamps, bigtime) and the entries
// satisfy xfs_repair -n; xfs_db and the engine read back every name,
// inode number, mode and owner.
func TestCreateShortForm(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 40, 0, 123456789, time.UTC)
	for _, c := range createConfigs {
		t.Run(c.name, func(t *testing.T) {
			img := emptyImage(t, c.args...)
			ifree0 := dbField(t, img, "ifree", "sb 0")
			icount0 := dbField(t, img, "icount", "sb 0")
			f := openRW(t, img)
			root := f.sb.RootIno
			type made struct {
				name string
				ino  uint64
				mode uint32
			}
			var all []made
			for batch := 0; batch < 2; batch++ {
				tr, err := f.begin()
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 4; i++ { // 8 entries fit a 256-byte v4 inode
					name, mode := fmt.Sprintf("file-%d-%d", batch, i), uint32(vfs.UnixRegular|0o640)
					if i == 3 {
						name, mode = fmt.Sprintf("dir-%d", batch), vfs.UnixDir|0o755
					}
					ino, err := tr.create(root, name, mode, 1000+uint32(i), 100, now)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, made{name, ino, mode})
				}
				// The engine's read side sees the entries before commit.
				if got, err := f.lookup(mustInode(t, f, root), all[len(all)-1].name); err != nil || got != all[len(all)-1].ino {
					t.Fatalf("uncommitted lookup: %d, %v", got, err)
				}
				if err := tr.commit(); err != nil {
					t.Fatal(err)
				}
				repairClean(t, img)
			}
			if got := dbField(t, img, "ifree", "sb 0"); got != ifree0-uint64(len(all)) {
				t.Fatalf("sb_ifree %d, want %d", got, ifree0-uint64(len(all)))
			}
			if got := dbField(t, img, "icount", "sb 0"); got != icount0 {
				t.Fatalf("sb_icount %d, want %d", got, icount0)
			}
			ls := xfsDB(t, img, "ls /")
			g := openImage(t, img, nil)
			seen := map[uint64]bool{}
			for i, m := range all {
				if seen[m.ino] {
					t.Fatalf("inode %d handed out twice", m.ino)
				}
				seen[m.ino] = true
				if !strings.Contains(ls, fmt.Sprintf("%d", m.ino)) || !strings.Contains(ls, m.name) {
					t.Fatalf("xfs_db ls / lacks %s (%d):\n%s", m.name, m.ino, ls)
				}
				if got := dbField(t, img, "core.mode", fmt.Sprintf("inode %d", m.ino)); uint32(got) != m.mode {
					t.Fatalf("xfs_db: %s mode %#o, want %#o", m.name, got, m.mode)
				}
				ino, err := g.lookup(mustInode(t, g, root), m.name)
				if err != nil || ino != m.ino {
					t.Fatalf("engine lookup %s: %d, %v; want %d", m.name, ino, err, m.ino)
				}
				in := mustInode(t, g, ino)
				if uint32(in.core.Mode) != m.mode || in.core.UID != 1000+uint32(i%4) || in.core.GID != 100 || !in.mtime().Equal(now.Truncate(time.Nanosecond)) {
					t.Fatalf("engine reads %s as mode %#o uid %d gid %d mtime %v", m.name, in.core.Mode, in.core.UID, in.core.GID, in.mtime())
				}
				if m.mode&vfs.UnixTypeMask == vfs.UnixDir {
					if p, err := g.shortform(in, func(dirent) error { return nil }); err != nil || p != root {
						t.Fatalf("%s/..: %d, %v", m.name, p, err)
					}
				}
			}
			if got := dbField(t, img, "core.nlinkv2", fmt.Sprintf("inode %d", root)); got != 2+2 {
				t.Fatalf("root nlink %d, want 4 (two subdirectories)", got)
			}
		})
	}
}

func mustInode(t testing.TB, f *FS, ino uint64) *inode {
	t.Helper()
	in, err := f.inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestCreateRefusals: a name already present is refused; the aborted
// transaction leaves the image unchanged. (A short-form directory that
// outgrows its inode becomes a block: TestDirGrowShrinkAllForms.)
func TestCreateRefusals(t *testing.T) {
	img := emptyImage(t)
	f := openRW(t, img)
	root := f.sb.RootIno
	now := time.Unix(1700000000, 0)
	tr, _ := f.begin()
	if _, err := tr.create(root, "a", vfs.UnixRegular|0o644, 0, 0, now); err != nil {
		t.Fatal(err)
	}
	if err := tr.commit(); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, img)
	tr, _ = f.begin()
	if _, err := tr.create(root, "a", vfs.UnixRegular|0o644, 0, 0, now); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("duplicate name: %v, want fs.ErrExist", err)
	}
	tr.abort()
	if fileSum(t, img) != before {
		t.Fatal("refused creations changed the image")
	}
	repairClean(t, img)
}

// TestNewInodeChunk creates more files than mkfs's first inode chunk
// holds (spread over short-form subdirectories), so the inode allocator
// must allocate new chunks: aligned blocks from the free space, 64 free
// inodes formatted, inobt and finobt records, AGI and superblock counts.
// xfs_repair -n stays clean after each transaction, and xfs_db and the
// engine read every file back.
func TestNewInodeChunk(t *testing.T) {
	now := time.Unix(1764750000, 42)
	for _, c := range createConfigs {
		t.Run(c.name, func(t *testing.T) {
			img := emptyImage(t, c.args...)
			icount0 := dbField(t, img, "icount", "sb 0")
			ifree0 := dbField(t, img, "ifree", "sb 0")
			fd0 := dbField(t, img, "fdblocks", "sb 0")
			f := openRW(t, img)
			root := f.sb.RootIno
			files := map[string]uint64{}
			total := 0
			// Three blocks held (a file's data) so that the free space
			// no longer starts on an inode-aligned block.
			tr, _ := f.begin()
			pad, err := tr.create(root, "pad", vfs.UnixRegular|0o600, 0, 0, now)
			if err != nil {
				t.Fatal(err)
			}
			total++
			if err := tr.appendData(pad, pattern(3*int(f.geo.blockSize), 9), now); err != nil {
				t.Fatal(err)
			}
			if err := tr.commit(); err != nil {
				t.Fatal(err)
			}
			for d := 0; d < 9; d++ { // 72 inodes: more than mkfs's chunk has free
				tr, err := f.begin()
				if err != nil {
					t.Fatal(err)
				}
				dname := fmt.Sprintf("d%d", d)
				dir, err := tr.create(root, dname, vfs.UnixDir|0o755, 0, 0, now)
				if err != nil {
					t.Fatal(err)
				}
				total++
				for i := 0; i < 7; i++ {
					name := fmt.Sprintf("f%d", i)
					ino, err := tr.create(dir, name, vfs.UnixRegular|0o600, 7, 7, now)
					if err != nil {
						t.Fatalf("%s/%s: %v", dname, name, err)
					}
					files[dname+"/"+name] = ino
					total++
				}
				if err := tr.commit(); err != nil {
					t.Fatal(err)
				}
				repairClean(t, img)
			}
			icount := dbField(t, img, "icount", "sb 0")
			if icount <= icount0 || (icount-icount0)%64 != 0 {
				t.Fatalf("sb_icount went from %d to %d: no whole new chunk", icount0, icount)
			}
			chunks := (icount - icount0) / 64
			if used, want := icount-dbField(t, img, "ifree", "sb 0"), icount0-ifree0+uint64(total); used != want {
				t.Fatalf("%d inodes in use, want %d", used, want)
			}
			t.Logf("%d files in %d new chunk(s)", total, chunks)
			fd := dbField(t, img, "fdblocks", "sb 0")
			chunkBlocks := uint64(64*f.geo.inodeSize) / uint64(f.geo.blockSize)
			if fd > fd0-chunks*chunkBlocks {
				t.Fatalf("sb_fdblocks %d: the %d chunk(s) of %d blocks were not taken from %d", fd, chunks, chunkBlocks, fd0)
			}
			newino := dbField(t, img, "newino", "agi 0")
			if align := uint64(f.sb.InoAlignMT); align > 1 && (newino>>f.geo.inoPBLog)%align != 0 {
				t.Fatalf("new chunk at AG inode %d (block %d) is not aligned to %d blocks", newino, newino>>f.geo.inoPBLog, align)
			}
			g := openImage(t, img, nil)
			for p, ino := range files {
				dname, name, _ := strings.Cut(p, "/")
				d, err := g.lookup(mustInode(t, g, root), dname)
				if err != nil {
					t.Fatal(err)
				}
				got, err := g.lookup(mustInode(t, g, d), name)
				if err != nil || got != ino {
					t.Fatalf("%s: %d, %v; want %d", p, got, err, ino)
				}
				if m := dbField(t, img, "core.mode", fmt.Sprintf("inode %d", ino)); m != vfs.UnixRegular|0o600 {
					t.Fatalf("xfs_db: %s mode %#o", p, m)
				}
			}
		})
	}
}
