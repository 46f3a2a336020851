package inject

import (
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/guestinject/guestinject/vfs"
)

func TestMetaApply(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		must(t, g.fs.ReplaceFile(MetaPath, []byte("old")))
		must(t, g.fs.SetPermissions(MetaPath, 0o600))
		meta := map[string]string{"zeta": "last", "alpha": "first", "q": `say "hi"\`}
		_, err := Apply(g.fs, &Data{Meta: meta}, nil)
		must(t, err)
		got := read(t, g.fs, MetaPath)
		want := `{"alpha": "first", "q": "say \"hi\"\\", "zeta": "last"}` + "\n"
		if got != want {
			t.Errorf("meta.js = %s, want %s", got, want)
		}
		var back map[string]string
		must(t, json.Unmarshal([]byte(got), &back))
		for k, v := range meta {
			if back[k] != v {
				t.Errorf("%s: %q, want %q", k, back[k], v)
			}
		}
		wantAttr(t, g.fs, MetaPath, 0o644, 0, 0)
	})
}

func TestMetaJSONEscapesLikePython(t *testing.T) {
	got, err := MetaJSON(map[string]string{"k": "é\x01\n\t<&>😀", "": "empty key"})
	must(t, err)
	want := `{"": "empty key", "k": "\u00e9\u0001\n\t<&>\ud83d\ude00"}` + "\n"
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back map[string]string
	must(t, json.Unmarshal(got, &back))
	if back["k"] != "é\x01\n\t<&>😀" {
		t.Errorf("round trip %q", back["k"])
	}
}

func TestMetaInvalidUTF8(t *testing.T) {
	g := memGuest(t)
	_, err := Apply(g, &Data{Meta: map[string]string{"k": "\xff"}}, nil)
	wantErr(t, err, ErrInvalidMeta)
	if has, _ := g.HasFile(MetaPath); has {
		t.Error("meta.js written")
	}
}

func TestFilesApply(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		exec := fs.FileMode(0o755) | fs.ModeSetgid
		data := &Data{Files: []File{
			{Path: "/opt/app/conf/app.conf", Data: []byte("x=1\n")},
			{Path: "/etc/hostname", Data: []byte("new-name\n")},
			{Path: "/usr/local/bin/hello", Data: []byte("#!/bin/sh\necho hi\n"), Mode: &exec},
			{Path: "/empty", Data: nil},
		}}
		rep, err := Apply(g.fs, data, nil)
		must(t, err)
		if len(rep.Items) != 4 {
			t.Fatalf("%d items", len(rep.Items))
		}
		for _, f := range data.Files {
			if got := read(t, g.fs, f.Path); got != string(f.Data) {
				t.Errorf("%s = %q", f.Path, got)
			}
		}
		for _, d := range []string{"/opt", "/opt/app", "/opt/app/conf", "/usr", "/usr/local", "/usr/local/bin"} {
			wantAttr(t, g.fs, d, 0o755, 0, 0)
		}
		wantAttr(t, g.fs, "/opt/app/conf/app.conf", 0o644, 0, 0)
		wantAttr(t, g.fs, "/usr/local/bin/hello", exec, 0, 0)
		wantAttr(t, g.fs, "/etc/hostname", 0o644, 0, 0)
	})
}

func TestFilesReplaceKeepsModeWhenNoneGiven(t *testing.T) {
	forEachGuest(t, func(t *testing.T, g guest) {
		_, err := Apply(g.fs, &Data{Files: []File{{Path: "/etc/shadow", Data: []byte("root:*:1::::::\n")}}}, nil)
		must(t, err)
		wantAttr(t, g.fs, "/etc/shadow", 0o640, 0, 42)
	})
}

func TestFilesErrors(t *testing.T) {
	dirMode := fs.ModeDir | 0o755
	cases := []struct {
		name string
		f    []File
		want []error
	}{
		{"relative", []File{{Path: "etc/x"}}, []error{ErrInvalidFile, vfs.ErrInvalidPath}},
		{"empty", []File{{Path: ""}}, []error{ErrInvalidFile, vfs.ErrInvalidPath}},
		{"dot-dot", []File{{Path: "/etc/../../x"}}, []error{ErrInvalidFile, vfs.ErrInvalidPath}},
		{"dot", []File{{Path: "/etc/./x"}}, []error{ErrInvalidFile, vfs.ErrInvalidPath}},
		{"trailing slash", []File{{Path: "/etc/x/"}}, []error{ErrInvalidFile, vfs.ErrInvalidPath}},
		{"root", []File{{Path: "/"}}, []error{ErrInvalidFile, vfs.ErrInvalidPath}},
		{"NUL", []File{{Path: "/etc/a\x00b"}}, []error{ErrInvalidFile, vfs.ErrInvalidPath}},
		{"twice", []File{{Path: "/a"}, {Path: "/a"}}, []error{ErrInvalidFile}},
		{"type bits in mode", []File{{Path: "/a", Mode: &dirMode}}, []error{ErrInvalidFile}},
		{"a directory", []File{{Path: "/etc"}}, []error{vfs.ErrIsDir}},
		{"parent is a file", []File{{Path: "/etc/passwd/x"}}, []error{vfs.ErrNotDir}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachGuest(t, func(t *testing.T, g guest) {
				before := snapshot(t, g.fs)
				// A valid file first: it must not be written either.
				files := append([]File{{Path: "/ok", Data: []byte("ok")}}, c.f...)
				_, err := Apply(g.fs, &Data{Files: files}, nil)
				wantErr(t, err, c.want...)
				if after := snapshot(t, g.fs); after != before {
					t.Error("guest changed")
				}
			})
		})
	}
}

// FuzzMetaJSON: whatever the pairs, the output is JSON that decodes back to
// them, with sorted keys.
func FuzzMetaJSON(f *testing.F) {
	f.Add("role", "web", "k\"\\", "é\x01😀")
	f.Add("", "", "a", "\u2028")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		in := map[string]string{k1: v1, k2: v2}
		out, err := MetaJSON(in)
		if err != nil {
			return
		}
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if len(back) != len(in) || back[k1] != in[k1] || back[k2] != in[k2] {
			t.Fatalf("round trip %q -> %s -> %q", in, out, back)
		}
		for _, c := range out {
			if c >= 0x80 {
				t.Fatalf("non-ASCII byte in %s", out)
			}
		}
	})
}
