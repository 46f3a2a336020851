package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestImportProgressLine: the progress line shows bytes read, the total,
// the rate and the ETA, redrawn in place; with an unknown total, no ETA.
func TestImportProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := progressLine(&b)
	p(512<<20, 2<<30, 4*time.Second)
	got := b.String()
	for _, want := range []string{"\r", "read 512.0 MiB of 2.0 GiB", "128.0 MiB/s", "ETA 12s"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress %q lacks %q", got, want)
		}
	}
	b.Reset()
	p(3<<20, -1, time.Second)
	if got := b.String(); strings.Contains(got, "ETA") || !strings.Contains(got, "read 3.0 MiB  3.0 MiB/s") {
		t.Errorf("progress with unknown total %q", got)
	}
	if isTerminal(&b) {
		t.Error("a buffer taken for a terminal")
	}
}
