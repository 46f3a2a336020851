package ext

import "testing"

// TestWriteKeepsCrtime: rewriting an existing file moves its mtime and
// ctime, never its creation time.
func TestWriteKeepsCrtime(t *testing.T) {
	img := mkfs(t, "", 16, "-t", "ext4")
	w := openW(t, img)
	if err := w.ReplaceFile("/f", []byte("first")); err != nil {
		t.Fatal(err)
	}
	in, err := w.inode(lookupT(t, w, "/f"))
	if err != nil {
		t.Fatal(err)
	}
	born, bornExtra := in.raw.Crtime, in.raw.CrtimeExtra
	mtime, mtimeExtra := in.raw.Mtime, in.raw.MtimeExtra
	for _, op := range []func() error{
		func() error { return w.AppendFile("/f", []byte(" second")) },
		func() error { return w.ReplaceFile("/f", []byte("third")) },
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	in, err = w.inode(lookupT(t, w, "/f"))
	if err != nil {
		t.Fatal(err)
	}
	if in.raw.Crtime != born || in.raw.CrtimeExtra != bornExtra {
		t.Errorf("crtime moved: %d.%#x -> %d.%#x", born, bornExtra, in.raw.Crtime, in.raw.CrtimeExtra)
	}
	if in.raw.Mtime == mtime && in.raw.MtimeExtra == mtimeExtra {
		t.Errorf("mtime did not move on rewrite")
	}
	fsck(t, img)
}
