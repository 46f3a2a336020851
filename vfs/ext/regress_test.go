package ext

import (
	"bytes"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// corpusImage loads one gzip-compressed image of e2fsprogs' test corpus.
func corpusImage(t *testing.T, name string) *FS {
	t.Helper()
	data := testtool.CorpusImage(t, "e2fsprogs", name)
	f, err := Open(bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRegressEAInodeFastSymlink: an ea_inode filesystem charges the blocks
// of attribute inodes to i_blocks, so a fast symlink may have blocks; it
// was once read as a block map (found by walking the e2fsprogs corpus).
func TestRegressEAInodeFastSymlink(t *testing.T) {
	f := corpusImage(t, "f_ea_inode_fast_symlink")
	if got, err := f.Readlink("/bar"); err != nil || got != "foo" {
		t.Fatalf("readlink /bar: %q %v (debugfs: fast link dest \"foo\")", got, err)
	}
}
