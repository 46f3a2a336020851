package diskimage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/diskimage/stage"
	"github.com/guestinject/guestinject/internal/testtool"
)

// recDisk records the writes and flushes that reach the disk.
type recDisk struct {
	formats.Disk
	ops []string
}

func (d *recDisk) WriteAt(p []byte, off int64) (int, error) {
	d.ops = append(d.ops, fmt.Sprintf("write %d+%d", off, len(p)))
	return d.Disk.WriteAt(p, off)
}

func (d *recDisk) Flush() error {
	d.ops = append(d.ops, "flush")
	return d.Disk.Flush()
}

// joinWrites is a recorded stream ("write OFF+LEN", "flush") as a stage
// commits it: consecutive writes touching end to end joined, up to
// stage.MaxRun bytes.
func joinWrites(ops []string) []string {
	var out []string
	var off, n int64
	open := false
	for _, o := range ops {
		var a, k int64
		if _, err := fmt.Sscanf(o, "write %d+%d", &a, &k); err != nil {
			if open {
				out = append(out, fmt.Sprintf("write %d+%d", off, n))
				open = false
			}
			out = append(out, o)
			continue
		}
		if open && a == off+n && n+k <= stage.MaxRun {
			n += k
			continue
		}
		if open {
			out = append(out, fmt.Sprintf("write %d+%d", off, n))
		}
		off, n, open = a, k, true
	}
	if open {
		out = append(out, fmt.Sprintf("write %d+%d", off, n))
	}
	return out
}

// nova is a payload with every kind of item, deterministic in size (a
// fixed hash, not a salted one).
func nova() *inject.Data {
	return &inject.Data{
		Keys:          []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAXmH5f3SRUnDJqFeVDiUqbx4C4gUbB9kve1m8r+o9i1 demo@guestinject"},
		Meta:          map[string]string{"role": "web", "uuid": "vm1"},
		AdminPassword: &inject.Password{Hash: "$6$0123456789abcdef$" + string(bytes.Repeat([]byte("x"), 86))},
		Files: []inject.File{
			{Path: "/etc/motd", Data: []byte("hello\n")},
			{Path: "/opt/app/data.bin", Data: bytes.Repeat([]byte{0xa5}, 200<<10)},
		},
	}
}

// injectRecorded opens img through a recording disk, applies the payload
// and closes; it returns the disk operations before Close and in all.
func injectRecorded(t *testing.T, img string, o Options, unjournaled bool) (beforeClose, all []string) {
	t.Helper()
	disk, err := formats.Open(img, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rd := &recDisk{Disk: disk}
	o.Writable, o.Partition = true, "none"
	im, err := OpenDisk(rd, o)
	if err != nil {
		disk.Close()
		t.Fatal(err)
	}
	if _, err := inject.Apply(im.FS, nova(), nil); err != nil {
		im.Close()
		t.Fatal(err)
	}
	beforeClose = append([]string(nil), rd.ops...)
	im.Unjournaled = unjournaled
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	return beforeClose, rd.ops
}

// A staged injection writes nothing until Close commits it; unjournaled
// (Image.Unjournaled) it then makes exactly the writes (offsets, lengths,
// order, flushes) of an unstaged run of the same payload on a copy of the
// same image, but for writes touching end to end between two flushes,
// which the stage joins into one (joinWrites); journaled (the default) it writes differently (the log
// first) to the same end. All three are e2fsck-clean with the same
// files. (The bytes differ only by the timestamps of the runs.)
func TestStagedInjectionMatchesUnstaged(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "unstaged.img"), filepath.Join(dir, "staged.img"), filepath.Join(dir, "journaled.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", testtool.DemoGuest(t), a, "16M")
	body, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{b, c} {
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unstagedEarly, unstaged := injectRecorded(t, a, Options{StageLimit: -1}, false)
	stagedEarly, staged := injectRecorded(t, b, Options{}, true)
	journaledEarly, journaled := injectRecorded(t, c, Options{}, false)
	if len(journaledEarly) != 0 {
		t.Fatalf("the journaled run wrote to the disk before Commit: %v", journaledEarly)
	}
	if fmt.Sprint(journaled) == fmt.Sprint(unstaged) {
		t.Fatal("the journaled run wrote what the unjournaled one does")
	}
	if len(unstagedEarly) == 0 {
		t.Fatal("the unstaged run wrote nothing before Close: the comparison proves nothing")
	}
	if len(stagedEarly) != 0 {
		t.Fatalf("the staged run wrote to the disk before Commit: %v", stagedEarly)
	}
	if want := joinWrites(unstaged); fmt.Sprint(staged) != fmt.Sprint(want) {
		t.Fatalf("staged writes differ from the unstaged run's (adjacent writes joined):\n staged %v\nunstaged %v", staged, want)
	}
	if len(joinWrites(unstaged)) == len(unstaged) {
		t.Fatal("no two writes of the unstaged run touch: the joining is not exercised")
	}
	for _, img := range []string{a, b, c} {
		if out, code := testtool.Output(t, "e2fsck", "-fn", img); code != 0 {
			t.Fatalf("e2fsck -fn %s: exit %d\n%s", img, code, out)
		}
		for _, p := range []string{"/opt/app/data.bin", "/etc/motd", "/meta.js", "/root/.ssh/authorized_keys"} {
			if got, want := testtool.Run(t, "debugfs", "-R", "cat "+p, img), testtool.Run(t, "debugfs", "-R", "cat "+p, a); !bytes.Equal(got, want) {
				t.Errorf("%s in %s differs from the unstaged run", p, img)
			}
		}
	}
}

// Staged bytes are bounded: an injection that would stage more than the
// limit fails with stage.ErrLimit and leaves the image unchanged.
func TestStageLimitRefusesAndWritesNothing(t *testing.T) {
	img := filepath.Join(t.TempDir(), "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", "-d", guestTree(t, "Limit"), img, "16M")
	before, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	im, err := Open(img, Options{Writable: true, Partition: "none", StageLimit: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	_, err = inject.Apply(im.FS, &inject.Data{Meta: map[string]string{"a": "b"},
		Files: []inject.File{{Path: "/big", Data: make([]byte, 1<<20)}}}, nil)
	if !errors.Is(err, stage.ErrLimit) {
		t.Errorf("apply: %v, want stage.ErrLimit", err)
	}
	im.Discard()
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the image changed")
	}
}

// BenchmarkStagedNova measures what staging costs an injection in process:
// the nova payload into one raw ext4 image, opened, applied and closed
// (fsync included) each iteration, staged and unstaged.
//
//	go test -run '^$' -bench StagedNova -count 3 ./inject/diskimage
func BenchmarkStagedNova(b *testing.B) {
	img := filepath.Join(b.TempDir(), "fs.img")
	testtool.Run(b, "mkfs.ext4", "-q", "-F", "-d", testtool.DemoGuest(b), img, "64M")
	for _, c := range []struct {
		name  string
		limit int64
	}{{"staged", 0}, {"unstaged", -1}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				im, err := Open(img, Options{Writable: true, Partition: "none", StageLimit: c.limit})
				if err != nil {
					b.Fatal(err)
				}
				_, err = inject.Apply(im.FS, nova(), nil)
				if cerr := im.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
