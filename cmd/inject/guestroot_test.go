package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 8: an injection into a directory writes into whatever the
// directory holds, so the host's own root is refused always, and any other
// directory must look like a guest root unless --allow-non-root-dir.
func TestDirTargetHostRootRefused(t *testing.T) {
	link := filepath.Join(t.TempDir(), "to-root")
	must(t, os.Symlink("/", link))
	// The real runs carry only an item the host's root fails to validate
	// (a user no host has), so that even a regression writes nothing there.
	dry := []string{"--dry-run", "--root-password", "password:x", "--meta", "a=b"}
	real := []string{"--key-user", "no-such-user-guestinject", "--key", demoKeyFile}
	for _, target := range []string{"/", "/proc/self/root", link, "/.", "//"} {
		for _, extra := range [][]string{nil, {"--allow-non-root-dir"}} {
			for _, payload := range [][]string{dry, real} {
				args := append(append(append([]string{}, payload...), extra...), target)
				_, stderr, code := cli(args...)
				wantCode(t, code, exitFail, stderr)
				if !strings.Contains(stderr, "host's root directory") {
					t.Errorf("%v: stderr does not say why: %s", args, stderr)
				}
			}
		}
	}
}

func TestDirTargetMustLookLikeGuestRoot(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Mkdir(filepath.Join(dir, "etc"), 0o755)) // /etc but no OS marker
	before := tree(t, dir)
	for _, dry := range []bool{true, false} {
		args := []string{"--meta", "a=b", dir}
		if dry {
			args = append([]string{"--dry-run"}, args...)
		}
		_, stderr, code := cli(args...)
		wantCode(t, code, exitFail, stderr)
		if !strings.Contains(stderr, "not a guest root") || !strings.Contains(stderr, "/etc/os-release") || !strings.Contains(stderr, "--allow-non-root-dir") {
			t.Errorf("stderr does not say what is missing and how to override: %s", stderr)
		}
	}
	if after := tree(t, dir); after != before {
		t.Fatalf("refused injection changed the directory:\n%s", after)
	}
	_, stderr, code := cli("--meta", "a=b", "--allow-non-root-dir", dir)
	wantCode(t, code, exitOK, stderr)
	if got := readHost(t, filepath.Join(dir, "meta.js")); got != `{"a": "b"}`+"\n" {
		t.Errorf("meta.js %q", got)
	}
	// A guest root passes without the flag.
	g := guestDir(t)
	_, stderr, code = cli("--meta", "a=b", g)
	wantCode(t, code, exitOK, stderr)
}
