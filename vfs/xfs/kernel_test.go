package xfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// unpackSparse decompresses testdata/name.gz into a sparse file.
func unpackSparse(t *testing.T, name string) string {
	t.Helper()
	in, err := os.Open(filepath.Join("testdata", name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	var off int64
	for {
		n, err := io.ReadFull(zr, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				t.Fatal(werr)
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Truncate(off); err != nil {
		t.Fatal(err)
	}
	return dst
}

// manifestEntry is one line of testdata/kernel-v5.manifest, the kernel's
// view of each object when fixtures/xfs/mkkernel.sh wrote it.
type manifestEntry struct {
	Path    string            `json:"path"`
	Mode    uint32            `json:"mode"`
	UID     uint32            `json:"uid"`
	GID     uint32            `json:"gid"`
	Size    int64             `json:"size"`
	Nlink   uint32            `json:"nlink"`
	Ino     uint64            `json:"ino"`
	Rdev    uint64            `json:"rdev"`
	MtimeNs int64             `json:"mtime_ns"`
	SHA256  string            `json:"sha256"`
	Target  string            `json:"target"`
	Xattrs  map[string]string `json:"xattrs"`
}

// TestKernelImage compares the engine with what the Linux kernel wrote
// (fixtures/xfs/mkkernel.sh): real holes and unwritten extents (a 5 GiB
// sparse file among them), hard links, a socket, v5 remote symlinks with
// their headers, xattrs of every namespace and a POSIX ACL (compared
// byte for byte with the kernel's getxattr), and a node-form directory.
func TestKernelImage(t *testing.T) {
	img := unpackSparse(t, "kernel-v5.img")
	f := openImage(t, img, nil)
	if !f.Log().Clean || f.Label() != "kernelv5" {
		t.Fatalf("log %+v, label %q", f.Log(), f.Label())
	}
	mf, err := os.Open(filepath.Join("testdata", "kernel-v5.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var e manifestEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		n++
		fi, err := f.Lstat(e.Path)
		if err != nil {
			t.Errorf("Lstat(%s): %v", e.Path, err)
			continue
		}
		got := fmt.Sprintf("mode %v uid %d gid %d nlink %d ino %d rdev %#x mtime %d", fi.Mode, fi.UID, fi.GID, fi.Nlink, fi.Ino, fi.Rdev, fi.ModTime.UnixNano())
		want := fmt.Sprintf("mode %v uid %d gid %d nlink %d ino %d rdev %#x mtime %d", vfs.ModeFromUnix(e.Mode), e.UID, e.GID, e.Nlink, e.Ino, e.Rdev, e.MtimeNs)
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", e.Path, got, want)
		}
		if !fi.IsDir() && fi.Size != e.Size {
			t.Errorf("%s: size %d, kernel %d", e.Path, fi.Size, e.Size)
		}
		if e.Target != "" && fi.Target != e.Target {
			t.Errorf("%s: target %q, kernel %q", e.Path, fi.Target, e.Target)
		}
		if e.SHA256 != "" {
			if testing.Short() && e.Size > 64<<20 {
				continue
			}
			fl, err := f.OpenFile(e.Path)
			if err != nil {
				t.Errorf("OpenFile(%s): %v", e.Path, err)
				continue
			}
			h := sha256.New()
			if _, err := io.Copy(h, fl.Reader()); err != nil || hex.EncodeToString(h.Sum(nil)) != e.SHA256 {
				t.Errorf("%s: content differs from the kernel's (%v)", e.Path, err)
			}
		}
		if e.Target == "" {
			names, err := f.ListXattr(e.Path)
			var want []string
			for k := range e.Xattrs {
				want = append(want, k)
			}
			sort.Strings(want)
			if err != nil || fmt.Sprint(names) != fmt.Sprint(want) {
				t.Errorf("ListXattr(%s) = %v, %v; kernel %v", e.Path, names, err, want)
			}
			for k, hv := range e.Xattrs {
				v, err := f.GetXattr(e.Path, k)
				if err != nil || hex.EncodeToString(v) != hv {
					t.Errorf("GetXattr(%s, %s) = %x, %v; kernel %s", e.Path, k, v, err, hv)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("manifest holds %d entries", n)
	}
	ents, err := f.ReadDir("/big")
	if err != nil || len(ents) != 2000 || ents[1999].Name != "n01999" {
		t.Fatalf("ReadDir(/big): %d entries, %v", len(ents), err)
	}
	_, frag, err := f.resolve("stat", "/data/fragmented", false)
	if err != nil || frag.core.Format.String() != "btree" || frag.core.DataExtents() < 300 {
		t.Errorf("/data/fragmented is not a 300-extent btree-mapped file: %v", err)
	}
	if shape := dirShape(t, f, "/big"); shape != "node/extents" && shape != "node/btree" {
		t.Errorf("/big is %s, want node form", shape)
	}
}

// TestKernelDirtyLog: a filesystem shut down by the kernel before unmount
// (xfs_io -x shutdown) has a log needing recovery; xfs_repair -n agrees.
func TestKernelDirtyLog(t *testing.T) {
	img := unpackSparse(t, "kernel-dirty.img")
	out, _ := runAllowFail("xfs_repair", "-n", img)
	if !bytes.Contains([]byte(out), []byte("metadata changes in a log")) {
		t.Fatalf("xfs_repair -n does not see a dirty log:\n%s", out)
	}
	if err := openErr(t, img, nil); !errors.Is(err, ErrNeedsRecovery) {
		t.Fatalf("Open: %v, want ErrNeedsRecovery", err)
	}
	f := openImage(t, img, &Options{AllowDirtyLog: true})
	if f.Log().Clean {
		t.Fatalf("log reported clean")
	}
	// What is only in the log is not seen (no replay): the tree reads as
	// of the last checkpoint, without errors of unknown class.
	if _, err := f.ReadDir("/"); err != nil {
		t.Fatalf("ReadDir(/) of the unreplayed filesystem: %v", err)
	}
	if _, errs := walkAll(f); len(errs) != 0 {
		t.Fatalf("walk of the unreplayed filesystem: %v", errs)
	}
}
