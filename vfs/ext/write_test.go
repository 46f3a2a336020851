package ext

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// basicOps runs every vfs operation on w and checks the result with
// e2fsck and debugfs.
func basicOps(t *testing.T, img string) {
	w := openW(t, img)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.MakePath("/etc/ssh/keys.d"))
	must(w.ReplaceFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nal:x:1000:1001::/home/al:/bin/sh\n")))
	must(w.ReplaceFile("/etc/group", []byte("root:x:0:\nstaff:x:1001:\n")))
	must(w.AppendFile("/etc/ssh/keys.d/a", []byte("ssh-ed25519 AAAA one\n")))
	must(w.AppendFile("/etc/ssh/keys.d/a", []byte("ssh-ed25519 AAAA two\n")))
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes
	must(w.ReplaceFile("/big", big))
	must(w.AppendFile("/big", []byte("tail")))
	must(w.ReplaceFile("/shrunk", big))
	must(w.ReplaceFile("/shrunk", []byte("short now")))
	must(w.SetPermissions("/etc/ssh/keys.d/a", 0o600))
	must(w.SetOwnership("/etc/ssh/keys.d/a", "al", "staff"))
	must(w.Symlink("/etc/ssh/keys.d/a", "/fast"))
	long := "/" + string(bytes.Repeat([]byte("x/"), 50)) + "target"
	must(w.Symlink(long, "/slow"))
	must(w.MakePath("/gone/sub"))
	must(w.AppendFile("/gone/sub/f", []byte("bye")))
	must(w.Remove("/gone/sub/f"))
	must(w.Remove("/gone/sub"))
	must(w.Remove("/gone"))
	must(w.ReplaceFile("/big2", big))
	must(w.Remove("/big2"))
	fsck(t, img)
	wantCat(t, img, "/etc/ssh/keys.d/a", []byte("ssh-ed25519 AAAA one\nssh-ed25519 AAAA two\n"))
	wantCat(t, img, "/big", append(append([]byte(nil), big...), "tail"...))
	wantCat(t, img, "/shrunk", []byte("short now"))
	wantStat(t, img, "/etc/ssh/keys.d/a", 0o600, 1000, 1001)
	wantStat(t, img, "/etc/ssh/keys.d", 0o755, 0, 0)
	wantStat(t, img, "/big", 0o644, 0, 0)
	if s := debugfsStat(t, img, "/fast"); s.fastLink != "/etc/ssh/keys.d/a" {
		t.Errorf("fast symlink: %+v", s)
	}
	if got := debugfsCat(t, img, "/slow"); string(got) != long {
		t.Errorf("slow symlink reads %q", got)
	}
	r := mustOpen(t, img)
	if tgt, err := r.Readlink("/slow"); err != nil || tgt != long {
		t.Errorf("Readlink /slow = %q, %v", tgt, err)
	}
	if ok, _ := r.HasFile("/gone"); ok {
		t.Errorf("/gone still exists")
	}
}

// imageKinds is the matrix this file covers: mke2fs options per kind.
var imageKinds = []struct {
	name string
	args []string
}{
	{"ext4", []string{"-t", "ext4"}},
	{"ext4-1k", []string{"-t", "ext4", "-b", "1024"}},
	{"ext4-no64bit", []string{"-t", "ext4", "-O", "^64bit"}},
	{"ext4-gdtcsum", []string{"-t", "ext4", "-O", "^metadata_csum"}},
	{"ext4-noflexbg", []string{"-t", "ext4", "-O", "^flex_bg"}},
	{"ext4-metabg", []string{"-t", "ext4", "-O", "meta_bg,^resize_inode"}},
	{"ext4-inline", []string{"-t", "ext4", "-O", "inline_data"}},
	{"ext4-nojournal", []string{"-t", "ext4", "-O", "^has_journal"}},
	{"ext3", []string{"-t", "ext3"}},
	{"ext3-1k-128", []string{"-t", "ext3", "-b", "1024", "-I", "128"}},
	{"ext2", []string{"-t", "ext2"}},
	{"ext2-1k", []string{"-t", "ext2", "-b", "1024"}},
}

func TestWriteBasicOps(t *testing.T) {
	for _, k := range imageKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, "", 64, k.args...)
			basicOps(t, img)
		})
	}
}

func TestWriteReadOnlyRefused(t *testing.T) {
	img := mkfs(t, "", 16, "-t", "ext4")
	f := mustOpen(t, img)
	if err := (wfs{f}).MakePath("/x"); !errors.Is(err, vfs.ErrReadOnly) {
		t.Fatalf("MakePath on a read-only open: %v", err)
	}
	_ = fmt.Sprint()
}
