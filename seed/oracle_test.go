package seed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// need fails the test when a reference tool is missing.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("reference tool %s is missing (Debian: isoinfo in genisoimage, cloud-init, python3): %v", tool, err)
		}
	}
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out.String(), errb.String())
	}
	return out.String()
}

// writeSeed builds and writes the seed, returning the image path.
func writeSeed(t *testing.T, f Format, d *Data) (string, []File) {
	t.Helper()
	files, err := Build(f, d)
	if err != nil {
		t.Fatalf("Build %s: %v", f, err)
	}
	img := filepath.Join(t.TempDir(), string(f)+".iso")
	if err := Write(img, f, ISO9660, files, time.Time{}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return img, files
}

// checkISO checks the image with isoinfo: the label, Rock Ridge and
// Joliet present, every file listed under its full name in both trees
// with its mode, and its content extracted back through Rock Ridge equal
// to what was built. It returns a directory holding the extracted tree.
func checkISO(t *testing.T, img, label string, files []File) string {
	t.Helper()
	need(t, "isoinfo")
	info := run(t, "", "isoinfo", "-d", "-i", img)
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Volume size is: %d\n", st.Size()/isoBlock); st.Size()%isoBlock != 0 || !strings.Contains(info, want) {
		t.Errorf("image of %d bytes; isoinfo -d:\n%s", st.Size(), info)
	}
	for _, want := range []string{"Volume id: " + label + "\n", "Joliet with UCS level", "Rock Ridge signatures version 1 found"} {
		if !strings.Contains(info, want) {
			t.Errorf("isoinfo -d lacks %q:\n%s", want, info)
		}
	}
	rr := run(t, "", "isoinfo", "-R", "-l", "-i", img)
	jo := run(t, "", "isoinfo", "-J", "-l", "-i", img)
	out := t.TempDir()
	for _, f := range files {
		base := path.Base(f.Path)
		dirHdr := "Directory listing of /" + path.Dir(f.Path) + "/"
		if path.Dir(f.Path) == "." {
			dirHdr = "Directory listing of /\n"
		}
		for name, listing := range map[string]string{"rock ridge": rr, "joliet": jo} {
			i := strings.Index(listing, dirHdr)
			if i < 0 {
				t.Errorf("%s listing lacks %q:\n%s", name, dirHdr, listing)
				continue
			}
			sect := listing[i+len(dirHdr):]
			if j := strings.Index(sect, "Directory listing of"); j >= 0 {
				sect = sect[:j]
			}
			if !strings.Contains(sect, "  "+base+" \n") {
				t.Errorf("%s listing of %s lacks %q:\n%s", name, path.Dir(f.Path), base, sect)
			}
			if name == "rock ridge" && !strings.Contains(sect, f.mode().String()) {
				t.Errorf("rock ridge listing lacks mode %v for %s:\n%s", f.mode(), f.Path, sect)
			}
		}
		got := run(t, "", "isoinfo", "-R", "-x", "/"+f.Path, "-i", img)
		if got != string(f.Data) {
			t.Errorf("%s read back through Rock Ridge:\n%q\nwant\n%q", f.Path, got, f.Data)
		}
		gotJ := run(t, "", "isoinfo", "-J", "-x", "/"+f.Path, "-i", img)
		if gotJ != string(f.Data) {
			t.Errorf("%s read back through Joliet differs", f.Path)
		}
		p := filepath.Join(out, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// python runs a cloud-init snippet, with the interpreter cloud-init's
// own script names, and decodes its JSON output.
func python(t *testing.T, script string, args ...string) map[string]any {
	t.Helper()
	need(t, "cloud-init")
	ci, _ := exec.LookPath("cloud-init")
	b, err := os.ReadFile(ci)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	interp, ok := strings.CutPrefix(line, "#!")
	if !ok {
		t.Fatalf("%s: no #! line", ci)
	}
	fields := strings.Fields(interp)
	out := run(t, "", fields[0], append(append(fields[1:], "-c", script), args...)...)
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	return v
}

// schema runs cloud-init's own schema validation on a cloud-config.
func schema(t *testing.T, cfg []byte) {
	t.Helper()
	need(t, "cloud-init")
	p := filepath.Join(t.TempDir(), "cloud-config")
	if err := os.WriteFile(p, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", "cloud-init", "schema", "--config-file", p)
	if !strings.Contains(out, "Valid cloud-config") {
		t.Fatalf("cloud-init schema: %s\n%s", out, cfg)
	}
}

// netConvert runs cloud-init's converter on a network file and returns
// the networkd output files concatenated.
func netConvert(t *testing.T, file, kind string) string {
	t.Helper()
	need(t, "cloud-init")
	out := t.TempDir()
	run(t, "", "cloud-init", "devel", "net-convert", "-p", file, "-k", kind, "-d", out, "-D", "debian", "-O", "networkd")
	var all strings.Builder
	err := filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			all.WriteString("## " + fi.Name() + "\n" + string(b))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all.String()
}

func wantAll(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}
