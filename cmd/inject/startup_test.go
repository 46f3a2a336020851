package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// buildAsReadme builds the CLI with the README's build line
// (CGO_ENABLED=0 go build ./cmd/inject) into a temporary directory.
func buildAsReadme(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	must(t, err)
	bin := filepath.Join(t.TempDir(), "inject")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/inject")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// initLine is one line of GODEBUG=inittrace=1: a package's init and what
// it allocated.
var initLine = regexp.MustCompile(`^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes, (\d+) allocs`)

// TestStartupInitsAreLight runs `inject --help` (the binary the README
// builds) with GODEBUG=inittrace=1 and bounds what each of the module's
// packages allocates before main runs. Every process pays for package
// initialisation, whatever it was asked to do: tables, compiled regular
// expressions and buffers only some runs need are built on first use
// (issue 8 §6: start-up near a minimal Go binary). Before, the inject
// package compiled its hostname, timezone and release patterns at start-
// up (60 KB, 370 allocations) and imports allocated a 64 KiB zero
// buffer. Allocation is counted, not time: it does not depend on the
// machine's load.
func TestStartupInitsAreLight(t *testing.T) {
	bin := buildAsReadme(t)
	cmd := exec.Command(bin, "--help")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	const perPackage, total = 16 << 10, 32 << 10
	sum, seen := 0, 0
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		m := initLine.FindStringSubmatch(sc.Text())
		if m == nil || (!strings.HasPrefix(m[1], "github.com/guestinject/guestinject/") && m[1] != "main") {
			continue
		}
		seen++
		b, _ := strconv.Atoi(m[2])
		sum += b
		if b > perPackage {
			t.Errorf("package %s allocates %d bytes (%s allocations) at start-up; want at most %d: build it on first use", m[1], b, m[3], perPackage)
		}
	}
	must(t, sc.Err())
	must(t, cmd.Wait())
	if seen < 10 {
		t.Fatalf("inittrace listed %d of the module's packages: the GODEBUG output changed?", seen)
	}
	if sum > total {
		t.Errorf("the module's packages allocate %d bytes at start-up; want at most %d", sum, total)
	}
}

// TestBenchBuildsAsReadme: the benchmark scripts measure the binary users
// build. The README builds with CGO_ENABLED=0 (a static binary); a
// script building with the default (cgo, dynamically linked: the dynamic
// loader and libc's start-up) measured a process about 1 ms slower to
// start than the one the README documents.
func TestBenchBuildsAsReadme(t *testing.T) {
	root, err := filepath.Abs("../..")
	must(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	must(t, err)
	if !strings.Contains(string(readme), "CGO_ENABLED=0 go build") {
		t.Fatal("README no longer builds with CGO_ENABLED=0 go build: update the benchmark scripts and this test")
	}
	scripts, err := filepath.Glob(filepath.Join(root, "bench", "*.sh"))
	must(t, err)
	builds := 0
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		must(t, err)
		for i, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, "go build") || !strings.Contains(l, "./cmd/inject") {
				continue
			}
			builds++
			if !strings.Contains(l, "CGO_ENABLED=0 go build") {
				t.Errorf("%s:%d builds the CLI as %q, not as the README does (CGO_ENABLED=0 go build)", filepath.Base(s), i+1, strings.TrimSpace(l))
			}
		}
	}
	if builds == 0 {
		t.Fatal("no benchmark script builds ./cmd/inject")
	}
}

// writeCounter counts the writes reaching it.
type writeCounter struct {
	writes int
	bytes  []byte
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	w.bytes = append(w.bytes, p...)
	return len(p), nil
}

// TestReportIsOneWrite: the text report of an injection (a line per item
// and per changed path) reaches stdout in one write, not one per print:
// stdout is unbuffered, and the nova payload's report was 69 write
// system calls.
func TestReportIsOneWrite(t *testing.T) {
	dir := guestDir(t)
	key := writeTemp(t, "k.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example\n")
	var out writeCounter
	var stderr bytes.Buffer
	code := run([]string{"--key", key, "--meta", "a=b", "--file", "/etc/motd=" + writeTemp(t, "motd", "hi\n"), dir}, &out, &stderr)
	wantCode(t, code, 0, stderr.String())
	if lines := strings.Count(string(out.bytes), "\n"); lines < 5 || out.writes != 1 {
		t.Fatalf("the report (%d lines) took %d writes, want 1:\n%s", lines, out.writes, out.bytes)
	}
}
