package inject

import (
	"io/fs"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// Each case sets up a guest where an item passes the injectors' own checks
// but its write would fail (the R6 audit defect and its kind): Plan must
// fail it, and Apply must fail it before writing anything.
func TestPlanRefusesWhatTheWriteWouldRefuse(t *testing.T) {
	symlink := func(target, p string) func(t *testing.T, f vfs.FS) {
		return func(t *testing.T, f vfs.FS) { must(t, f.(vfs.Symlinker).Symlink(target, p)) }
	}
	hash := "$6$saltsaltsaltsalt$" + "x"
	cases := []struct {
		name  string
		setup func(t *testing.T, f vfs.FS)
		data  *Data
		kind  Kind
		want  error
	}{{
		// R6: the final symlink's target has no parent; MakePath of /etc does not make it.
		name:  "file through dangling symlink without parent",
		setup: symlink("/nonexistent/dir/file", "/etc/x"),
		data: &Data{Meta: map[string]string{"a": "b"}, AdminPassword: &Password{Plain: "x"},
			Files: []File{{Path: "/etc/x", Data: []byte("data\n")}}},
		kind: KindFiles, want: fs.ErrNotExist,
	}, {
		name:  "meta through dangling symlink without parent",
		setup: symlink("/gone/meta", "/meta.js"),
		data:  &Data{Meta: map[string]string{"a": "b"}, Files: []File{{Path: "/etc/motd", Data: []byte("hi\n")}}},
		kind:  KindMeta, want: fs.ErrNotExist,
	}, {
		name: "network interfaces through dangling symlink without parent",
		setup: func(t *testing.T, f vfs.FS) {
			must(t, f.(vfs.Remover).Remove("/etc/network/interfaces"))
			symlink("../../gone/if", "/etc/network/interfaces")(t, f)
		},
		data: &Data{Network: &Network{Verbatim: []byte("auto lo\n")}, Meta: map[string]string{"a": "b"}},
		kind: KindNetwork, want: fs.ErrNotExist,
	}, {
		name:  "file where an earlier file of the same run needs a directory",
		setup: func(t *testing.T, f vfs.FS) {},
		data: &Data{Meta: map[string]string{"a": "b"}, AdminPassword: &Password{Hash: hash},
			Files: []File{{Path: "/srv/a", Data: []byte("1")}, {Path: "/srv/a/b", Data: []byte("2")}}},
		kind: KindFiles, want: vfs.ErrNotDir,
	}, {
		name: "selinux relabel into rc.local through dangling symlink without parent",
		setup: func(t *testing.T, f vfs.FS) {
			must(t, f.MakePath("/etc/selinux"))
			symlink("/gone/rc.local", "/etc/rc.local")(t, f)
		},
		data: &Data{Meta: map[string]string{"a": "b"}, Keys: []string{demoKey}},
		kind: KindKeys, want: fs.ErrNotExist,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachGuest(t, func(t *testing.T, g guest) {
				c.setup(t, g.fs)
				before := snapshot(t, g.fs)
				rep, err := Plan(g.fs, c.data, nil)
				if err == nil || findItemError(err, c.kind) == nil {
					t.Fatalf("dry run: error %v, want a %s item error (report %+v)", err, c.kind, rep.Items)
				}
				wantErr(t, err, c.want)
				_, err = Apply(g.fs, c.data, nil)
				if findItemError(err, c.kind) == nil {
					t.Fatalf("real run: error %v, want a %s item error", err, c.kind)
				}
				wantErr(t, err, c.want)
				if after := snapshot(t, g.fs); after != before {
					t.Errorf("guest changed by a refused injection:\n%s\nwant\n%s", after, before)
				}
			})
		})
	}
}

// The model must not refuse what the write does: a dangling final symlink
// whose parent exists is written through (as open(O_CREAT) does), and a
// directory one item creates is there for the next.
func TestPlanFollowsWritesThatSucceed(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.(vfs.Symlinker).Symlink("/etc/new-motd", "/etc/y"))
		data := &Data{Files: []File{
			{Path: "/etc/y", Data: []byte("y\n")},
			{Path: "/srv/app/a", Data: []byte("a")},
			{Path: "/srv/app/b", Data: []byte("b")},
		}}
		if _, err := Plan(g.fs, data, nil); err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if _, err := Apply(g.fs, data, nil); err != nil {
			t.Fatalf("real run: %v", err)
		}
		if got := read(t, g.fs, "/etc/new-motd"); got != "y\n" {
			t.Errorf("/etc/new-motd %q", got)
		}
		if got := read(t, g.fs, "/srv/app/b"); got != "b" {
			t.Errorf("/srv/app/b %q", got)
		}
	})
}

// An optional item the model refuses leaves no creations behind for the
// items after it: the keys item (refused at its rc.local step, after it
// planned /root/.ssh as a directory) must not make /root/.ssh a directory
// for the mandatory file written there.
func TestPlanDropsRefusedOptionalItemsCreations(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.MakePath("/etc/selinux"))
		must(t, g.fs.(vfs.Symlinker).Symlink("/gone/rc.local", "/etc/rc.local"))
		data := &Data{Keys: []string{demoKey}, Files: []File{{Path: "/root/.ssh", Data: []byte("a file\n")}}}
		rep, err := Apply(g.fs, data, &Options{Mandatory: []Kind{KindFiles}})
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if rep.Items[0].Status != StatusFailed || rep.Items[1].Status != StatusDone {
			t.Errorf("statuses %s, %s; want failed, done", rep.Items[0].Status, rep.Items[1].Status)
		}
		if got := read(t, g.fs, "/root/.ssh"); got != "a file\n" {
			t.Errorf("/root/.ssh %q", got)
		}
	})
}
