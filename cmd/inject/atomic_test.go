package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// An injection is one unit on an image too: when the last --file does not
// fit (found only while writing it, after the password, the metadata, the
// key and a first file were written), the run exits 1 and the image, raw
// or qcow2, is byte for byte what it was; its dry run fails the same way.
func TestImageInjectNoSpaceChangesNothing(t *testing.T) {
	raw := extImage(t, 0) // 8 MiB: far less free space than the big file
	small := writeTemp(t, "small", "small file\n")
	big := filepath.Join(t.TempDir(), "big")
	must(t, os.WriteFile(big, bytes.Repeat([]byte("0123456789abcdef"), 1<<20), 0o600)) // 16 MiB
	qcow := filepath.Join(t.TempDir(), "disk.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow)
	for _, img := range []string{raw, qcow} {
		t.Run(filepath.Ext(img), func(t *testing.T) {
			sum := fileSum(t, img)
			args := []string{"--root-password", "password:x", "--meta", "a=b", "--key", demoKeyFile,
				"--file", "/etc/small=" + small, "--file", "/srv/big=" + big, img}
			// The dry run rehearses the writes in memory: it fails as
			// the real run does.
			for _, dry := range []bool{true, false} {
				a := args
				if dry {
					a = append([]string{"--dry-run"}, args...)
				}
				_, stderr, code := cli(a...)
				wantCode(t, code, exitFail, stderr)
				if !strings.Contains(stderr, "/srv/big") || !strings.Contains(stderr, "no space") {
					t.Errorf("dry run %v: stderr does not name the file and the cause:\n%s", dry, stderr)
				}
				if fileSum(t, img) != sum {
					t.Fatalf("dry run %v: the image changed although the injection failed", dry)
				}
			}
			if img == qcow {
				testtool.Run(t, "qemu-img", "check", img)
				return
			}
			e2fsckClean(t, img)
		})
	}
}

// A dry run that rehearses a successful injection reports it planned,
// prints the plan the real run then carries out, and writes nothing.
func TestImageDryRunRehearsesWithoutWriting(t *testing.T) {
	img := extImage(t, 0)
	sum := fileSum(t, img)
	motd := writeTemp(t, "motd", "hello\n")
	args := []string{"--json", "--meta", "a=b", "--key", demoKeyFile, "--file", "/etc/motd=" + motd, img}
	dry, stderr, code := cli(append([]string{"--dry-run"}, args...)...)
	wantCode(t, code, exitOK, stderr)
	if fileSum(t, img) != sum {
		t.Fatal("the dry run changed the image")
	}
	if !strings.Contains(dry, `"dry_run": true`) || !strings.Contains(dry, `"status": "planned"`) || strings.Contains(dry, `"status": "done"`) {
		t.Errorf("dry-run report:\n%s", dry)
	}
	real, stderr, code := cli(args...)
	wantCode(t, code, exitOK, stderr)
	e2fsckClean(t, img)
	if want := strings.ReplaceAll(strings.ReplaceAll(dry, `"dry_run": true`, `"dry_run": false`), `"planned"`, `"done"`); real != want {
		t.Errorf("the real run's report differs from the dry run's plan:\n%s\nwant\n%s", real, want)
	}
}

var (
	extentBlock = regexp.MustCompile(`\(ETB0\):(\d+)`)
	blockSize   = regexp.MustCompile(`Block size:\s+(\d+)`)
)

// A corrupt block met only while writing the third item (the extent tree
// of the file it replaces: planning reads the inode, not the tree) fails
// the run after the metadata and the password were written; the image is
// byte for byte unchanged, and the dry run fails the same way.
func TestImageInjectCorruptBlockInThirdItemChangesNothing(t *testing.T) {
	src := guestDir(t)
	f, err := os.Create(filepath.Join(src, "etc/big"))
	must(t, err)
	for k := int64(0); k < 6; k++ { // six extents: more than the inode holds, so a tree block
		_, err := f.WriteAt(bytes.Repeat([]byte("x"), 4096), k<<16)
		must(t, err)
	}
	must(t, f.Close())
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", src, img, "8M")
	m := extentBlock.FindSubmatch(testtool.Run(t, "debugfs", "-R", "stat /etc/big", img))
	bs := blockSize.FindSubmatch(testtool.Run(t, "dumpe2fs", "-h", img))
	if m == nil || bs == nil {
		t.Fatal("no extent tree block for /etc/big, or no block size")
	}
	blk, _ := strconv.ParseInt(string(m[1]), 10, 64)
	size, _ := strconv.ParseInt(string(bs[1]), 10, 64)
	w, err := os.OpenFile(img, os.O_WRONLY, 0)
	must(t, err)
	_, err = w.WriteAt(make([]byte, size), blk*size) // the tree block loses its magic
	must(t, err)
	must(t, w.Close())
	sum := fileSum(t, img)
	content := writeTemp(t, "big", "new content\n")
	args := []string{"--meta", "a=b", "--root-password", "password:x", "--file", "/etc/big=" + content, img}
	for _, dry := range []bool{true, false} {
		a := args
		if dry {
			a = append([]string{"--dry-run"}, args...)
		}
		_, stderr, code := cli(a...)
		wantCode(t, code, exitFail, stderr)
		if !strings.Contains(stderr, "/etc/big") || !strings.Contains(stderr, fmt.Sprint(blk)) {
			t.Errorf("dry run %v: stderr does not name the file and the block:\n%s", dry, stderr)
		}
		if fileSum(t, img) != sum {
			t.Fatalf("dry run %v: the image changed although the injection failed", dry)
		}
	}
}

// Audit R6 on an ext4 image: --file through a guest symlink whose target's
// parent is missing is refused by planning (every other item skipped,
// nothing attempted), in the dry run and the real run alike.
func TestImageDanglingSymlinkRefusedByPlanning(t *testing.T) {
	img := extImage(t, 0)
	testtool.Run(t, "debugfs", "-w", "-R", "symlink /etc/x /nonexistent/dir/file", img)
	sum := fileSum(t, img)
	data := writeTemp(t, "x", "data\n")
	for _, dry := range []bool{true, false} {
		args := []string{"--json", "--root-password", "password:x", "--meta", "a=b", "--file", "/etc/x=" + data, img}
		if dry {
			args = append([]string{"--dry-run"}, args...)
		}
		out, stderr, code := cli(args...)
		wantCode(t, code, exitFail, stderr)
		if !strings.Contains(stderr, "planned replace /etc/x would fail") {
			t.Errorf("dry run %v: not refused by planning:\n%s", dry, stderr)
		}
		if strings.Count(out, `"status": "skipped"`) != 2 {
			t.Errorf("dry run %v: want the two other items skipped:\n%s", dry, out)
		}
		if fileSum(t, img) != sum {
			t.Fatalf("dry run %v: the image changed", dry)
		}
	}
}
