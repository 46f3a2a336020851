package writetest

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/vfstest"
)

// innerEnv makes the test binary run the conformance suite itself (see
// TestVFSConformance).
const innerEnv = "WRITETEST_VFSTEST_INNER"

// TestVFSConformanceInner is the vfstest suite on ext4 images (mkfs.ext4
// of an empty tree, Populate through the engine), each case followed by
// e2fsck -fn. It only runs inside TestVFSConformance's child process,
// which judges its cases against knownEngineGap.
func TestVFSConformanceInner(t *testing.T) {
	if os.Getenv(innerEnv) != "1" {
		return // run by TestVFSConformance in a child process
	}
	spec := imageSpec{name: "vfstest", mb: 16, args: []string{"-t", "ext4"}}
	vfstest.Run(t, func(t *testing.T) vfs.FS {
		img := mkfs(t, spec, "")
		_, fsys, err := openImage(t, img, ext.Options{})
		if err != nil {
			t.Fatalf("open writable: %v", err)
		}
		t.Cleanup(func() {
			if out, ok := fsck(t, img); !ok {
				t.Errorf("e2fsck -fn after the case:\n%s", out)
			}
		})
		return fsys
	})
}

var reCase = regexp.MustCompile(`(?m)^\s*--- (FAIL|PASS): TestVFSConformanceInner/([^/\s]+) `)

// TestVFSConformance runs vfstest (every case, all the attack cases
// included) against the write engine in a child process, so that a case
// failing for a gap listed in knownEngineGap under
// "TestVFSConformance/<case>" is logged rather than failed.
func TestVFSConformance(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestVFSConformanceInner$", "-test.v", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), innerEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	results := map[string]string{}
	for _, m := range reCase.FindAllStringSubmatch(out.String(), -1) {
		results[m[2]] = m[1]
	}
	if len(results) == 0 {
		t.Fatalf("the conformance suite reported no case (%v):\n%s", runErr, out.String())
	}
	var failed []string
	for name, res := range results {
		if res == "FAIL" {
			failed = append(failed, name)
		}
	}
	sort.Strings(failed)
	t.Logf("vfstest on ext images: %d cases, %d failed: %s", len(results), len(failed), strings.Join(failed, " "))
	for _, name := range failed {
		key := "TestVFSConformance/" + name
		if gap := knownEngineGap[key]; gap != "" {
			t.Logf("KNOWN ENGINE GAP %s (%s)", key, gap)
			continue
		}
		t.Errorf("vfstest case %s fails on the ext engine:\n%s", name, caseOutput(out.String(), name))
	}
	for key := range knownEngineGap {
		if name, ok := strings.CutPrefix(key, "TestVFSConformance/"); ok && results[name] == "PASS" {
			t.Logf("knownEngineGap[%q] passes now: remove the entry", key)
		}
	}
	if runErr != nil && len(failed) == 0 {
		t.Errorf("the conformance run failed outside any case: %v\n%s", runErr, out.String())
	}
}

// caseOutput extracts one case's lines from go test -v output.
func caseOutput(all, name string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(all, "\n") {
		switch {
		case strings.HasPrefix(line, "=== RUN   TestVFSConformanceInner/"+name),
			strings.Contains(line, "--- FAIL: TestVFSConformanceInner/"+name+" "):
			in = true
		case strings.HasPrefix(line, "=== "), strings.Contains(line, "--- "):
			in = false
		}
		if in && b.Len() < 8000 {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
