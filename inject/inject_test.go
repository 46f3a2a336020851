package inject

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/netip"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

// fullData injects one of everything.
func fullData() *Data {
	return &Data{
		Keys: []string{demoKey},
		Network: &Network{Interfaces: []Interface{{
			Name: "eth0", Address: pfx("192.0.2.10/24"), Gateway: addr("192.0.2.1"),
			DNS: []netip.Addr{addr("192.0.2.53")},
		}}},
		Meta:          map[string]string{"role": "demo"},
		Files:         []File{{Path: "/etc/motd", Data: []byte("hello\n")}},
		AdminPassword: &Password{Plain: "pw"},
	}
}

func TestApplyEverything(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		rep, err := Apply(g.fs, fullData(), nil)
		must(t, err)
		kinds := []Kind{KindKeys, KindNetwork, KindMeta, KindPassword, KindFiles}
		if len(rep.Items) != len(kinds) || !rep.OK() || rep.DryRun {
			t.Fatalf("report %+v", rep)
		}
		for i, k := range kinds {
			if it := rep.Items[i]; it.Kind != k || it.Status != StatusDone || !it.Mandatory || len(it.Actions) == 0 {
				t.Errorf("item %d: %+v", i, it)
			}
		}
		if read(t, g.fs, "/etc/motd") != "hello\n" || read(t, g.fs, MetaPath) != `{"role": "demo"}`+"\n" {
			t.Error("files or meta not written")
		}
		verify(t, shadowHash(t, read(t, g.fs, ShadowPath), "root"), "pw")
	})
}

func TestPlanWritesNothing(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		before := snapshot(t, g.fs)
		rep, err := Plan(g.fs, fullData(), nil)
		must(t, err)
		if after := snapshot(t, g.fs); after != before {
			t.Error("Plan changed the guest")
		}
		if !rep.DryRun || len(rep.Items) != 5 {
			t.Fatalf("report %+v", rep)
		}
		for _, it := range rep.Items {
			if it.Status != StatusPlanned || len(it.Actions) == 0 {
				t.Errorf("%+v", it)
			}
		}
		want := []Action{
			{Op: OpMkdir, Path: "/root/.ssh"},
			{Op: OpChown, Path: "/root/.ssh", Owner: "0:0"},
			{Op: OpChmod, Path: "/root/.ssh", Mode: "0700"},
			{Op: OpAppend, Path: "/root/.ssh/authorized_keys", Bytes: len(demoKey) + 1},
			{Op: OpChown, Path: "/root/.ssh/authorized_keys", Owner: "0:0"},
			{Op: OpChmod, Path: "/root/.ssh/authorized_keys", Mode: "0600"},
		}
		if got := rep.Items[0].Actions; len(got) != len(want) {
			t.Errorf("key actions %+v", got)
		} else {
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("action %d: %+v, want %+v", i, got[i], want[i])
				}
			}
		}
	})
}

func TestPlanOnReadOnlyGuest(t *testing.T) {
	ro := readOnly{memGuest(t)}
	_, err := Plan(ro, fullData(), nil)
	must(t, err)
	rep, err := Apply(ro, fullData(), nil)
	wantErr(t, err, vfs.ErrReadOnly)
	if rep.Items[0].Status != StatusFailed || rep.Items[1].Status != StatusSkipped {
		t.Errorf("report %+v", rep.Items)
	}
}

func TestAllOrNothing(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		d := fullData()
		d.Files = append(d.Files, File{Path: "relative"})
		before := snapshot(t, g.fs)
		rep, err := Apply(g.fs, d, nil)
		wantErr(t, err, ErrInvalidFile)
		if after := snapshot(t, g.fs); after != before {
			t.Error("guest changed")
		}
		for _, it := range rep.Items {
			want := StatusSkipped
			if it.Path == "relative" {
				want = StatusFailed
			}
			if it.Status != want {
				t.Errorf("%s %s: %s, want %s", it.Kind, it.Path, it.Status, want)
			}
		}
	})
}

func TestAllErrorsReported(t *testing.T) {
	d := fullData()
	d.Keys = []string{"bad"}
	d.AdminPassword.User = "ghost"
	_, err := Apply(memGuest(t), d, nil)
	wantErr(t, err, ErrInvalidKey, ErrNoSuchUser)
}

func TestNonMandatoryFailureIsReported(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		d := fullData()
		d.Keys = []string{"bad"}
		d.Files = append(d.Files, File{Path: "/etc/passwd/x"})
		rep, err := Apply(g.fs, d, &Options{Mandatory: []Kind{KindNetwork, KindPassword}})
		must(t, err)
		if rep.OK() {
			t.Error("report OK with failed items")
		}
		status := map[Kind][]Status{}
		for _, it := range rep.Items {
			status[it.Kind] = append(status[it.Kind], it.Status)
		}
		if status[KindKeys][0] != StatusFailed || status[KindNetwork][0] != StatusDone ||
			status[KindFiles][0] != StatusDone || status[KindFiles][1] != StatusFailed {
			t.Errorf("statuses %v", status)
		}
		if !errors.Is(rep.Items[0].Err, ErrInvalidKey) {
			t.Errorf("keys error %v", rep.Items[0].Err)
		}
		if has, _ := g.fs.HasFile("/root/.ssh"); has {
			t.Error("failed keys item wrote")
		}
	})
}

func TestNoMandatoryItems(t *testing.T) {
	d := fullData()
	d.AdminPassword.User = "ghost"
	rep, err := Apply(memGuest(t), d, &Options{Mandatory: []Kind{}})
	must(t, err)
	if rep.Items[3].Mandatory || rep.Items[3].Status != StatusFailed || rep.Items[4].Status != StatusDone {
		t.Errorf("%+v", rep.Items)
	}
}

func TestWriteFailureStopsMandatory(t *testing.T) {
	boom := errors.New("disk on fire")
	f := failing{FS: memGuest(t), path: InterfacesPath, err: boom}
	rep, err := Apply(f, fullData(), nil)
	wantErr(t, err, boom)
	if ie := findItemError(err, KindNetwork); ie == nil || ie.Path != InterfacesPath {
		t.Errorf("error %v does not name the network item", err)
	}
	want := []Status{StatusDone, StatusFailed, StatusSkipped, StatusSkipped, StatusSkipped}
	for i, it := range rep.Items {
		if it.Status != want[i] {
			t.Errorf("item %d %s: %s, want %s", i, it.Kind, it.Status, want[i])
		}
	}
	if has, _ := f.HasFile(MetaPath); has {
		t.Error("items after the failure were written")
	}
}

func TestWriteFailureOfOptionalItemContinues(t *testing.T) {
	boom := errors.New("disk on fire")
	f := failing{FS: memGuest(t), path: InterfacesPath, err: boom}
	rep, err := Apply(f, fullData(), &Options{Mandatory: []Kind{KindKeys}})
	must(t, err)
	if rep.Items[1].Status != StatusFailed || !errors.Is(rep.Items[1].Err, boom) || rep.Items[4].Status != StatusDone {
		t.Errorf("%+v", rep.Items)
	}
}

func TestReportJSON(t *testing.T) {
	d := fullData()
	d.Keys = []string{"bad"}
	rep, _ := Apply(memGuest(t), d, &Options{Mandatory: []Kind{}})
	b, err := json.Marshal(rep)
	must(t, err)
	var back struct {
		DryRun bool `json:"dry_run"`
		Items  []struct {
			Kind, Path, Status, Error string
			Mandatory                 bool
			Actions                   []map[string]any
		} `json:"items"`
	}
	must(t, json.Unmarshal(b, &back))
	if len(back.Items) != 5 || back.Items[0].Status != "failed" || back.Items[0].Error == "" ||
		back.Items[1].Kind != "network" || back.Items[1].Path != InterfacesPath || len(back.Items[1].Actions) != 2 {
		t.Errorf("json %s", b)
	}
}

func TestNothingToInject(t *testing.T) {
	rep, err := Apply(memGuest(t), &Data{}, nil)
	must(t, err)
	if len(rep.Items) != 0 {
		t.Errorf("%+v", rep)
	}
	if _, err := Apply(memGuest(t), nil, nil); err != nil {
		t.Error(err)
	}
}

// readOnly refuses every write, as a read-only engine does.
type readOnly struct{ vfs.FS }

func (r readOnly) MakePath(p string) error { return vfs.PathErr("mkdir", p, vfs.ErrReadOnly) }
func (r readOnly) AppendFile(p string, _ []byte) error {
	return vfs.PathErr("append", p, vfs.ErrReadOnly)
}
func (r readOnly) ReplaceFile(p string, _ []byte) error {
	return vfs.PathErr("replace", p, vfs.ErrReadOnly)
}
func (r readOnly) SetPermissions(p string, _ fs.FileMode) error {
	return vfs.PathErr("chmod", p, vfs.ErrReadOnly)
}
func (r readOnly) SetOwnership(p, _, _ string) error { return vfs.PathErr("chown", p, vfs.ErrReadOnly) }

// failing fails ReplaceFile of one path.
type failing struct {
	vfs.FS
	path string
	err  error
}

func (f failing) ReplaceFile(p string, data []byte) error {
	if p == f.path {
		return vfs.PathErr("replace", p, f.err)
	}
	return f.FS.ReplaceFile(p, data)
}
