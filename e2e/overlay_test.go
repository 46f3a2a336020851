package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/diskimage"
	"github.com/guestinject/guestinject/internal/testtool"
)

// TestNovaOverlay: inject --overlay NEW --size SIZE BASE creates a larger
// qcow2 overlay on a raw or qcow2 base, injects into it, and leaves the
// base byte for byte as it was.
func TestNovaOverlay(t *testing.T) {
	for _, ln := range []string{"gpt", "mbr-logical"} {
		for _, c := range []container{rawContainer, qcow2Container, chain3Container} {
			l := layoutNamed(ln)
			t.Run(l.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				novaCase(t, l, c)
			})
		}
	}
}

func novaCase(t *testing.T, l layout, c container) {
	raw := l.disk(t)
	dir := t.TempDir()
	base := c.make(t, l, raw, dir)
	before := otherFiles(t, dir, "")
	over := filepath.Join(dir, "vm.qcow2")
	p := newPayload(t)
	r := cli(t, append(p.args, "--json", "--overlay", over, "--size", "1G", base)...)
	if r.code != 0 {
		if _, err := os.Stat(over); err == nil {
			t.Errorf("a failed --overlay run left %s behind", over)
		}
		if !strings.Contains(r.stderr, "removed the overlay") && r.code == 1 {
			t.Errorf("a failed --overlay run does not say the overlay was removed:\n%s", r.stderr)
		}
		if !gap(t, "nova/"+l.name+"/"+c.name) {
			t.Fatalf("inject --overlay: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return
	}
	if !strings.Contains(r.stdout, `"overlay": "`+over+`"`) || !strings.Contains(r.stdout, `"ok": true`) {
		t.Errorf("--json report:\n%s", r.stdout)
	}
	info := string(testtool.Run(t, "qemu-img", "info", over))
	if !strings.Contains(info, "virtual size: 1 GiB") || !strings.Contains(info, "backing file: "+filepath.Base(base)) {
		t.Errorf("qemu-img info of the overlay:\n%s", info)
	}
	writeChecks(t, l, over, p)
	if after := otherFiles(t, dir, over); after != before {
		t.Errorf("the base or its chain changed:\n%s\n%s", before, after)
	}
	novaTeeCompare(t, l, c, raw)
}

// novaTeeCompare makes the same overlay in process, injects through a tee
// into the raw disk grown to the overlay's size, and compares.
func novaTeeCompare(t *testing.T, l layout, c container, raw string) {
	t.Helper()
	dir := t.TempDir()
	base := c.make(t, l, raw, dir)
	over := filepath.Join(dir, "vm.qcow2")
	must(t, formats.CreateOverlay(over, base, formats.OverlayOptions{Size: 1 << 30}))
	want := toRaw(t, base)
	must(t, os.Truncate(want, 1<<30))
	rf, err := os.OpenFile(want, os.O_RDWR, 0)
	must(t, err)
	defer rf.Close()
	disk, err := formats.Open(over, formats.Options{Backing: formats.BackingAllow})
	must(t, err)
	im, err := diskimage.OpenDisk(&teeDisk{disk, rf}, diskimage.Options{Writable: true})
	if err != nil {
		disk.Close()
		t.Fatal(err)
	}
	_, err = inject.Apply(im.FS, newPayload(t).data(t), nil)
	if cerr := im.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if !gap(t, "nova/"+l.name+"/"+c.name) {
			t.Fatal(err)
		}
		return
	}
	qemuCheckClean(t, over)
	qemuIdentical(t, want, over)
	e2fsckClean(t, want, l.start)
}

// TestInUseByQemu: while qemu-io holds an image (as a running VM would),
// every verb refuses it with "image is in use" and the image is untouched;
// once qemu lets go, the same command works.
func TestInUseByQemu(t *testing.T) {
	l := layoutNamed("gpt")
	raw := l.disk(t)
	img := qcow2Container.make(t, l, raw, t.TempDir())
	sum := fileSum(t, img)
	cmd := exec.Command(testtool.Need(t, "qemu-io")[0], img)
	stdin, err := cmd.StdinPipe()
	must(t, err)
	must(t, cmd.Start())
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stdin.Close()
			cmd.Wait()
		}
	}
	defer stop()
	waitQemuLock(t, img)
	p := newPayload(t)
	for _, args := range [][]string{
		{"cat", img, "/etc/hostname"}, {"ls", img, "/"}, {"inspect", img},
		append(append([]string{}, p.args...), img),
		append(append([]string{"--dry-run"}, p.args...), img),
		append(append([]string{"--overlay", filepath.Join(t.TempDir(), "vm.qcow2")}, p.args...), img),
	} {
		r := cli(t, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "image is in use") || !strings.Contains(r.stderr, img) {
			t.Errorf("inject %v while qemu-io holds the image: exit %d\n%s", args[0], r.code, r.stderr)
		}
	}
	stop()
	if fileSum(t, img) != sum {
		t.Error("the image changed while qemu held it")
	}
	if got := mustCLI(t, "cat", img, "/etc/image-name"); got != "gpt\n" {
		t.Errorf("after qemu-io exited: %q", got)
	}
}

// waitQemuLock polls, without taking a lock itself (which would make
// qemu-io fail to open the image), until another process holds qemu's
// "write" permission byte (101) of img.
func waitQemuLock(t *testing.T, img string) {
	t.Helper()
	f, err := os.Open(img)
	must(t, err)
	defer f.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 101, Len: 1}
		must(t, unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk))
		if lk.Type != unix.F_UNLCK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("qemu-io never locked the image")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOffsetOnPartitionedQcow2: --offset bypasses the table on a qcow2
// disk too, and --partition picks a partition that auto would not.
func TestOffsetOnPartitionedQcow2(t *testing.T) {
	l := layoutNamed("mbr-logical")
	raw := l.disk(t)
	img := qcow2Container.make(t, l, raw, t.TempDir())
	if got := mustCLI(t, "cat", "--offset", itoa(l.start), img, "/etc/image-name"); got != "mbr-logical\n" {
		t.Errorf("--offset: %q", got)
	}
	if got := mustCLI(t, "ls", "--partition", "1", img, "/"); !strings.Contains(got, "data.bin\n") {
		t.Errorf("--partition 1:\n%s", got)
	}
	r := cli(t, "cat", "--partition", "5", img, "/etc/passwd")
	if r.code != 1 || !strings.Contains(r.stderr, img) || !strings.Contains(r.stderr, "partition 5") {
		t.Errorf("--partition 5 (swap): exit %d\n%s", r.code, r.stderr)
	}
	r = cli(t, "cat", img, "/etc/no-such-file")
	if r.code != 1 || !strings.Contains(r.stderr, img+" partition 6") || !strings.Contains(r.stderr, "/etc/no-such-file") {
		t.Errorf("missing file: exit %d\n%s", r.code, r.stderr)
	}
}
