package inject

import (
	"errors"
	"reflect"
	"testing"
)

// changeMap flattens a report's changes to path -> change.
func changeMap(rep *Report) map[string]ChangeKind {
	m := map[string]ChangeKind{}
	for _, it := range rep.Items {
		for _, c := range it.Changes {
			m[c.Path] = c.Change
		}
	}
	return m
}

// TestChangesJudgedAgainstGuest: on every backend, Plan reports per path
// what the write does — an existing directory unchanged, a missing one
// created, a new file created, an existing one replaced, keys appended to
// an existing authorized_keys, a mode corrected modified — and Apply
// reports the same; a later item sees what an earlier one created.
func TestChangesJudgedAgainstGuest(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.MakePath("/home/debian/.ssh"))
		must(t, g.fs.SetOwnership("/home/debian/.ssh", "1000", "1000"))
		must(t, g.fs.SetPermissions("/home/debian/.ssh", 0o755))
		must(t, g.fs.ReplaceFile("/home/debian/.ssh/authorized_keys", []byte(rsaKey+"\n")))
		must(t, g.fs.SetOwnership("/home/debian/.ssh/authorized_keys", "1000", "1000"))
		must(t, g.fs.SetPermissions("/home/debian/.ssh/authorized_keys", 0o600))
		data := &Data{
			Keys: []string{demoKey}, KeyUser: "debian",
			UserKeys: []UserKeys{{User: "root", Keys: []string{demoKey}}},
			Files: []File{
				{Path: "/etc/hostname", Data: []byte("h\n")},
				{Path: "/opt/a/b", Data: []byte("x")},
				{Path: "/opt/a/c", Data: []byte("y")},
			},
		}
		plan, err := Plan(g.fs, data, nil)
		must(t, err)
		want := map[string]ChangeKind{
			"/home/debian/.ssh": ChangeModify, "/home/debian/.ssh/authorized_keys": ChangeAppend,
			"/root/.ssh": ChangeCreate, "/root/.ssh/authorized_keys": ChangeCreate,
			"/etc": ChangeUnchanged, "/etc/hostname": ChangeReplace,
			"/opt": ChangeCreate, "/opt/a": ChangeUnchanged, "/opt/a/b": ChangeCreate, "/opt/a/c": ChangeCreate,
		}
		got := changeMap(plan)
		delete(want, "/opt/a") // the first file creates /opt/a, the second finds it: see below
		for p, w := range want {
			if got[p] != w {
				t.Errorf("plan %s: %q, want %q", p, got[p], w)
			}
		}
		last := plan.Items[len(plan.Items)-1].Changes
		if len(last) != 2 || last[0] != (Change{Path: "/opt/a", Change: ChangeUnchanged, Type: "dir"}) {
			t.Errorf("the second file under /opt/a: %+v", last)
		}
		rep, err := Apply(g.fs, data, nil)
		must(t, err)
		for i := range plan.Items {
			if !reflect.DeepEqual(plan.Items[i].Changes, rep.Items[i].Changes) {
				t.Errorf("item %d: plan %+v, apply %+v", i, plan.Items[i].Changes, rep.Items[i].Changes)
			}
		}
		// Nothing left to do: every path unchanged.
		again, err := Plan(g.fs, &Data{Keys: []string{demoKey}, KeyUser: "debian"}, nil)
		must(t, err)
		for p, c := range changeMap(again) {
			if c != ChangeUnchanged {
				t.Errorf("second plan %s: %s", p, c)
			}
		}
	})
}

// TestKeysForTwoUsersOnce: keys for the same user twice are refused
// (the second list would not see the first's keys), nothing written.
func TestKeysForTwoUsersOnce(t *testing.T) {
	g := memGuest(t)
	before := snapshot(t, g)
	_, err := Apply(g, &Data{Keys: []string{demoKey}, UserKeys: []UserKeys{{User: "root", Keys: []string{rsaKey}}}}, nil)
	if !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("err %v", err)
	}
	if snapshot(t, g) != before {
		t.Error("guest changed")
	}
}

// TestMissingUserOneMessage: the error names the item (by ~user until the
// guest gives a home), the user and the file, once, and matches both
// ErrNoSuchUser and the vfs error.
func TestMissingUserOneMessage(t *testing.T) {
	g := memGuest(t)
	rep, err := Apply(g, &Data{Keys: []string{demoKey}, KeyUser: "ghost", Meta: map[string]string{"a": "b"}}, nil)
	want := `keys ~ghost/.ssh/authorized_keys: no such user in the guest: "ghost" is not in /etc/passwd`
	if err == nil || err.Error() != want {
		t.Errorf("err %v\nwant %s", err, want)
	}
	if rep.Items[1].Status != StatusSkipped || rep.Items[1].Summary != "" {
		t.Errorf("skipped item: %+v", rep.Items[1])
	}
}
