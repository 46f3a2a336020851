package xfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// guestfish runs a guestfish script read-write on img in the libguestfs
// appliance (a real Linux kernel, software emulation) and returns its
// output.
func guestfish(t *testing.T, img, script string) string {
	t.Helper()
	needTool(t, "guestfish")
	sf := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(sf, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("guestfish", "--rw", "-a", img, "-f", sf)
	cmd.Env = append(os.Environ(), "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("guestfish: %v\n%s", err, out)
	}
	return string(out)
}

// xfsKernelErrors matches the kernel's XFS complaints in dmesg.
var xfsKernelErrors = regexp.MustCompile(`(?i)XFS.*(corrupt|error|internal|shutdown|verifier|bad )`)

// TestDirKernelWritesMore: directories the engine grew into every form
// (short, block, leaf, node, node with a bmap btree fork), with removals
// and a rename over a name, are mounted by a real kernel, which adds and
// removes names in each; dmesg shows no XFS complaint, xfs_repair -n
// stays clean, and the engine then reads the kernel's changes and
// writes more on top of them (stale leaf entries, the kernel's bests),
// again checked by xfs_repair, xfs_db and the engine.
func TestDirKernelWritesMore(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: boots the libguestfs appliance under software emulation (run without -short)")
	}
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	img := emptyImage(t)
	f := openRW(t, img)
	root := f.sb.RootIno
	sizes := []struct {
		name string
		n    int
	}{{"sf", 3}, {"block", 20}, {"leaf", 200}, {"node", 800}, {"big0", 2100}, {"big1", 2100}}
	dirs := map[string]uint64{}
	want := map[string]map[string]uint64{}
	tr, _ := f.begin()
	keep, err := tr.create(root, "keep", vfs.UnixDir|0o755, 0, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	want["keep"] = map[string]uint64{}
	for _, s := range sizes {
		if dirs[s.name], err = tr.create(root, s.name, vfs.UnixDir|0o755, 0, 0, now); err != nil {
			t.Fatal(err)
		}
		want[s.name] = map[string]uint64{}
	}
	for i := 0; i < 2100; i++ {
		for _, s := range sizes {
			if i >= s.n {
				continue
			}
			name := dirName(i, 30)
			ino, err := tr.create(dirs[s.name], name, vfs.UnixRegular|0o644, 0, 0, now)
			if err != nil {
				t.Fatal(err)
			}
			want[s.name][name] = ino
		}
	}
	// Every third name removed (kept linked in /keep), and one renamed
	// over another.
	for _, s := range sizes {
		for i := 0; i < s.n; i += 3 {
			name := dirName(i, 30)
			ino, err := tr.dirRemoveEntry(dirs[s.name], name, now)
			if err != nil {
				t.Fatal(err)
			}
			delete(want[s.name], name)
			kn := s.name + "-" + name
			if err := tr.dirAddEntry(keep, kn, ino, vfs.UnixRegular|0o644, now); err != nil {
				t.Fatal(err)
			}
			want["keep"][kn] = ino
		}
		if s.n > 2 {
			a, b := dirName(1, 30), dirName(2, 30)
			old, err := tr.dirReplaceEntry(dirs[s.name], a, want[s.name][b], vfs.UnixRegular|0o644, now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.dirRemoveEntry(dirs[s.name], b, now); err != nil {
				t.Fatal(err)
			}
			want[s.name][a] = want[s.name][b]
			delete(want[s.name], b)
			kn := s.name + "-renamed-over"
			if err := tr.dirAddEntry(keep, kn, old, vfs.UnixRegular|0o644, now); err != nil {
				t.Fatal(err)
			}
			want["keep"][kn] = old
		}
	}
	if err := tr.commit(); err != nil {
		t.Fatal(err)
	}
	for name, d := range dirs {
		form, format := checkDir(t, img, d, "/"+name, want[name])
		t.Logf("engine wrote /%s: %d names, %s form, fork %s", name, len(want[name]), form, format)
	}
	// The kernel: 150 new names and a subdirectory in each directory,
	// 40 of the engine's names removed.
	var sc strings.Builder
	sc.WriteString("run\nmount /dev/sda /\n")
	kernelNames := map[string][]string{}
	for _, s := range sizes {
		for i := 0; i < 150; i++ {
			n := fmt.Sprintf("kern-%d-%s", i, strings.Repeat("k", i%40))
			kernelNames[s.name] = append(kernelNames[s.name], n)
			fmt.Fprintf(&sc, "touch /%s/%s\n", s.name, n)
		}
		fmt.Fprintf(&sc, "mkdir /%s/kdir\n", s.name)
		kernelNames[s.name] = append(kernelNames[s.name], "kdir")
		removed := 0
		for name := range want[s.name] {
			if removed == 40 {
				break
			}
			fmt.Fprintf(&sc, "rm /%s/%s\n", s.name, name)
			delete(want[s.name], name)
			removed++
		}
	}
	sc.WriteString("umount-all\necho ==dmesg==\ndmesg\n")
	out := guestfish(t, img, sc.String())
	_, dmesg, _ := strings.Cut(out, "==dmesg==")
	for _, line := range strings.Split(dmesg, "\n") {
		if xfsKernelErrors.MatchString(line) {
			t.Errorf("kernel: %s", line)
		}
	}
	if !strings.Contains(dmesg, "XFS (sda): Unmounting Filesystem") {
		t.Fatalf("the kernel did not mount and unmount the filesystem:\n%s", dmesg)
	}
	repairClean(t, img)
	// The kernel's inode numbers, from xfs_db; then the engine writes
	// on top of the kernel's directories.
	for _, s := range sizes {
		db := dbListing(t, img, "/"+s.name)
		for _, n := range kernelNames[s.name] {
			ino, ok := db[n]
			if !ok {
				t.Fatalf("xfs_db does not list the kernel's /%s/%s", s.name, n)
			}
			want[s.name][n] = ino
		}
	}
	f = openRW(t, img)
	tr, _ = f.begin()
	for _, s := range sizes {
		for i := 0; i < 100; i++ {
			name := fmt.Sprintf("after-%d", i)
			ino, err := tr.create(dirs[s.name], name, vfs.UnixRegular|0o600, 0, 0, now)
			if err != nil {
				t.Fatal(err)
			}
			want[s.name][name] = ino
		}
		for _, n := range kernelNames[s.name][:30] {
			ino, err := tr.dirRemoveEntry(dirs[s.name], n, now)
			if err != nil || ino != want[s.name][n] {
				t.Fatalf("engine removes the kernel's /%s/%s: %d, %v", s.name, n, ino, err)
			}
			delete(want[s.name], n)
			kn := s.name + "-" + n
			if err := tr.dirAddEntry(keep, kn, ino, vfs.UnixRegular|0o644, now); err != nil {
				t.Fatal(err)
			}
			want["keep"][kn] = ino
		}
	}
	if err := tr.commit(); err != nil {
		t.Fatal(err)
	}
	for name, d := range dirs {
		form, format := checkDir(t, img, d, "/"+name, want[name])
		t.Logf("after the kernel and the engine again /%s: %d names, %s form, fork %s", name, len(want[name]), form, format)
	}
	checkDir(t, img, keep, "/keep", want["keep"])
}
