package main

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerfileBuildsStatic runs the Containerfile's go build line
// (its output redirected to a temporary directory) and checks that the
// binary is static — no program interpreter, no shared library — so it
// runs FROM scratch and on any distribution, and that it starts with an
// empty environment.
func TestContainerfileBuildsStatic(t *testing.T) {
	root, err := filepath.Abs("../..")
	must(t, err)
	f, err := os.Open(filepath.Join(root, "Containerfile"))
	must(t, err)
	defer f.Close()
	var line string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := sc.Text(); strings.HasPrefix(s, "RUN ") && strings.Contains(s, "go build") {
			line = strings.TrimPrefix(s, "RUN ")
		}
	}
	must(t, sc.Err())
	fields := strings.Fields(line)
	if len(fields) < 4 || fields[0] != "CGO_ENABLED=0" || fields[1] != "go" || fields[len(fields)-1] != "./cmd/inject" {
		t.Fatalf("Containerfile build line %q: want CGO_ENABLED=0 go build ... ./cmd/inject", line)
	}
	bin := filepath.Join(t.TempDir(), "inject")
	args := fields[2:]
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			args[i+1] = bin
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	ef, err := elf.Open(bin)
	must(t, err)
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not static", p.Type)
		}
	}
	if libs, err := ef.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("shared libraries %v (%v)", libs, err)
	}
	run := exec.Command(bin, "--version")
	run.Env = []string{}
	out, err := run.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "inject github.com/guestinject/guestinject ") {
		t.Errorf("--version in an empty environment: %v %q", err, out)
	}
}
