package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestinject/guestinject/inject/diskimage"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext"
)

// killTree describes every object of the image's guest filesystem, read
// through the engine (a journal that needs recovery is replayed in
// memory: our own replay). The root password hash in /etc/shadow is
// masked when it is not the old one (its salt is random per run).
func killTree(t *testing.T, img string, oldShadow []byte) map[string]string {
	t.Helper()
	im, err := diskimage.Open(img, diskimage.Options{Partition: "none", NoLock: true})
	if err != nil {
		t.Fatalf("opening %s: %v", img, err)
	}
	defer im.Close()
	fsys := im.FS.(*ext.FS)
	tree := map[string]string{}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := fsys.ReadDir(dir)
		if err != nil {
			t.Fatalf("%s: readdir %s: %v", img, dir, err)
		}
		for _, e := range ents {
			p := path.Join(dir, e.Name)
			d := fmt.Sprintf("%v %d:%d", e.Mode, e.UID, e.GID)
			switch {
			case e.Mode.IsRegular():
				b, err := fsys.ReadFile(p)
				if err != nil {
					t.Fatalf("%s: %s: %v", img, p, err)
				}
				if p == "/etc/shadow" && !bytes.Equal(b, oldShadow) {
					b = maskRootHash(b)
				}
				d += fmt.Sprintf(" %x", sha256.Sum256(b))
			case e.Mode&fs.ModeSymlink != 0:
				d += " -> " + e.Target
			}
			tree[p] = d
			if e.IsDir() {
				walk(p)
			}
		}
	}
	walk("/")
	return tree
}

// maskRootHash replaces root's password hash by a fixed word.
func maskRootHash(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[0] == "root" {
			lines[i] = "root:<hash>:" + f[2]
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestKillDuringInjection runs the CLI with the whole payload (keys,
// network, metadata, files, password) against copies of a real ext4
// image and kills it (SIGKILL) after a random delay up to a whole run's
// time, again and again. Every image left must read (through our replay)
// as the guest before the injection or the guest with the whole payload,
// e2fsck -fy's replay must agree, and e2fsck -fn must then be clean.
// Short mode runs 8 kills, the full test 60.
func TestKillDuringInjection(t *testing.T) {
	testtool.Need(t, "mkfs.ext4", "e2fsck", "cp")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-O", "metadata_csum,64bit", "-d", testtool.DemoGuest(t), base, "256M")
	p := newPayload(t)
	args := append(append([]string{}, p.args...), "--quiet")
	oldShadow := readGuest(t, base, "/etc/shadow")
	old := killTree(t, base, oldShadow)

	full := filepath.Join(dir, "full.img")
	testtool.Run(t, "cp", "--sparse=always", base, full)
	start := time.Now()
	mustCLI(t, append(args, full)...)
	whole := time.Since(start)
	neu := killTree(t, full, oldShadow)
	if equalTrees(old, neu) {
		t.Fatal("the injection changed nothing")
	}
	runs := 60
	if testing.Short() {
		runs = 8
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var nOld, nNew, nLive int
	img := filepath.Join(dir, "t.img")
	for i := 0; i < runs; i++ {
		os.Remove(img)
		testtool.Run(t, "cp", "--sparse=always", base, img)
		cmd := exec.Command(injectBin, append(args, img)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int63n(int64(whole) + 1))
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		live := raw[1024+0x60]&0x4 != 0 // needs_recovery: a journal transaction was left live
		mine := killTree(t, img, oldShadow)
		switch {
		case equalTrees(mine, old):
			nOld++
		case equalTrees(mine, neu):
			nNew++
		default:
			t.Fatalf("run %d (killed after %v): the image holds part of the payload", i, delay)
		}
		if live {
			nLive++
		}
		if out, code := testtool.Output(t, "e2fsck", "-fy", img); code >= 4 {
			t.Fatalf("run %d: e2fsck -fy exit %d\n%s", i, code, out)
		}
		if out, code := testtool.Output(t, "e2fsck", "-fn", img); code != 0 {
			t.Fatalf("run %d: e2fsck -fn after -fy: exit %d\n%s", i, code, out)
		}
		if theirs := killTree(t, img, oldShadow); !equalTrees(theirs, mine) {
			t.Fatalf("run %d: e2fsck's replay and ours differ", i)
		}
	}
	t.Logf("%d kills within %v: %d left the old guest, %d the whole payload (%d with a live journal transaction)", runs, whole, nOld, nNew, nLive)
}

// readGuest reads a file of the guest filesystem in img.
func readGuest(t *testing.T, img, p string) []byte {
	t.Helper()
	im, err := diskimage.Open(img, diskimage.Options{Partition: "none", NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	b, err := im.FS.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
