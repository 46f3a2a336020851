package diskimage

import (
	"testing"

	"github.com/guestinject/guestinject/vfs/memfs"
)

// TestRedHatReleaseRoot: a Red Hat-family guest older than os-release
// (CentOS 6) is a guest root by its /etc/redhat-release, and inspect names
// its OS from that line.
func TestRedHatReleaseRoot(t *testing.T) {
	fsys := memfs.New()
	if err := fsys.MakePath("/etc"); err != nil {
		t.Fatal(err)
	}
	if ok, why := LooksLikeGuestRoot(fsys); ok {
		t.Fatalf("a bare /etc counts as a guest root")
	} else if why == "" {
		t.Fatalf("no reason given")
	}
	if err := fsys.ReplaceFile("/etc/redhat-release", []byte("CentOS release 6.10 (Final)\n")); err != nil {
		t.Fatal(err)
	}
	if ok, why := LooksLikeGuestRoot(fsys); !ok {
		t.Fatalf("CentOS 6 tree not a guest root: %s", why)
	}
	rr, err := describeRoot(nil, nil, selection{num: 3}, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Partition != 3 || rr.OSID != "centos" || rr.OSName != "CentOS" || rr.OSVersion != "6.10" || rr.PrettyName != "CentOS release 6.10 (Final)" {
		t.Fatalf("describeRoot = %+v", rr)
	}
	// os-release, where present, wins.
	if err := fsys.ReplaceFile("/etc/os-release", []byte("ID=rocky\nNAME=\"Rocky Linux\"\nVERSION_ID=\"9.4\"\n")); err != nil {
		t.Fatal(err)
	}
	if rr, err = describeRoot(nil, nil, selection{num: 3}, fsys); err != nil || rr.OSID != "rocky" || rr.OSVersion != "9.4" {
		t.Fatalf("describeRoot with os-release = %+v, %v", rr, err)
	}
}

func TestParseRedHatRelease(t *testing.T) {
	for _, c := range []struct{ in, id, name, version string }{
		{"Red Hat Enterprise Linux Server release 6.10 (Santiago)\n", "rhel", "Red Hat Enterprise Linux Server", "6.10"},
		{"CentOS Linux release 7.9.2009 (Core)", "centos", "CentOS Linux", "7.9.2009"},
		{"Fedora release 38 (Thirty Eight)\n", "fedora", "Fedora", "38"},
		{"Scientific Linux release 6.4 (Carbon)", "scientific", "Scientific Linux", "6.4"},
		{"Oracle Linux Server release 6.10", "oracle", "Oracle Linux Server", "6.10"},
		{"garbage without the word", "", "garbage without the word", ""},
	} {
		id, name, version, _ := ParseRedHatRelease([]byte(c.in))
		if id != c.id || name != c.name || version != c.version {
			t.Errorf("ParseRedHatRelease(%q) = %q %q %q, want %q %q %q", c.in, id, name, version, c.id, c.name, c.version)
		}
	}
}
