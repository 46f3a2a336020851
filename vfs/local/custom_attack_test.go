package local_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/local"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// TestRaceRenameLinkParentSwap: after Rename or Link resolved both names,
// the directory of one of them is swapped for a symlink out of the guest
// (to the host's outside directory, or to one inside). The move or link
// must not land outside nor take an outside file in: the parents are
// held by handles checked to be what resolution found (ErrChanged).
func TestRaceRenameLinkParentSwap(t *testing.T) {
	ops := map[string]func(vfs.FS) error{
		"rename": func(f vfs.FS) error { return f.(vfs.Renamer).Rename("/data/file", "/tmp/file") },
		"link":   func(f vfs.FS) error { return f.(vfs.Linker).Link("/data/file", "/tmp/file") },
	}
	for op, run := range ops {
		for _, swapped := range []string{"data", "tmp"} {
			for _, target := range []string{"OUT", "../outside", "etc"} {
				t.Run(op+"/"+swapped+"/"+target, func(t *testing.T) {
					h := newHost(t)
					if target == "OUT" {
						target = h.outside
					}
					mustOK(t, os.WriteFile(h.outside+"/file", []byte("outside file"), 0o644))
					h.before = snapshot(t, h.base, h.guest)
					local.SetHook(h.fsys, func(gotOp, rel string) {
						if gotOp != op {
							return
						}
						local.SetHook(h.fsys, nil)
						hp := filepath.Join(h.guest, swapped)
						mustOK(t, os.Rename(hp, hp+".moved"))
						mustOK(t, os.Symlink(target, hp))
					})
					err := run(h.fsys)
					if !errors.Is(err, local.ErrChanged) {
						t.Errorf("%s with %s swapped for a symlink to %s: %v, want ErrChanged", op, swapped, target, err)
					}
					h.check(t)
					if _, err := os.Lstat(filepath.Join(h.guest, "etc/file")); err == nil {
						t.Error("the object landed in the guest's /etc through the swapped link")
					}
				})
			}
		}
	}
}

// TestRaceTruncateSwap: the file Truncate resolved is swapped for a
// symlink (out of the guest, or to the guest's /etc/passwd) before it is
// opened; nothing is truncated.
func TestRaceTruncateSwap(t *testing.T) {
	for _, name := range []string{"abs-out", "rel-out", "inside"} {
		t.Run(name, func(t *testing.T) {
			h := newHost(t)
			h.swapAt(t, "truncate", "/data/file", swapTarget(h, name))
			if err := h.fsys.Truncate("/data/file", 0); err == nil {
				t.Fatal("Truncate went through a symlink swapped in after resolution")
			}
			if got := h.hostFile(t, "/etc/passwd"); got != vfstest.Passwd {
				t.Errorf("guest /etc/passwd changed: %q", got)
			}
			h.check(t)
		})
	}
}

// TestRaceAttrSwap: SetXattr and SetTimes act on a handle of the object
// resolved; a symlink swapped in is itself a different object
// (ErrChanged), and nothing outside changes.
func TestRaceAttrSwap(t *testing.T) {
	ops := map[string]func(*local.FS) error{
		"setxattr": func(f *local.FS) error { return f.SetXattr("/data/file", "user.pwned", []byte("1")) },
		"utimes":   func(f *local.FS) error { return f.SetTimes("/data/file", time.Unix(5, 0), time.Unix(5, 0)) },
	}
	for op, run := range ops {
		for _, name := range []string{"abs-out", "rel-out", "inside"} {
			t.Run(op+"/"+name, func(t *testing.T) {
				h := newHost(t)
				h.swapAt(t, op, "/data/file", swapTarget(h, name))
				if err := run(h.fsys); !errors.Is(err, local.ErrChanged) {
					t.Fatalf("%s through a symlink swapped in: %v, want ErrChanged", op, err)
				}
				h.check(t)
			})
		}
	}
}
