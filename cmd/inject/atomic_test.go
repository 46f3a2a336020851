package main

import (
	"bytes"
	"os"
	"path/filepath"
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
