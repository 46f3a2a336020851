package imports

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzChecksumFile: any checksum file parses without panicking, and a
// checksum it returns is well-formed.
func FuzzChecksumFile(f *testing.F) {
	f.Add([]byte(strings.Repeat("a", 64)+"  disk.img\n"), "disk.img")
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSHA256 (disk.img) = "+strings.Repeat("b", 64)+"\n"), "disk.img")
	f.Add([]byte(strings.Repeat("c", 32)+" *x\n"), "")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		c, err := FromChecksumFile(b, name)
		if err != nil {
			return
		}
		if hexLen[c.Algo] == 0 || len(c.Want) != hexLen[c.Algo] {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// FuzzOVF: any descriptor parses without panicking, and every disk name
// it returns is a plain name inside the archive.
func FuzzOVF(f *testing.F) {
	f.Add([]byte(`<Envelope><References><File id="f" href="d.vmdk"/></References><DiskSection><Disk diskId="1" fileRef="f"/></DiskSection></Envelope>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		names, err := ovfDisks(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, n := range names {
			if strings.HasPrefix(n, "/") || strings.HasPrefix(n, "../") || n == ".." || strings.Contains(n, ":") {
				t.Fatalf("accepted disk name %q", n)
			}
		}
	})
}
