package diskimage

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/internal/testtool"
)

// TestQuotaCrashAtEveryWrite: on a filesystem with user, group and
// project quota, the quota files change in the same journaled commit as
// the tree. The whole payload plus files given to new ids is injected
// through the staging area; the stream of writes and flushes is cut at
// every write, the journal replayed alone (e2fsck -E journal_only), and
// e2fsck -fn must then find the quota files in step with the tree: old
// tree with old usage, or new tree with new usage, never a mix.
func TestQuotaCrashAtEveryWrite(t *testing.T) {
	testtool.Need(t, "mke2fs", "e2fsck", "debugfs")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	testtool.Run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-I", "256", "-O", "quota,project",
		"-E", "quotatype=usrquota:grpquota:prjquota", "-d", testtool.DemoGuest(t), base, "32M")
	testtool.Output(t, "e2fsck", "-fy", base) // mke2fs -d leaves the quota files behind the tree
	quotaFsck(t, base, "the base image")
	raw, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	data := crashPayload(t)
	data.Ops = append(data.Ops,
		inject.Operation{Name: "mkdir", Arg: "/srv/q"},
		inject.Operation{Name: "write", Arg: "/srv/q/a:owned by a new id"},
		inject.Operation{Name: "chown", Arg: "4242:4343:/srv/q/a"},
		inject.Operation{Name: "chown", Arg: "5151:5252:/srv/q"})
	d := &crashDisk{b: append([]byte(nil), raw...), block: 1024 << binary.LittleEndian.Uint32(raw[1024+24:])}
	im, err := OpenDisk(d, Options{Writable: true, Partition: "none", Warn: func(m string) {
		if strings.Contains(m, "unjournaled") {
			t.Errorf("not journaled: %s", m)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inject.Apply(im.FS, data, nil); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, "final.img")
	if err := os.WriteFile(final, d.b, 0o644); err != nil {
		t.Fatal(err)
	}
	quotaFsck(t, final, "the injected image")
	if out := testtool.Run(t, "debugfs", "-R", "list_quota user", final); !strings.Contains(string(out), "4242") {
		t.Fatalf("user 4242 has no quota entry:\n%s", out)
	}
	states := crashStates(d.log)
	step := 1
	if testing.Short() {
		step = 7
	}
	t.Logf("%d writes and flushes, %d crash states", len(d.log), len(states))
	img := filepath.Join(dir, "cut.img")
	for i := 0; i < len(states); i += step {
		cut := append([]byte(nil), raw...)
		for _, w := range states[i] {
			copy(cut[w.off:], w.data)
		}
		if err := os.WriteFile(img, cut, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, code := testtool.Output(t, "e2fsck", "-fy", "-E", "journal_only", img); code >= 4 {
			t.Fatalf("state %d: e2fsck -E journal_only exit %d\n%s", i, code, out)
		}
		quotaFsck(t, img, "state "+strconv.Itoa(i))
	}
}

// quotaFsck fails unless e2fsck -fn finds img clean, quota files included.
func quotaFsck(t *testing.T, img, what string) {
	t.Helper()
	out, code := testtool.Output(t, "e2fsck", "-fn", img)
	text := strings.ReplaceAll(string(out), img, "IMG") // the test's name holds "Quota"
	if code != 0 || strings.Contains(strings.ToLower(text), "quota") {
		t.Fatalf("%s: e2fsck -fn exit %d\n%s", what, code, out)
	}
}
