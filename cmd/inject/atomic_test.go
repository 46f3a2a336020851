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
// or qcow2, is byte for byte what it was.
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
			_, stderr, code := cli("--root-password", "password:x", "--meta", "a=b", "--key", demoKeyFile,
				"--file", "/etc/small="+small, "--file", "/srv/big="+big, img)
			wantCode(t, code, exitFail, stderr)
			if !strings.Contains(stderr, "/srv/big") || !strings.Contains(stderr, "no space") {
				t.Errorf("stderr does not name the file and the cause:\n%s", stderr)
			}
			if fileSum(t, img) != sum {
				t.Fatal("the image changed although the injection failed")
			}
			if img == qcow {
				testtool.Run(t, "qemu-img", "check", img)
				return
			}
			e2fsckClean(t, img)
		})
	}
}
