package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeedCLI: `inject seed` turns the injection flags into a NoCloud
// ISO whose files isoinfo reads back (keys per --key-user group, the
// hostname, the network), twice to the same bytes; bad command lines exit 2
// and leave no output.
func TestSeedCLI(t *testing.T) {
	if _, err := exec.LookPath("isoinfo"); err != nil {
		t.Fatalf("isoinfo (Debian genisoimage) is missing: %v", err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id.pub")
	k := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKkKC6D6WtAxjMXLsIiGEhuMSVhksX2HDNWE9L0ZsQMK me@x"
	if err := os.WriteFile(key, []byte(k+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "seed.iso")
	args := []string{"seed", "--format", "nocloud", "--output", out, "--hostname", "vm1", "--key", key,
		"--key-user", "debian", "--key", key, "--ip", "eth0=192.0.2.10/24,gw=192.0.2.1", "--meta", "role=web"}
	_, errOut, code := cli(args...)
	if code != 0 {
		t.Fatalf("seed: exit %d: %s", code, errOut)
	}
	read := func(p string) string {
		b, err := exec.Command("isoinfo", "-R", "-x", p, "-i", out).Output()
		if err != nil {
			t.Fatalf("isoinfo -x %s: %v", p, err)
		}
		return string(b)
	}
	ud := read("/user-data")
	for _, want := range []string{`hostname: "vm1"`, `- name: "root"`, `- name: "debian"`, k} {
		if !strings.Contains(ud, want) {
			t.Errorf("user-data lacks %q:\n%s", want, ud)
		}
	}
	if md := read("/meta-data"); !strings.Contains(md, `local-hostname: "vm1"`) || !strings.Contains(md, `"role": "web"`) {
		t.Errorf("meta-data:\n%s", md)
	}
	if nc := read("/network-config"); !strings.Contains(nc, `"192.0.2.10/24"`) {
		t.Errorf("network-config:\n%s", nc)
	}
	first, _ := os.ReadFile(out)
	if _, errOut, code := cli(args...); code != 0 {
		t.Fatalf("second run: %s", errOut)
	}
	if second, _ := os.ReadFile(out); !bytes.Equal(first, second) {
		t.Error("the same flags gave different bytes")
	}
	bad := filepath.Join(dir, "bad.iso")
	for _, a := range [][]string{
		{"seed", "--output", bad},
		{"seed", "--format", "nocloud"},
		{"seed", "--format", "floppy", "--output", bad},
		{"seed", "--format", "nocloud", "--output", bad, "--fs", "ext4"},
		{"seed", "--format", "nocloud", "--output", bad, "--timestamp", "yesterday"},
	} {
		if _, _, code := cli(a...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", a, code, exitUsage)
		}
	}
	if _, _, code := cli("seed", "--format", "opennebula", "--output", bad, "--meta", "PATH=/x"); code != exitFail {
		t.Errorf("opennebula PATH meta: exit %d", code)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a refused seed left %s", bad)
	}
}

// TestSeedInImage: --seed-in-image nocloud writes the NoCloud files built
// from the same flags into the guest at /var/lib/cloud/seed/nocloud/
// (0600), with the other items; when another item fails, nothing is
// written, the seed included; a format other than nocloud is a usage error.
func TestSeedInImage(t *testing.T) {
	if _, err := exec.LookPath("cloud-init"); err != nil {
		t.Fatalf("cloud-init is missing: %v", err)
	}
	g := guestDir(t)
	_, errOut, code := cli("--seed-in-image", "nocloud", "--key", demoKeyFile, "--ip", "eth0=192.0.2.10/24,gw=192.0.2.1", "--meta", "role=web", g)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dir := filepath.Join(g, "var/lib/cloud/seed/nocloud")
	for _, n := range []string{"meta-data", "user-data", "network-config"} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", n, fi, err)
		}
	}
	out, err := exec.Command("cloud-init", "schema", "--config-file", filepath.Join(dir, "user-data")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
		t.Errorf("cloud-init schema on the guest's seed user-data: %v\n%s", err, out)
	}
	key, _ := os.ReadFile(demoKeyFile)
	if ud, _ := os.ReadFile(filepath.Join(dir, "user-data")); !strings.Contains(string(ud), strings.Fields(string(key))[1]) {
		t.Errorf("user-data lacks the key:\n%s", ud)
	}

	g2 := guestDir(t)
	before := tree(t, g2)
	if _, _, code := cli("--seed-in-image", "nocloud", "--key-user", "nosuchuser", "--key", demoKeyFile, g2); code != exitFail {
		t.Fatalf("unknown key user: exit %d", code)
	}
	if after := tree(t, g2); after != before {
		t.Errorf("a failed injection with --seed-in-image wrote:\n%s", after)
	}
	if _, _, code := cli("--seed-in-image", "configdrive", "--key", demoKeyFile, g2); code != exitUsage {
		t.Errorf("--seed-in-image configdrive: exit %d", code)
	}
}

// TestSeedCLIVFAT: --fs vfat writes a FAT image mtools reads and fsck.fat
// passes; OpenNebula as vfat and an unknown --fs are usage errors.
func TestSeedCLIVFAT(t *testing.T) {
	for _, tool := range []string{"fsck.fat", "mtype"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s (Debian dosfstools, mtools) is missing: %v", tool, err)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "seed.img")
	if _, errOut, code := cli("seed", "--format", "configdrive", "--fs", "vfat", "--output", out, "--hostname", "vm1", "--meta", "role=web"); code != 0 {
		t.Fatalf("seed --fs vfat: exit %d: %s", code, errOut)
	}
	if b, err := exec.Command("fsck.fat", "-n", out).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, b)
	}
	md, err := exec.Command("mtype", "-i", out, "::/openstack/latest/meta_data.json").Output()
	if err != nil || !strings.Contains(string(md), `"hostname":"vm1"`) && !strings.Contains(string(md), `"hostname": "vm1"`) {
		t.Errorf("meta_data.json through mtools: %v\n%s", err, md)
	}
	for _, args := range [][]string{
		{"seed", "--format", "opennebula", "--fs", "vfat", "--output", filepath.Join(dir, "o.img")},
		{"seed", "--format", "nocloud", "--fs", "ext4", "--output", filepath.Join(dir, "e.img")},
	} {
		if _, errOut, code := cli(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage): %s", args, code, errOut)
		}
	}
}
