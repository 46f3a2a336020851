package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/xfs/internal/layout"
)

// smallImage makes a default (v5) image of a tiny tree.
func smallImage(t testing.TB, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "s.img")
	mkfsTree(t, img, src, 300<<20, args...)
	return img
}

func openErr(t *testing.T, img string, opts *Options) error {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	_, err = Open(fh, st.Size(), opts)
	return err
}

// TestUnknownIncompatRefused: an incompatible feature bit xfsprogs 6.1 does
// not name is refused at Open, and the error names the bit.
func TestUnknownIncompatRefused(t *testing.T) {
	img := smallImage(t)
	xfsDBWrite(t, img, "sb 0", "write -d features_incompat 0x40b")
	err := openErr(t, img, nil)
	if !errors.Is(err, ErrUnsupportedFeature) || !errors.Is(err, vfs.ErrUnsupported) || !strings.Contains(err.Error(), "unknown_0x400") {
		t.Fatalf("Open with incompat 0x400: %v", err)
	}
	xfsDBWrite(t, img, "sb 0", "write -d features_incompat 0x1b")
	if err := openErr(t, img, nil); !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "needsrepair") {
		t.Fatalf("Open with needsrepair: %v", err)
	}
}

// TestSuperblockChecksum: a v5 superblock whose CRC does not match is
// refused as a checksum error naming the superblock.
func TestSuperblockChecksum(t *testing.T) {
	img := smallImage(t)
	xfsDBWrite(t, img, "sb 0", "write -c imax_pct 26")
	err := openErr(t, img, nil)
	var ce *CorruptError
	if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) || ce.What != "superblock" {
		t.Fatalf("Open with a bad superblock CRC: %v", err)
	}
}

// TestNotXFS: bytes without the magic, and a section too short.
func TestNotXFS(t *testing.T) {
	img := filepath.Join(t.TempDir(), "zero.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, img, nil); !errors.Is(err, ErrNotXFS) {
		t.Fatalf("zeros: %v", err)
	}
	if _, err := Open(strings.NewReader("XFSB"), 4, nil); !errors.Is(err, ErrNotXFS) {
		t.Fatalf("4 bytes: %v", err)
	}
}

// TestSectionTooSmall: a filesystem claiming more blocks than its section
// holds is refused before any read past the section.
func TestSectionTooSmall(t *testing.T) {
	img := smallImage(t)
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := Open(fh, 100<<20, nil); !errors.Is(err, vfs.ErrCorrupt) || !strings.Contains(err.Error(), "exceed") {
		t.Fatalf("Open of a 100 MiB section of a 300 MiB filesystem: %v", err)
	}
}

// dirtyLog turns the unmount record mkfs wrote into an ordinary
// transaction record: the log then needs recovery.
func dirtyLog(t *testing.T, img string) {
	t.Helper()
	f := openImage(t, img, nil)
	g := &f.geo
	base := g.fsbLinear(f.sb.LogStart) << g.blockLog
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rec := f.log.HeadBlock - 1 // mkfs's record: one header block, then its data
	hb := make([]byte, layout.BBSize)
	for ; rec >= 0; rec-- {
		if _, err := fh.ReadAt(hb, base+rec*layout.BBSize); err != nil {
			t.Fatal(err)
		}
		if binary.BigEndian.Uint32(hb) == layout.LogHeaderMagic {
			break
		}
	}
	if rec < 0 {
		t.Fatalf("no record header before the head (%d)", f.log.HeadBlock)
	}
	op := make([]byte, layout.LogOpHeaderSize)
	off := base + (rec+1)*layout.BBSize
	if _, err := fh.ReadAt(op, off); err != nil {
		t.Fatal(err)
	}
	op[9] &^= layout.LogUnmountTrans
	if _, err := fh.WriteAt(op, off); err != nil {
		t.Fatal(err)
	}
}

// TestDirtyLog: a log whose last record is not an unmount record is
// refused (xfs_repair -n agrees it needs replay); AllowDirtyLog opens it
// with a warning.
func TestDirtyLog(t *testing.T) {
	for _, v := range []struct {
		name string
		args []string
	}{{"v5", nil}, {"v4", []string{"-m", "crc=0"}}, {"s4096", []string{"-s", "size=4096"}}} {
		t.Run(v.name, func(t *testing.T) {
			img := smallImage(t, v.args...)
			if f := openImage(t, img, nil); !f.Log().Clean {
				t.Fatalf("fresh image: log not clean: %+v", f.Log())
			}
			dirtyLog(t, img)
			out, _ := runAllowFail("xfs_repair", "-n", img)
			if !strings.Contains(out, "metadata changes in a log") {
				t.Fatalf("xfs_repair -n does not see a dirty log:\n%s", out)
			}
			if err := openErr(t, img, nil); !errors.Is(err, ErrNeedsRecovery) {
				t.Fatalf("Open of a dirty log: %v", err)
			}
			var warned string
			f := openImage(t, img, &Options{AllowDirtyLog: true, Warn: func(m string) { warned = m }})
			if warned == "" || f.Log().Clean {
				t.Fatalf("AllowDirtyLog: warned %q, log %+v", warned, f.Log())
			}
			if b, err := f.ReadFile("/etc/passwd"); err != nil || len(b) == 0 {
				t.Fatalf("read after AllowDirtyLog: %q, %v", b, err)
			}
		})
	}
}

// TestLabelUUID: the label and UUID mkfs set are reported.
func TestLabelUUID(t *testing.T) {
	img := smallImage(t, "-L", "guestroot", "-m", "uuid=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
	f := openImage(t, img, nil)
	if f.Label() != "guestroot" {
		t.Errorf("label %q", f.Label())
	}
	u := f.UUID()
	if u[0] != 0x0f || u[15] != 0xf0 {
		t.Errorf("uuid %x", u)
	}
}

// TestInfo: the summary matches xfs_db's superblock print.
func TestInfo(t *testing.T) {
	img := smallImage(t, "-L", "infotest")
	in := openImage(t, img, nil).Info()
	out := xfsDB(t, img, "sb 0", "p dblocks", "p icount", "p uuid")
	want := fmt.Sprintf("dblocks = %d\nicount = %d\nuuid = %s\n", in.Blocks, in.Inodes, UUIDString(in.UUID))
	if out != want || in.Label != "infotest" || in.Version != 5 || !in.Log.Clean {
		t.Errorf("Info %+v; xfs_db:\n%s", in, out)
	}
	if !strings.Contains(strings.Join(in.Features, ","), "crc") || !strings.Contains(strings.Join(in.Features, ","), "finobt") {
		t.Errorf("features %v", in.Features)
	}
}
