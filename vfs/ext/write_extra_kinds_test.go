package ext

import "testing"

// TestWriteMoreLayouts: less common mke2fs layouts, same operations as
// TestWriteBasicOps plus a write large enough to reach uninitialised
// groups.
func TestWriteMoreLayouts(t *testing.T) {
	for _, k := range []struct {
		name string
		args []string
	}{
		{"small-groups", []string{"-t", "ext4", "-b", "1024", "-g", "2048"}},
		{"packed-meta", []string{"-t", "ext4", "-E", "packed_meta_blocks=1"}},
		{"flex4", []string{"-t", "ext4", "-b", "1024", "-G", "4"}},
		{"ext2-nofiletype", []string{"-t", "ext2", "-O", "^filetype"}},
		{"ext4-nodirindex", []string{"-t", "ext4", "-O", "^dir_index"}},
		{"ext3-extents", []string{"-t", "ext3", "-O", "extent"}},
		{"huge-ratio", []string{"-t", "ext4", "-T", "huge"}},
		{"many-inodes", []string{"-t", "ext4", "-b", "1024", "-N", "60000"}},
		{"desc128", []string{"-t", "ext4", "-E", "desc_size=128"}},
	} {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, "", 64, k.args...)
			basicOps(t, img)
			w := openW(t, img)
			if err := w.ReplaceFile("/bulk", make([]byte, 12<<20)); err != nil {
				t.Fatal(err)
			}
			fsck(t, img)
		})
	}
}
