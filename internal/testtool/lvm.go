package testtool

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// LVMFixture returns the LVM test disk lvm-mbr.img (VG vg0: an ext4 root
// on a two-segment linear volume, a striped volume, a thin one); see
// LVMFixtureImage.
func LVMFixture(t testing.TB) string {
	t.Helper()
	return LVMFixtureImage(t, "lvm-mbr.img")
}

// LVMFixtureImage returns one of the LVM test disks fixtures/lvm/mkimages.sh
// builds in libguestfs' appliance (its kernel and lvm2 write the volumes):
// lvm-mbr.img, lvm-xfs.img (an XFS root on a linear-then-striped volume) or
// lvm-boot.img (an empty 3 GiB two-segment volume for the boot test). All of
// them come from one appliance launch, once per version of the script,
// cached in the temporary directory. Callers copy them before writing.
// Under -short the test is skipped: the appliance takes a minute or two
// without KVM.
func LVMFixtureImage(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds LVM volumes in the libguestfs appliance (-short skips it)")
	}
	Need(t, "guestfish")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "fixtures", "lvm", "mkimages.sh")
	body, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	dir := filepath.Join(os.TempDir(), "guestinject-lvm-"+hex.EncodeToString(sum[:8]))
	img := filepath.Join(dir, name)
	if _, err := os.Stat(img); err == nil {
		return img
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "guestinject-lvm-build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.Command("bash", script, tmp).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(img); serr != nil { // another test process built it first
			t.Fatal(err)
		}
	}
	return img
}
