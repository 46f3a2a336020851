package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/formats/diskerr"
	"github.com/guestinject/guestinject/imports"
	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/diskimage"
	"github.com/guestinject/guestinject/inject/diskimage/stage"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/lvm"
	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/seed"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/xfs"
)

// layerErrors are, per class, errors of every layer that has one, as the
// layers return them: their sentinels, wrapped in their own located
// types where they have one.
var layerErrors = map[string][]error{
	"corrupt": {
		formats.ErrCorrupt, diskerr.Corrupt(0x30000, "L2 entry 5"), formats.ErrBackingChain,
		partition.ErrCorrupt, &partition.Error{Where: "gpt primary header", LBA: 1, Offset: 512, Msg: "bad CRC", Err: partition.ErrCorrupt},
		lvm.ErrCorrupt,
		vfs.ErrCorrupt, ext.ErrChecksum, ext.ErrBadTarget,
		&ext.CorruptError{What: "extent node", Num: 1234, Ino: 12, Offset: -1, Detail: "bad magic", Err: vfs.ErrCorrupt},
		xfs.ErrChecksum, &xfs.CorruptError{What: "AGF", AG: 1, Block: 1, Offset: -1, Detail: "bad magic", Err: vfs.ErrCorrupt},
		inject.ErrBadShadow, imports.ErrChecksum,
	},
	"read-only": {
		formats.ErrReadOnly, partition.ErrReadOnly, vfs.ErrReadOnly, xfs.ErrReadOnlyFS,
	},
	"unsupported": {
		formats.ErrUnsupported, formats.ErrUnsupportedFormat, diskerr.Unsupported("encryption"), imports.ErrUnsupported,
		partition.ErrUnsupported, partition.ErrCannotGrow, lvm.ErrUnsupported, lvm.ErrNotPV,
		vfs.ErrUnsupported, vfs.ErrLinkLimit, ext.ErrUnsupportedFeature, ext.ErrNotExt, ext.ErrCannotGrow,
		xfs.ErrUnsupportedFeature, xfs.ErrNotXFS,
		diskimage.ErrNotExt, diskimage.ErrCannotGrow, inject.ErrUnsafeSymlink, inject.ErrNetworkConflict,
	},
	"in-use": {
		formats.ErrInUse, ext.ErrInUse, local.ErrChanged,
	},
	"unclean": {
		formats.ErrDirty, ext.ErrNeedsRecovery, ext.ErrUnclean, ext.ErrOrphans, xfs.ErrNeedsRecovery,
	},
	"not-found": {
		partition.ErrNotFound, lvm.ErrNotFound, lvm.ErrMissingPV, diskimage.ErrBadPartition, inject.ErrNoSuchUser,
		vfs.ErrUnknownUser, vfs.PathErr("open", "/etc/x", fs.ErrNotExist),
	},
	"no-space": {
		diskerr.ErrNoSpace, vfs.ErrNoSpace, xfs.ErrNoSpace, stage.ErrLimit,
	},
	"out-of-range": {
		formats.ErrOutOfRange, partition.ErrOutOfRange, stage.ErrOutOfRange,
	},
	"invalid": {
		formats.ErrTooSmall, vfs.ErrInvalidPath, vfs.ErrNotDir, inject.ErrInvalidKey, inject.ErrInvalidNetwork, seed.ErrInvalid,
	},
	"ambiguous": {
		diskimage.ErrNoRoot, diskimage.ErrManyRoots, inject.ErrNetworkStackUnknown, imports.ErrArchive,
	},
	"denied": {
		formats.ErrBackingDenied,
	},
}

// TestEveryLayerOneClass: whichever layer raised it, and however it was
// wrapped on the way up (a layer's message, the image and partition, a
// guest path), a corruption, a read-only target, an unsupported feature,
// an object in use... gets one class and one exit status from the CLI,
// in --json and on stderr.
func TestEveryLayerOneClass(t *testing.T) {
	if len(layerErrors) != len(errs.Classes()) {
		t.Errorf("%d classes tested, errs has %d", len(layerErrors), len(errs.Classes()))
	}
	for class, list := range layerErrors {
		for _, layerErr := range list {
			for _, err := range []error{
				layerErr,
				errs.In("disk.qcow2", "partition 2", layerErr),
				fmt.Errorf("files /etc/x: %w", vfs.PathErr("write", "/etc/x", layerErr)),
			} {
				got, status := classify(err)
				if got != class || status != exitFail {
					t.Errorf("%v: class %q exit %d, want %q exit %d", err, got, status, class, exitFail)
				}
				if c := errs.Class(err); !errors.Is(err, c) && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%v: not errors.Is its class %v", err, c)
				}
				var stderr bytes.Buffer
				if st := fail(&stderr, err); st != exitFail || !strings.Contains(stderr.String(), layerErr.Error()) {
					t.Errorf("fail(%v) = %d, stderr %q", err, st, stderr.String())
				}
			}
		}
	}
	if c, st := classify(usagef("bad flag")); c != classUsage || st != exitUsage {
		t.Errorf("usage error: %q %d", c, st)
	}
	if c, st := classify(errors.New("read /dev/sda: input/output error")); c != classFailed || st != exitFail {
		t.Errorf("unclassified error: %q %d", c, st)
	}
}

// TestLayerLocationsConvert: each layer's located error gives the
// project's one located type through errors.As, and Locate adds the image
// and partition the outer layers know.
func TestLayerLocationsConvert(t *testing.T) {
	for _, c := range []struct {
		err  error
		want errs.Error
	}{
		{diskerr.WithPath("d.qcow2", diskerr.Corrupt(0x30000, "L2 entry 5")), errs.Error{Image: "d.qcow2", What: "L2 entry 5", Block: -1, Offset: 0x30000}},
		{&partition.Error{Where: "gpt backup header", LBA: 2047, Offset: 2047 * 512, Err: partition.ErrCorrupt}, errs.Error{What: "gpt backup header", Block: 2047, Offset: 2047 * 512}},
		{&ext.CorruptError{What: "directory block", Num: 4400, Ino: 27, Offset: -1, Err: ext.ErrChecksum}, errs.Error{What: "directory block 4400", Inode: 27, Block: -1, Offset: -1}},
		{&ext.CorruptError{What: "inode", Num: 12, Ino: 12, Offset: 0x8c00, Err: vfs.ErrCorrupt}, errs.Error{What: "inode", Inode: 12, Block: -1, Offset: 0x8c00}},
		{&xfs.CorruptError{What: "AGF", AG: 2, Block: 1, Ino: 0, Offset: 0x10200, Err: vfs.ErrCorrupt}, errs.Error{What: "AGF in AG 2", Block: 1, Offset: 0x10200}},
	} {
		var e *errs.Error
		if !errors.As(c.err, &e) {
			t.Errorf("%v: errors.As found no *errs.Error", c.err)
			continue
		}
		got := *e
		got.Err = nil
		if got != c.want {
			t.Errorf("%v:\n got %+v\nwant %+v", c.err, got, c.want)
		}
		loc, ok := errs.Locate(errs.In("disk.img", "partition 1", c.err))
		if !ok || loc.Partition != "partition 1" || loc.What != c.want.What || loc.Err != errs.ErrCorrupt {
			t.Errorf("Locate: %+v", loc)
		}
	}
}

// patchImage applies patch to the bytes of the file at p.
func patchImage(t *testing.T, p string, patch func(b []byte)) {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	patch(b)
	must(t, os.WriteFile(p, b, 0o644))
}

// dumpe2fsField returns a "Name:   value" field of dumpe2fs -h.
func dumpe2fsField(t *testing.T, img, name string) int64 {
	t.Helper()
	for _, line := range strings.Split(string(testtool.Run(t, "dumpe2fs", "-h", img)), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			must(t, err)
			return n
		}
	}
	t.Fatalf("dumpe2fs -h %s: no %q", img, name)
	return 0
}

// TestErrorClassOnImages: real images broken or refused at each layer —
// the qcow2 header, the GPT, the ext superblock, features, locks and
// state — give the same --json error_class and exit status per class
// through the whole CLI, and stay byte for byte unchanged.
func TestErrorClassOnImages(t *testing.T) {
	base := extImage(t, 0)
	copyOf := func(name string) string {
		b, err := os.ReadFile(base)
		must(t, err)
		p := filepath.Join(t.TempDir(), name)
		must(t, os.WriteFile(p, b, 0o644))
		return p
	}
	cases := []struct {
		name, class string
		image       func() string
		hold        bool // hold the image's lock as a running qemu would
	}{
		{"qcow2 L1 offset", "corrupt", func() string {
			q := filepath.Join(t.TempDir(), "disk.qcow2")
			testtool.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", base, q)
			patchImage(t, q, func(b []byte) { binary.BigEndian.PutUint64(b[40:], 0x12345) }) // l1_table_offset, unaligned
			return q
		}, false},
		{"gpt entry count", "corrupt", func() string {
			d := filepath.Join(t.TempDir(), "gpt.img")
			must(t, os.WriteFile(d, nil, 0o644))
			must(t, os.Truncate(d, 20<<20))
			testtool.Run(t, "sgdisk", "-o", "-n", "1:2048:0", d)
			patchImage(t, d, func(b []byte) {
				for _, lba := range []int{1, len(b)/512 - 1} { // primary and backup header
					h := b[lba*512:][:92]
					binary.LittleEndian.PutUint32(h[80:], 1<<20) // number of entries
					binary.LittleEndian.PutUint32(h[16:], 0)
					binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
				}
			})
			return d
		}, false},
		{"ext superblock", "corrupt", func() string {
			p := copyOf("sb.img")
			testtool.Run(t, "debugfs", "-w", "-R", "ssv inodes_count 7", p)
			return p
		}, false},
		{"ext unknown incompat", "unsupported", func() string {
			p := copyOf("incompat.img")
			testtool.Run(t, "debugfs", "-w", "-R", "feature FEATURE_I31", p)
			return p
		}, false},
		{"vmdk write", "unsupported", func() string {
			v := filepath.Join(t.TempDir(), "disk.vmdk")
			testtool.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", base, v)
			return v
		}, false},
		{"image lock", "in-use", func() string { return copyOf("locked.img") }, true},
		{"ext mmp", "in-use", func() string {
			src := guestDir(t)
			p := filepath.Join(t.TempDir(), "mmp.img")
			testtool.Run(t, "mkfs.ext4", "-q", "-F", "-O", "mmp,^metadata_csum", "-d", src, p, "8M")
			blk, bs := dumpe2fsField(t, p, "MMP block number"), dumpe2fsField(t, p, "Block size")
			patchImage(t, p, func(b []byte) { binary.LittleEndian.PutUint32(b[blk*bs+4:], 0xE24D4D50) }) // mmp_seq: e2fsck running
			return p
		}, false},
		{"ext unclean", "unclean", func() string {
			p := copyOf("unclean.img")
			testtool.Run(t, "debugfs", "-w", "-R", "ssv state 0", p)
			return p
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := c.image()
			if c.hold {
				holder, err := formats.Open(img, formats.Options{})
				must(t, err)
				defer holder.Close()
			}
			sum := fileSum(t, img)
			out, errOut, code := cli("--json", "--meta", "a=b", img)
			wantCode(t, code, exitFail, errOut)
			var r struct {
				OK         bool   `json:"ok"`
				Error      string `json:"error"`
				ErrorClass string `json:"error_class"`
			}
			must(t, json.Unmarshal([]byte(out), &r))
			if r.OK || r.ErrorClass != c.class || r.Error == "" {
				t.Errorf("error_class %q, want %q; error %q", r.ErrorClass, c.class, r.Error)
			}
			if fileSum(t, img) != sum {
				t.Error("the refused injection changed the image")
			}
		})
	}
}
