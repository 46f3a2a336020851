package local_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzContainment plants a symlink with a fuzzed target in the guest and
// runs every write operation on fuzzed paths; whatever happens inside the
// guest, nothing outside it may change.
func FuzzContainment(f *testing.F) {
	seeds := [][2]string{
		{"/etc", "/root/.ssh/authorized_keys"},
		{"../../../outside", "/x/secret"},
		{"../../outside/secret", "/x"},
		{"OUT/secret", "/x"},
		{"/", "/x/../../outside/secret"},
		{"x", "/x/y"},
		{"../tmp/x/../../outside", "/x/etc/passwd"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, target, p string) {
		if target == "" || strings.IndexByte(target, 0) >= 0 || len(target) > 4096 {
			return
		}
		h := newHost(t)
		target = strings.ReplaceAll(target, "OUT", h.outside)
		p = strings.ReplaceAll(p, "OUT", h.outside)
		if err := os.Symlink(target, filepath.Join(h.guest, "x")); err != nil {
			return // a target the host cannot store
		}
		h.fsys.MakePath(p)
		h.fsys.AppendFile(p, []byte("a"))
		h.fsys.ReplaceFile(p, []byte("r"))
		h.fsys.ReplaceFile(p+"/f", []byte("r"))
		h.fsys.SetPermissions(p, 0o777)
		h.fsys.SetOwnership(p, "al", "staff")
		h.fsys.Symlink(target, p+"2")
		h.fsys.ReadFile(p)
		h.fsys.ReadDir(p)
		h.fsys.Remove(p)
		h.check(t)
	})
}
