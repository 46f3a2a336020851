package e2e

// The boot tests: real Debian guests, built by fixtures/boot/mkguest.sh
// (one cached debootstrap tree, variants made by switching services with
// file edits, images written with mke2fs -d or mkfs.xfs -p, never mounted),
// get what inject (or a seed made by inject seed) writes, boot under qemu
// (TCG, user networking) and must come up with it: ssh in with the injected
// key on the injected static address, and look at the guest from inside.
//
// Skipped under -short only; a missing qemu or debootstrap fails the test.
// Run one alone: go test ./e2e -run 'TestBoot/ifupdown' -v -timeout 30m

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/diskimage"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
)

const (
	// bootIP is the static address every test gives eth0. It is not the
	// address qemu's user network hands out by DHCP (10.0.2.15), so a guest
	// that fell back to DHCP does not pass; hostfwd connects to it.
	bootIP = "10.0.2.50"
	bootGW = "10.0.2.2"
	// baseTimeout bounds the debootstrap of the cached tree.
	baseTimeout = 20 * time.Minute
)

var (
	bootBaseOnce sync.Once
	bootBaseDir  string
	bootBaseErr  error
	// bootSlots lets two guests run at once (2-core machines).
	bootSlots = make(chan struct{}, bootParallel())
	// bootTimeout bounds one guest's boot to ssh (TCG); the checks get 2
	// minutes more. $GUESTINJECT_BOOT_TIMEOUT (a Go duration) overrides it.
	bootTimeout = envDuration("GUESTINJECT_BOOT_TIMEOUT", 8*time.Minute)
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func bootParallel() int {
	if n, err := strconv.Atoi(os.Getenv("GUESTINJECT_BOOT_PARALLEL")); err == nil && n > 0 {
		return n
	}
	return 2
}

// bootBase builds (or reuses) the cached guest tree and returns its
// directory: tree/, vmlinuz, initrd.img.
func bootBase(t *testing.T) string {
	t.Helper()
	testtool.Need(t, "debootstrap", "mke2fs", "qemu-system-x86_64")
	bootBaseOnce.Do(func() {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), baseTimeout)
		defer cancel()
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", "../fixtures/boot/mkguest.sh", "base")
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			bootBaseErr = fmt.Errorf("mkguest.sh base: %v\n%s", err, errb.String())
			return
		}
		bootBaseDir = strings.TrimSpace(out.String())
		t.Logf("guest tree ready in %s (%v)", bootBaseDir, time.Since(start).Round(time.Second))
	})
	if bootBaseErr != nil {
		t.Fatal(bootBaseErr)
	}
	return bootBaseDir
}

// bootImage makes the image of one variant (mkguest.sh image).
func bootImage(t *testing.T, variant, fs string) string {
	t.Helper()
	bootBase(t)
	img := filepath.Join(t.TempDir(), variant+"-"+fs+".img")
	start := time.Now()
	testtool.Run(t, "bash", "../fixtures/boot/mkguest.sh", "image", variant, img, fs)
	t.Logf("image %s/%s built in %v", variant, fs, time.Since(start).Round(time.Second))
	return img
}

// bootKey is a fresh ed25519 key: its authorized_keys line in a file and
// the signer ssh logs in with.
func bootKey(t *testing.T) (pubFile string, signer ssh.Signer) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	sp, err := ssh.NewPublicKey(pub)
	must(t, err)
	signer, err = ssh.NewSignerFromKey(priv)
	must(t, err)
	pubFile = filepath.Join(t.TempDir(), "k.pub")
	must(t, os.WriteFile(pubFile, []byte(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))+" boot-test\n"), 0o644))
	return pubFile, signer
}

// freePort is a TCP port on 127.0.0.1 nobody listens on (for hostfwd).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// guest is one running qemu.
type guest struct {
	t       *testing.T
	console string
	port    int
	signer  ssh.Signer
	client  *ssh.Client
	started time.Time
}

// bootVM boots img (raw) with the cached kernel and initramfs, extra qemu
// arguments appended (a seed CD-ROM), and waits until ssh as root with
// signer works on bootIP (through hostfwd). The console is logged when the
// test fails; qemu is killed at cleanup.
func bootVM(t *testing.T, img string, signer ssh.Signer, extra ...string) *guest {
	t.Helper()
	return bootVMRoot(t, img, "root=/dev/vda", signer, extra...)
}

// bootVMRoot is bootVM with the kernel parameters that name the root
// ("root=/dev/mapper/VG-LV rootdelay=N" for a logical volume, which the
// initramfs activates).
func bootVMRoot(t *testing.T, img, rootArgs string, signer ssh.Signer, extra ...string) *guest {
	t.Helper()
	base := bootBase(t)
	qemu := testtool.Need(t, "qemu-system-x86_64")[0]
	bootSlots <- struct{}{}
	t.Cleanup(func() { <-bootSlots })
	g := &guest{t: t, console: filepath.Join(t.TempDir(), "console.log"), port: freePort(t), signer: signer, started: time.Now()}
	args := []string{
		"-accel", "tcg", "-m", "1024", "-smp", "1",
		"-nodefaults", "-display", "none", "-no-reboot",
		"-serial", "file:" + g.console,
		"-kernel", filepath.Join(base, "vmlinuz"), "-initrd", filepath.Join(base, "initrd.img"),
		// no_timer_check: a TCG vCPU starved by a loaded host fails the kernel's
		// IO-APIC timer check ("IO-APIC + timer doesn't work!", a panic at 0.06 s)
		"-append", rootArgs + " rw console=ttyS0 net.ifnames=0 panic=-1 no_timer_check",
		"-drive", "file=" + img + ",format=raw,if=virtio",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-%s:22", g.port, bootIP),
		"-device", "virtio-net-pci,netdev=n0",
	}
	args = append(args, extra...)
	// qemu lives for the boot and the checks; the wait for ssh has its own bound
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout+2*time.Minute)
	cmd := exec.CommandContext(ctx, qemu, args...)
	var qout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qout, &qout
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(g.console)
			t.Logf("qemu output:\n%s\nserial console (%s):\n%s", qout.String(), g.console, b)
		}
	})
	cfg := &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a throwaway guest: its host key is the tree's
		Timeout:         20 * time.Second,
	}
	var lastErr error
	deadline := time.After(bootTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("qemu exited before ssh came up: %v", err)
		case <-deadline:
			t.Fatalf("no ssh as root on %s within %v: last error: %v", bootIP, bootTimeout, lastErr)
		case <-time.After(3 * time.Second):
		}
		c, err := ssh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", g.port), cfg)
		if err == nil {
			g.client = c
			t.Cleanup(func() { c.Close() })
			t.Logf("ssh as root on %s after %v", bootIP, time.Since(g.started).Round(time.Second))
			return g
		}
		lastErr = err
	}
}

// run runs a shell command in the guest and returns its output.
func (g *guest) run(cmd string) string {
	g.t.Helper()
	s, err := g.client.NewSession()
	must(g.t, err)
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		g.t.Fatalf("guest: %s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// checkStatic asserts that eth0 has bootIP/24 and no other IPv4 address
// (not qemu's DHCP one), and that the default route goes to bootGW.
func (g *guest) checkStatic() {
	g.t.Helper()
	addr := g.run("ip -4 -o addr show dev eth0")
	if !strings.Contains(addr, "inet "+bootIP+"/24 ") {
		g.t.Errorf("eth0 lacks %s/24:\n%s", bootIP, addr)
	}
	if n := strings.Count(addr, "inet "); n != 1 {
		g.t.Errorf("eth0 has %d IPv4 addresses, want only the injected one:\n%s", n, addr)
	}
	if route := g.run("ip -4 route show default"); !strings.Contains(route, "default via "+bootGW+" dev eth0") {
		g.t.Errorf("default route is not via %s on eth0:\n%s", bootGW, route)
	}
}

// injectBoot injects a key, the static address and /meta.js into img,
// checks that the report names the network format expected, and that
// e2fsck -fn (ext4) or xfs_repair -n (XFS) finds the image clean before it
// boots.
func injectBoot(t *testing.T, img, pub, wantFormat, fs string) {
	t.Helper()
	out := mustCLI(t, "--json", "--key", pub, "--ip", "eth0="+bootIP+"/24,gw="+bootGW, "--meta", "boot=yes", img)
	if !strings.Contains(out, `"format": "`+wantFormat+`"`) && !strings.Contains(out, `"format":"`+wantFormat+`"`) {
		t.Fatalf("inject did not choose %s:\n%s", wantFormat, out)
	}
	switch fs {
	case "ext4":
		e2fsckClean(t, img, 0)
	case "xfs":
		if out, code := testtool.Output(t, "xfs_repair", "-n", "-f", img); code != 0 {
			t.Fatalf("xfs_repair -n after inject: exit %d\n%s", code, out)
		}
	}
}

// TestBoot: guests with each network stack boot to ssh on the address
// inject wrote, with the key inject wrote, and find /meta.js.
func TestBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boot tests: debootstrap and qemu guests (minutes); not under -short")
	}
	start := time.Now()
	t.Cleanup(func() { t.Logf("boot tests: %v in all", time.Since(start).Round(time.Second)) })
	bootBase(t)
	for _, c := range []struct{ variant, fs, format string }{
		{"ifupdown", "ext4", "ifupdown"},
		{"nm", "ext4", "networkmanager"},
		{"networkd", "ext4", "networkd"},
		{"ifupdown", "xfs", "ifupdown"},
	} {
		t.Run(c.variant+"-"+c.fs, func(t *testing.T) {
			t.Parallel()
			if c.fs == "xfs" {
				xfsWritable(t)
			}
			img := bootImage(t, c.variant, c.fs)
			pub, signer := bootKey(t)
			injectBoot(t, img, pub, c.format, c.fs)
			g := bootVM(t, img, signer)
			g.checkStatic()
			if meta := g.run("cat /meta.js"); meta != "{\"boot\": \"yes\"}\n" {
				t.Errorf("/meta.js in the guest = %q", meta)
			}
			if c.variant == "nm" {
				// the profile is NetworkManager's, not a fallback: it is the active connection on eth0
				if act := g.run("nmcli -t -f NAME,DEVICE connection show --active"); !strings.Contains(act, "eth0:eth0") {
					t.Errorf("NetworkManager's active connections do not include the injected eth0 profile:\n%s", act)
				}
			}
			if c.variant == "networkd" {
				if st := g.run("networkctl status eth0 --no-pager"); !strings.Contains(st, "05-guestinject-eth0.network") {
					t.Errorf("networkd did not configure eth0 from the injected file:\n%s", st)
				}
			}
		})
	}
	// LVM: the root is logical volume guestvg/root (lvm_test.go).
	t.Run("lvm-ifupdown-ext4", func(t *testing.T) {
		t.Parallel()
		bootLVM(t)
	})
	// cloud-init: the guest image is untouched; the seed made by inject seed
	// is attached as a CD-ROM and cloud-init configures the guest from it.
	for _, format := range []string{"nocloud", "configdrive"} {
		t.Run("cloudinit-"+format, func(t *testing.T) {
			t.Parallel()
			img := bootImage(t, "cloudinit", "ext4")
			pub, signer := bootKey(t)
			seed := filepath.Join(t.TempDir(), "seed.iso")
			host := "seeded-" + format
			mustCLI(t, "seed", "--format", format, "--output", seed, "--hostname", host,
				"--key", pub, "--ip", "eth0="+bootIP+"/24,gw="+bootGW)
			g := bootVM(t, img, signer, "-drive", "file="+seed+",format=raw,media=cdrom,readonly=on")
			g.checkStatic()
			if h := strings.TrimSpace(g.run("hostname")); h != host {
				t.Errorf("hostname in the guest = %q, want %q", h, host)
			}
			if st := g.run("cloud-init status --wait --long || true"); !strings.Contains(st, "status: done") {
				t.Errorf("cloud-init did not finish cleanly:\n%s", st)
			}
		})
	}
}

// xfsWritable skips the XFS variant only if the engine still refuses to
// write XFS, asked by trying a write (then discarded) on a small XFS guest
// made the way the variant's image is (mkfs.xfs -p), before the big image
// is built.
func xfsWritable(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\n"), 0o644))
	proto, err := exec.Command("go", "run", "../vfs/xfs/oracletest/xfsproto", root).Output()
	if err != nil {
		t.Fatalf("xfsproto: %v", err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "proto"), proto, 0o644))
	img := emptyFile(t, filepath.Join(dir, "probe.img"), 300*mib)
	testtool.Run(t, "mkfs.xfs", "-q", "-f", "-p", filepath.Join(dir, "proto"), img)
	im, err := diskimage.Open(img, diskimage.Options{Writable: true})
	if err == nil {
		_, err = inject.Apply(im.FS, &inject.Data{Meta: map[string]string{"probe": "1"}}, nil)
		im.Discard()
		if cerr := im.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if errors.Is(err, vfs.ErrReadOnly) {
		t.Skipf("XFS root: the XFS write engine is missing (inject refuses: %v); the variant runs once it writes", err)
	}
	if err != nil {
		t.Fatalf("probing an XFS write: %v", err)
	}
}
