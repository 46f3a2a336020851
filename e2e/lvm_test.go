package e2e

// Guests whose root is an LVM logical volume (issue 13): the disks come
// from fixtures/lvm/mkimages.sh (lvm2 in libguestfs' appliance wrote their
// labels, metadata and filesystems; testtool.LVMFixtureImage caches them),
// inject finds the root on vg/lv by itself, and the volume's bytes, read
// through the lvm package's mapping, pass the filesystem's checker.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/inject/diskimage"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/lvm"
	"github.com/guestinject/guestinject/partition"
)

// lvmVolume maps logical volume name ("vg/lv") of the raw disk f through
// the lvm package: every partition with an LVM2 label is a physical
// volume, the VG's newest metadata copy (highest seqno) gives the
// mapping. The volume writes through to f when f is writable.
func lvmVolume(t *testing.T, f *os.File, name string) *lvm.Volume {
	t.Helper()
	st, err := f.Stat()
	must(t, err)
	tab, err := partition.Read(f, st.Size())
	must(t, err)
	vgName, lvName, _ := strings.Cut(name, "/")
	var pvs []lvm.PVDevice
	var vg *lvm.VG
	for _, p := range tab.Partitions {
		sec, err := tab.Open(f, p.Number)
		if err != nil {
			continue // an extended partition's container
		}
		pv, err := lvm.ReadPV(sec, sec.Size())
		if errors.Is(err, lvm.ErrNotPV) {
			continue
		}
		must(t, err)
		pvs = append(pvs, lvm.PVDevice{PV: pv, Dev: sec, Size: sec.Size()})
		if len(pv.Metadata) == 0 {
			continue
		}
		g, err := lvm.ParseVG(pv.Metadata)
		must(t, err)
		if g.Name == vgName && (vg == nil || g.Seqno > vg.Seqno) {
			vg = g
		}
	}
	if vg == nil {
		t.Fatalf("%s: no volume group %q on the disk", f.Name(), vgName)
	}
	v, err := vg.Open(lvName, pvs)
	must(t, err)
	return v
}

// lvmChunk is the unit lvmExtract and lvmFill copy in; all-zero chunks
// are left as holes.
const lvmChunk = 1 << 20

// lvmExtract copies logical volume name of the raw disk into a new
// sparse file (for e2fsck, xfs_repair) and returns its path.
func lvmExtract(t *testing.T, raw, name string) string {
	t.Helper()
	f, err := os.Open(raw)
	must(t, err)
	defer f.Close()
	v := lvmVolume(t, f, name)
	out := filepath.Join(t.TempDir(), strings.ReplaceAll(name, "/", "-")+".fs")
	o, err := os.Create(out)
	must(t, err)
	defer o.Close()
	must(t, o.Truncate(v.Size()))
	buf, zero := make([]byte, lvmChunk), make([]byte, lvmChunk)
	for off := int64(0); off < v.Size(); off += lvmChunk {
		n, err := v.ReadAt(buf[:min(lvmChunk, v.Size()-off)], off)
		if err != nil && err != io.EOF {
			t.Fatalf("reading %s at %d: %v", name, off, err)
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			_, err = o.WriteAt(buf[:n], off)
			must(t, err)
		}
	}
	must(t, o.Close())
	return out
}

// lvmFill writes the filesystem image src into logical volume name of the
// raw disk through the lvm package's mapping (the guest's kernel reads it
// through device-mapper's: the boot is the proof they agree). All-zero
// chunks of src are written only where the volume is not already zero,
// so the disk stays sparse.
func lvmFill(t *testing.T, raw, name, src string) {
	t.Helper()
	f, err := os.OpenFile(raw, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	v := lvmVolume(t, f, name)
	in, err := os.Open(src)
	must(t, err)
	defer in.Close()
	st, err := in.Stat()
	must(t, err)
	if st.Size() > v.Size() {
		t.Fatalf("%s (%d bytes) does not fit logical volume %s (%d bytes)", src, st.Size(), name, v.Size())
	}
	buf, have, zero := make([]byte, lvmChunk), make([]byte, lvmChunk), make([]byte, lvmChunk)
	for off := int64(0); off < st.Size(); off += lvmChunk {
		n, err := in.ReadAt(buf[:min(lvmChunk, st.Size()-off)], off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if bytes.Equal(buf[:n], zero[:n]) {
			if _, err := v.ReadAt(have[:n], off); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(have[:n], zero[:n]) {
				continue
			}
		}
		if _, err := v.WriteAt(buf[:n], off); err != nil {
			t.Fatalf("writing %s at %d: %v", name, off, err)
		}
	}
	must(t, f.Sync())
}

// TestLVMXFSRoot: a disk whose only guest root is XFS on logical volume
// vgx/root (lvm2 and mkfs.xfs in the appliance wrote it: 140 MiB linear,
// then a segment striped over both PVs) takes a key, a static address and
// /meta.js with --partition auto, raw and as qcow2. Afterwards xfs_repair -n
// finds the volume's bytes clean, what was written reads back, the 6 MiB
// files the appliance wrote across the volume read back byte for byte,
// and the neighbouring volume vgx/gap is unchanged.
func TestLVMXFSRoot(t *testing.T) {
	fixture := testtool.LVMFixtureImage(t, "lvm-xfs.img")
	testtool.Need(t, "xfs_repair", "qemu-img")
	for _, format := range []string{"raw", "qcow2"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			img := copyFile(t, fixture, filepath.Join(dir, "lvm-xfs.img"))
			if format == "qcow2" {
				q := filepath.Join(dir, "lvm-xfs.qcow2")
				testtool.Run(t, "qemu-img", "convert", "-O", "qcow2", img, q)
				img = q
			}
			gapBefore := fileSum(t, lvmExtract(t, toRaw(t, img), "vgx/gap"))
			pub, _ := bootKey(t)
			out := mustCLI(t, "--json", "--key", pub, "--ip", "eth0="+bootIP+"/24,gw="+bootGW, "--meta", "lvm=xfs", img)
			if !strings.Contains(out, "logical volume vgx/root") || !strings.Contains(out, `"format": "ifupdown"`) {
				t.Fatalf("inject did not write the ifupdown guest on vgx/root:\n%s", out)
			}
			if format == "qcow2" {
				qemuCheckClean(t, img)
			}
			raw := toRaw(t, img)
			root := lvmExtract(t, raw, "vgx/root")
			if out, code := testtool.Output(t, "xfs_repair", "-n", "-f", root); code != 0 {
				t.Fatalf("xfs_repair -n on vgx/root after inject: exit %d\n%s", code, out)
			}
			if fileSum(t, lvmExtract(t, raw, "vgx/gap")) != gapBefore {
				t.Error("injecting into vgx/root changed vgx/gap")
			}
			im, err := diskimage.Open(img, diskimage.Options{})
			must(t, err)
			defer im.Close()
			if im.Volume != "vgx/root" {
				t.Fatalf("reopened root on %q, want vgx/root", im.Volume)
			}
			key, err := os.ReadFile(pub)
			must(t, err)
			read := func(p string) string {
				t.Helper()
				b, err := im.FS.ReadFile(p)
				if err != nil {
					t.Fatalf("reading %s back: %v", p, err)
				}
				return string(b)
			}
			if got := read("/root/.ssh/authorized_keys"); !strings.Contains(got, strings.TrimSpace(string(key))) {
				t.Errorf("authorized_keys = %q", got)
			}
			if got := read("/etc/network/interfaces"); !strings.Contains(got, "address "+bootIP) {
				t.Errorf("the static address is not in /etc/network/interfaces: %q", got)
			}
			if got := read("/meta.js"); got != "{\"lvm\": \"xfs\"}\n" {
				t.Errorf("/meta.js = %q", got)
			}
			for i := 1; i <= 6; i++ {
				p := "/data/d" + itoa(int64(i)) + "/f"
				pat := "XFS-" + itoa(int64(i)) + "-0123456789"
				want := bytes.Repeat([]byte(pat), 6<<20/len(pat)+1)[:6<<20]
				if got := read(p); got != string(want) {
					t.Errorf("%s: %d bytes, not the appliance's pattern", p, len(got))
				}
			}
		})
	}
}

// bootLVM (TestBoot/lvm-ifupdown-ext4): the ifupdown guest's ext4 root,
// written into logical volume guestvg/root of the appliance's boot disk
// (3 GiB in two linear segments with guestvg/swap between them), takes
// what inject writes with --partition auto, passes e2fsck -fn on the
// volume's bytes, and boots with root=/dev/mapper/guestvg-root: the
// tree's initramfs (lvm2's hook and udev rules, dm-mod) activates the VG,
// and the guest answers ssh with the injected key on the injected address
// and finds /meta.js.
func bootLVM(t *testing.T) {
	t.Helper()
	disk := copyFile(t, testtool.LVMFixtureImage(t, "lvm-boot.img"), filepath.Join(t.TempDir(), "lvm-boot.img"))
	fsImg := bootImage(t, "ifupdown", "ext4")
	start := time.Now()
	lvmFill(t, disk, "guestvg/root", fsImg)
	t.Logf("ext4 image written into guestvg/root in %v", time.Since(start).Round(time.Millisecond))
	must(t, os.Remove(fsImg)) // 1 GB the test no longer needs
	pub, signer := bootKey(t)
	out := mustCLI(t, "--json", "--key", pub, "--ip", "eth0="+bootIP+"/24,gw="+bootGW, "--meta", "boot=yes", disk)
	if !strings.Contains(out, "logical volume guestvg/root") || !strings.Contains(out, `"format": "ifupdown"`) {
		t.Fatalf("inject did not write the ifupdown guest on guestvg/root:\n%s", out)
	}
	start = time.Now()
	e2fsckClean(t, lvmExtract(t, disk, "guestvg/root"), 0)
	t.Logf("guestvg/root extracted and checked by e2fsck -fn in %v", time.Since(start).Round(time.Millisecond))
	// The initramfs waits at most 30 s (rootdelay raises it) for root= to be a
	// device holding a filesystem blkid knows; lvm's activation (a udev rule
	// runs pvscan, then vgchange) comes on top of udev's coldplug, which under
	// TCG on a loaded machine can take that long. A volume whose bytes lie
	// elsewhere than device-mapper maps them never qualifies: "ALERT!
	// /dev/mapper/guestvg-root does not exist" on the console.
	g := bootVMRoot(t, disk, "root=/dev/mapper/guestvg-root rootdelay=120", signer)
	g.checkStatic()
	if meta := g.run("cat /meta.js"); meta != "{\"boot\": \"yes\"}\n" {
		t.Errorf("/meta.js in the guest = %q", meta)
	}
	if src := strings.TrimSpace(g.run("findmnt -no SOURCE /")); src != "/dev/mapper/guestvg-root" {
		t.Errorf("the guest's / is %q, want /dev/mapper/guestvg-root", src)
	}
	if segs := strings.TrimSpace(g.run("lvs --noheadings -o seg_count guestvg/root")); segs != "2" {
		t.Errorf("lvs in the guest: guestvg/root has %q segments, want 2", segs)
	}
}
