package memfs

import (
	"bytes"
	"errors"
	"io/fs"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewRoot(t *testing.T) {
	f := New()
	fi, err := f.Stat("/")
	mustOK(t, err)
	if fi.Mode != fs.ModeDir|0o755 || fi.UID != 0 || fi.GID != 0 || fi.Ino != rootIno {
		t.Fatalf("root = %+v, want dir 0755 root:root ino 2", fi)
	}
	ents, err := f.ReadDir("/")
	mustOK(t, err)
	if len(ents) != 0 {
		t.Fatalf("new root has %d entries", len(ents))
	}
}

func TestBuilders(t *testing.T) {
	f := New()
	mustOK(t, f.Mkdir("/home", 0o751, 0, 0))
	mustOK(t, f.Mkdir("/home/al", 0o700, 1000, 1001))
	mustOK(t, f.WriteFileAs("/home/al/x", []byte("hi"), fs.ModeSetuid|0o640, 1000, 1001))
	mustOK(t, f.Mkfifo("/home/al/p", 0o600))
	if err := f.Mkdir("/home/al", 0o700, 0, 0); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Mkdir existing: %v, want fs.ErrExist", err)
	}
	if err := f.Mkdir("/nope/x", 0o700, 0, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Mkdir without parent: %v, want fs.ErrNotExist", err)
	}
	fi, err := f.Stat("/home/al")
	mustOK(t, err)
	if fi.Mode != fs.ModeDir|0o700 || fi.UID != 1000 || fi.GID != 1001 {
		t.Fatalf("dir = %+v", fi)
	}
	fi, err = f.Stat("/home/al/x")
	mustOK(t, err)
	if fi.Mode != fs.ModeSetuid|0o640 || fi.UID != 1000 || fi.GID != 1001 || fi.Size != 2 {
		t.Fatalf("file = %+v", fi)
	}
	fi, err = f.Lstat("/home/al/p")
	mustOK(t, err)
	if fi.Mode != fs.ModeNamedPipe|0o600 {
		t.Fatalf("fifo mode = %v", fi.Mode)
	}
	if _, err := f.ReadFile("/home/al/p"); !errors.Is(err, vfs.ErrNotRegular) {
		t.Fatalf("ReadFile fifo: %v, want ErrNotRegular", err)
	}
	if err := f.AppendFile("/home/al/p", []byte("x")); !errors.Is(err, vfs.ErrNotRegular) {
		t.Fatalf("AppendFile fifo: %v, want ErrNotRegular", err)
	}
	mustOK(t, f.Chown("/home/al/x", -1, 7))
	fi, _ = f.Stat("/home/al/x")
	if fi.UID != 1000 || fi.GID != 7 {
		t.Fatalf("Chown(-1, 7) gave %d:%d", fi.UID, fi.GID)
	}
}

func TestInodeIdentity(t *testing.T) {
	f := New()
	mustOK(t, f.ReplaceFile("/a", []byte("1")))
	before, _ := f.Stat("/a")
	mustOK(t, f.ReplaceFile("/a", []byte("22")))
	after, _ := f.Stat("/a")
	if before.Ino != after.Ino {
		t.Fatalf("ReplaceFile changed inode %d -> %d", before.Ino, after.Ino)
	}
	mustOK(t, f.ReplaceFile("/b", nil))
	b, _ := f.Stat("/b")
	if b.Ino == after.Ino {
		t.Fatal("two files share an inode number")
	}
}

func TestReadFileIsACopy(t *testing.T) {
	f := New()
	in := []byte("abc")
	mustOK(t, f.ReplaceFile("/a", in))
	in[0] = 'X'
	got, _ := f.ReadFile("/a")
	got[1] = 'Y'
	again, _ := f.ReadFile("/a")
	if !bytes.Equal(again, []byte("abc")) {
		t.Fatalf("content aliased caller memory: %q", again)
	}
}

func TestSetOwnershipUsesGuestDatabases(t *testing.T) {
	f := New()
	mustOK(t, f.MakePath("/etc"))
	mustOK(t, f.ReplaceFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nal:x:1000:1000::/home/al:/bin/sh\n")))
	mustOK(t, f.ReplaceFile("/etc/group", []byte("root:x:0:\nstaff:x:50:al\n")))
	mustOK(t, f.ReplaceFile("/f", nil))
	mustOK(t, f.SetOwnership("/f", "al", "staff"))
	fi, _ := f.Stat("/f")
	if fi.UID != 1000 || fi.GID != 50 {
		t.Fatalf("owner = %d:%d, want 1000:50", fi.UID, fi.GID)
	}
	err := f.SetOwnership("/f", "nobody", "")
	if !errors.Is(err, vfs.ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/f" {
		t.Fatalf("error %v does not carry the guest path", err)
	}
}

func TestTrailingSlashWrite(t *testing.T) {
	f := New()
	mustOK(t, f.ReplaceFile("/a", []byte("x")))
	if err := f.AppendFile("/a/", nil); !errors.Is(err, vfs.ErrNotDir) {
		t.Errorf("append /a/: %v, want ErrNotDir", err)
	}
	if err := f.ReplaceFile("/new/", nil); !errors.Is(err, vfs.ErrIsDir) {
		t.Errorf("replace /new/: %v, want ErrIsDir", err)
	}
	if ok, _ := f.HasFile("/new"); ok {
		t.Error("/new/ was created as a file")
	}
}
