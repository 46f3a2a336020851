package xfs

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// parseXattrs reads guestfish's lgetxattrs listings, each after an
// "==path==" marker line, into path → name → value.
func parseXattrs(t *testing.T, out string) map[string]map[string]string {
	t.Helper()
	got := map[string]map[string]string{}
	var cur map[string]string
	name := ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimLeft(l, " ") // a value may end in spaces
		switch {
		case len(l) > 4 && strings.HasPrefix(l, "==") && strings.HasSuffix(strings.TrimSpace(l), "=="):
			cur = map[string]string{}
			got[strings.Trim(strings.TrimSpace(l), "=")] = cur
		case strings.HasPrefix(l, "attrname: "):
			name = strings.TrimSpace(strings.TrimPrefix(l, "attrname: "))
		case strings.HasPrefix(l, "attrval: ") && cur != nil:
			cur[name] = unescapeGuestfish(t, strings.TrimPrefix(l, "attrval: "))
		}
	}
	return got
}

// unescapeGuestfish undoes guestfish's \xNN escapes of buffer values.
func unescapeGuestfish(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				t.Fatalf("escape in %q: %v", s, err)
			}
			b.WriteByte(byte(v))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestXattrKernel: attributes the engine wrote in short form, in a leaf
// block with remote values and in a node over leaves (v5 and v4) are read by a real kernel
// (the libguestfs appliance) exactly; the kernel then adds and removes
// attributes on the same inodes; dmesg shows no XFS complaint, xfs_repair
// -n stays clean, and the engine reads the kernel's result and writes
// more on top. The kernel also labels twins of the engine's objects: the
// fork offsets it chooses are the engine's.
func TestXattrKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: boots the libguestfs appliance under software emulation (run without -short)")
	}
	label := "system_u:object_r:etc_t:s0\x00"
	imgs := []string{emptyImage(t), emptyImage(t, "-m", "crc=0")}
	want := []map[string]map[string]string{{}, {}}
	var sc strings.Builder
	sc.WriteString("run\n")
	for k, img := range imgs {
		f := openRW(t, img)
		for _, p := range []string{"/f", "/leaf", "/node", "/kf", "/ef", "/d/x", "/kd/x", "/ed/x"} {
			if err := f.ReplaceFile(p, []byte("data\n")); err != nil {
				if err := f.MakePath(p[:strings.LastIndexByte(p, '/')]); err != nil {
					t.Fatal(err)
				}
				if err := f.ReplaceFile(p, []byte("data\n")); err != nil {
					t.Fatal(err)
				}
			}
		}
		set := func(p, n, v string) {
			t.Helper()
			if err := f.SetXattr(p, n, []byte(v)); err != nil {
				t.Fatalf("SetXattr %s %s: %v", p, n, err)
			}
			if want[k][p] == nil {
				want[k][p] = map[string]string{}
			}
			want[k][p][n] = v
		}
		set("/f", "security.selinux", label)
		set("/f", "user.a", "short form")
		set("/f", "trusted.t", "root")
		set("/d", "security.selinux", label)
		for i := 0; i < 20; i++ {
			set("/leaf", fmt.Sprintf("user.n%02d", i), strings.Repeat(string(rune('a'+i)), 10+i*3))
		}
		set("/leaf", "user.remote", strings.Repeat("remote value ", 600))
		set("/leaf", "security.selinux", label)
		for i := 0; i < 250; i++ { // a node over several leaves
			set("/node", fmt.Sprintf("user.node%04d", i), strings.Repeat(string(rune('a'+i%26)), 40+i%50))
		}
		repairClean(t, img)
		dev := fmt.Sprintf("/dev/sd%c", 'a'+k)
		fmt.Fprintf(&sc, "mount %s /\n", dev)
		for _, p := range []string{"/f", "/d", "/leaf", "/node"} {
			fmt.Fprintf(&sc, "echo ==%d%s==\nlgetxattrs %s\n", k, p, p)
		}
		// The kernel writes: more in each form, a removal, the twins.
		sc.WriteString("setxattr user.kernel kernel-value 12 /f\n")
		sc.WriteString("removexattr user.a /f\n")
		sc.WriteString("setxattr user.kleaf kernel-leaf 11 /leaf\n")
		sc.WriteString("removexattr user.n03 /leaf\n")
		sc.WriteString("setxattr user.knode kernel-node 11 /node\n")
		sc.WriteString("removexattr user.node0007 /node\n")
		fmt.Fprintf(&sc, "setxattr security.selinux %q %d /kf\n", strings.TrimSuffix(label, "\x00"), len(label)-1)
		fmt.Fprintf(&sc, "setxattr security.selinux %q %d /kd\n", strings.TrimSuffix(label, "\x00"), len(label)-1)
		sc.WriteString("umount-all\n")
		want[k]["/f"]["user.kernel"] = "kernel-value"
		delete(want[k]["/f"], "user.a")
		want[k]["/leaf"]["user.kleaf"] = "kernel-leaf"
		delete(want[k]["/leaf"], "user.n03")
		want[k]["/node"]["user.knode"] = "kernel-node"
		delete(want[k]["/node"], "user.node0007")
		// The engine labels the twins the kernel labels, with the
		// kernel's value (the guestfish string carries no NUL).
		for _, p := range []string{"/ef", "/ed"} {
			if err := f.SetXattr(p, "security.selinux", []byte(strings.TrimSuffix(label, "\x00"))); err != nil {
				t.Fatal(err)
			}
		}
	}
	sc.WriteString("echo ==dmesg==\ndmesg\n")
	disks := make([]string, 0, 2*len(imgs))
	for _, img := range imgs {
		disks = append(disks, "-a", img)
	}
	out := guestfishDisks(t, disks, sc.String())
	before, dmesg, _ := strings.Cut(out, "==dmesg==")
	for _, line := range strings.Split(dmesg, "\n") {
		if xfsKernelErrors.MatchString(line) {
			t.Errorf("kernel: %s", line)
		}
	}
	if n := len(regexp.MustCompile(`XFS \(sd[a-z]\): Unmounting Filesystem`).FindAllString(dmesg, -1)); n != len(imgs) {
		t.Fatalf("the kernel unmounted %d filesystems, want %d:\n%s", n, len(imgs), dmesg)
	}
	read := parseXattrs(t, before)
	if len(read) != 4*len(imgs) {
		t.Fatalf("guestfish listed %d objects:\n%.3000s", len(read), before)
	}
	for k, img := range imgs {
		for _, p := range []string{"/f", "/d", "/leaf", "/node"} {
			// What the kernel read was written before its own changes.
			w := maps.Clone(want[k][p])
			switch p {
			case "/f":
				delete(w, "user.kernel")
				w["user.a"] = "short form"
			case "/leaf":
				delete(w, "user.kleaf")
				w["user.n03"] = strings.Repeat("d", 19)
			case "/node":
				delete(w, "user.knode")
				w["user.node0007"] = strings.Repeat("h", 47)
			}
			// The appliance lists trusted.* only to root, as the kernel does; guestfsd is root.
			g := read[fmt.Sprintf("%d%s", k, p)]
			for n, v := range w {
				if gv, ok := g[n]; gv != v {
					t.Errorf("image %d: the kernel reads %s %s as %d bytes %.80q (present %v), the engine wrote %d bytes %.80q", k, p, n, len(gv), gv, ok, len(v), v)
				}
			}
			for n := range g {
				if _, ok := w[n]; !ok {
					t.Errorf("image %d: the kernel reads %s %s, which the engine did not write", k, p, n)
				}
			}
		}
		repairClean(t, img)
		for p, w := range want[k] {
			wb := map[string][]byte{}
			for n, v := range w {
				wb[n] = []byte(v)
			}
			wantAttrs(t, img, p, wb)
		}
		// The kernel's fork offsets for its twins are the engine's.
		g := openImage(t, img, nil)
		for _, p := range []string{"/kf", "/kd"} {
			kin, ein := pathInode(t, g, p), pathInode(t, g, strings.Replace(p, "/k", "/e", 1))
			if kin.core.ForkOff != ein.core.ForkOff || kin.core.AFormat != ein.core.AFormat {
				t.Errorf("image %d %s: kernel forkoff %d aformat %s, engine %d %s", k, p, kin.core.ForkOff, kin.core.AFormat, ein.core.ForkOff, ein.core.AFormat)
			}
		}
		// The engine writes on top of the kernel's attributes.
		f := openRW(t, img)
		for _, c := range []struct{ p, n, v string }{{"/f", "user.after", "engine again"}, {"/leaf", "user.after", strings.Repeat("z", 2000)}, {"/node", "user.after", "on the kernel's node"}} {
			if err := f.SetXattr(c.p, c.n, []byte(c.v)); err != nil {
				t.Fatal(err)
			}
			want[k][c.p][c.n] = c.v
		}
		for _, c := range []struct{ p, n string }{{"/f", "user.kernel"}, {"/leaf", "user.kleaf"}, {"/node", "user.knode"}, {"/node", "user.node0100"}} {
			if err := f.RemoveXattr(c.p, c.n); err != nil {
				t.Fatal(err)
			}
			delete(want[k][c.p], c.n)
		}
		repairClean(t, img)
		for p, w := range want[k] {
			wb := map[string][]byte{}
			for n, v := range w {
				wb[n] = []byte(v)
			}
			wantAttrs(t, img, p, wb)
		}
	}
}

// guestfishDisks runs a guestfish script read-write on the disks (-a
// arguments) in the libguestfs appliance and returns its output.
func guestfishDisks(t *testing.T, disks []string, script string) string {
	t.Helper()
	needTool(t, "guestfish")
	sf := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(sf, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("guestfish", append(append([]string{"--rw"}, disks...), "-f", sf)...)
	cmd.Env = append(os.Environ(), "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("guestfish: %v\n%s", err, out)
	}
	return string(out)
}
