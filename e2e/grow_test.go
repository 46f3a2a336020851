package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// growBase builds a 2 GiB GPT disk (raw) whose one partition, from 1 MiB
// to the end, holds the demo guest in ext4; with swap, the root ends at
// 1.5 GiB and a swap partition follows it.
func growBase(t *testing.T, dir string, swap bool) string {
	t.Helper()
	raw := emptyFile(t, filepath.Join(dir, "base.raw"), 2<<30)
	args := []string{"-n1:2048:0"}
	if swap {
		args = []string{"-n1:2048:+1535M", "-n2:0:0", "-t2:8200"}
	}
	testtool.Run(t, "sgdisk", append(args, raw)...)
	start, size := gptPart(t, raw, 1)
	mkfsAt(t, raw, start, size, guestTree(t, "grow"))
	if swap {
		s2, z2 := gptPart(t, raw, 2)
		mkswapAt(t, raw, s2, z2)
	}
	return raw
}

// gptPart is partition n's byte offset and size as sfdisk reads them.
func gptPart(t *testing.T, raw string, n int) (int64, int64) {
	t.Helper()
	out := string(testtool.Run(t, "sfdisk", "--dump", raw))
	re := regexp.MustCompile(regexp.QuoteMeta(raw) + strconv.Itoa(n) + ` : start=\s*(\d+), size=\s*(\d+)`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sfdisk --dump has no partition %d:\n%s", n, out)
	}
	s, _ := strconv.ParseInt(m[1], 10, 64)
	z, _ := strconv.ParseInt(m[2], 10, 64)
	return s * 512, z * 512
}

// dumpe2fsField reads one line of dumpe2fs -h.
func dumpe2fsField(t *testing.T, fs, field string) int64 {
	t.Helper()
	out := string(testtool.Run(t, "dumpe2fs", "-h", fs))
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(field) + `:\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dumpe2fs -h has no %q", field)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestGrowOverlay20G is the nova flow with growth: a 2 GiB GPT qcow2 base
// gets a 20 GiB overlay whose partition and ext4 filesystem reach the new
// end of the disk, in the same run as the injection.
func TestGrowOverlay20G(t *testing.T) {
	dir := t.TempDir()
	raw := growBase(t, dir, false)
	base := filepath.Join(dir, "base.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-O", "qcow2", raw, base)
	baseSum := fileSum(t, base)
	over := filepath.Join(dir, "vm1.qcow2")
	p := newPayload(t)
	out := mustCLI(t, append(p.args, "--overlay", over, "--size", "20G", "--grow", base)...)
	if !strings.Contains(out, "grew partition 1") || !strings.Contains(out, "grew the filesystem") {
		t.Errorf("report says nothing of the growth:\n%s", out)
	}
	if fileSum(t, base) != baseSum {
		t.Error("the base changed")
	}
	qemuCheckClean(t, over)
	flat := toRaw(t, over)
	if out, code := testtool.Output(t, "sgdisk", "-v", flat); code != 0 || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v: exit %d\n%s", code, out)
	}
	// growpart's choice on the base grown to 20 GiB, untouched otherwise.
	ref := filepath.Join(dir, "ref.raw")
	copyFile(t, raw, ref)
	must(t, os.Truncate(ref, 20<<30))
	gp := string(testtool.Run(t, "growpart", "--dry-run", ref, "1"))
	m := regexp.MustCompile(`new: size=(\d+) end=(\d+)`).FindStringSubmatch(gp)
	if m == nil {
		t.Fatalf("growpart --dry-run:\n%s", gp)
	}
	start, size := gptPart(t, flat, 1)
	if want, _ := strconv.ParseInt(m[1], 10, 64); size != want*512 {
		t.Errorf("partition 1 is %d bytes, growpart would make it %d", size, want*512)
	}
	e2fsckClean(t, flat, start)
	bs := dumpe2fsField(t, fsAt(flat, start), "Block size")
	if blocks := dumpe2fsField(t, fsAt(flat, start), "Block count"); blocks != size/bs {
		t.Errorf("filesystem has %d blocks of %d, the partition holds %d", blocks, bs, size/bs)
	}
	if got := debugfsCat(t, flat, start, "/etc/image-name"); got != "grow\n" {
		t.Errorf("/etc/image-name is %q", got)
	}
	payloadLanded(t, p, flat, start)
}

// TestGrowRefusedWithSwapAfterRoot: a partition after the root is named
// and the run fails with nothing written: the overlay is removed.
func TestGrowRefusedWithSwapAfterRoot(t *testing.T) {
	dir := t.TempDir()
	raw := growBase(t, dir, true)
	sum := fileSum(t, raw)
	over := filepath.Join(dir, "vm1.qcow2")
	p := newPayload(t)
	r := cli(t, append(p.args, "--overlay", over, "--size", "4G", "--grow", raw)...)
	if r.code != 1 || !strings.Contains(r.stderr, "partition 2 (Linux swap") {
		t.Fatalf("exit %d, want 1 naming the swap partition:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(over); err == nil {
		t.Error("the overlay of a refused run was left behind")
	}
	if fileSum(t, raw) != sum {
		t.Error("the base changed")
	}
}

// TestGrowInPlaceAllOrNothing grows a raw image resized beforehand; a dry
// run and a run whose injection fails leave it unchanged, and a good run
// grows it.
func TestGrowInPlaceAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	raw := growBase(t, dir, false)
	must(t, os.Truncate(raw, 3<<30))
	sum := fileSum(t, raw)
	p := newPayload(t)
	out := mustCLI(t, append(p.args, "--dry-run", "--grow", raw)...)
	if !strings.Contains(out, "would grow partition 1") {
		t.Errorf("dry run report:\n%s", out)
	}
	r := cli(t, "--grow", "--key", demoKey, "--key-user", "nosuchuser", raw)
	if r.code != 1 {
		t.Fatalf("injection for a missing user: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if fileSum(t, raw) != sum {
		t.Fatal("a dry run or a failed injection changed the image (the growth was not discarded)")
	}
	mustCLI(t, append(p.args, "--grow", raw)...)
	start, size := gptPart(t, raw, 1)
	if size < 3<<30-2<<20 {
		t.Errorf("partition 1 is %d bytes after growth", size)
	}
	e2fsckClean(t, raw, start)
	payloadLanded(t, p, raw, start)
}

// payloadLanded checks a few of the payload's files with debugfs.
func payloadLanded(t *testing.T, p payload, raw string, start int64) {
	t.Helper()
	key, err := os.ReadFile(demoKey)
	must(t, err)
	for path, want := range map[string]string{
		"/root/.ssh/authorized_keys": strings.TrimSpace(string(key)) + "\n",
		"/etc/motd":                  p.motd,
		"/root/notes/deep/a.txt":     p.notes,
	} {
		if got := debugfsCat(t, raw, start, path); got != want {
			t.Errorf("debugfs cat %s: %q, want %q", path, got, want)
		}
	}
}

// TestGrowMBRLogicalInPlace: the root in the last logical partition of an
// MBR disk resized beforehand; the extended partition and the logical one
// grow to growpart's end, the filesystem fills it.
func TestGrowMBRLogicalInPlace(t *testing.T) {
	dir := t.TempDir()
	raw := emptyFile(t, filepath.Join(dir, "disk.raw"), 512<<20)
	runStdin(t, "label: dos\n,100M,83\n,,E\n,,83\n", "sfdisk", "--no-reread", "--no-tell-kernel", raw)
	start, size := gptPart(t, raw, 5)
	mkfsAt(t, raw, start, size, guestTree(t, "mbr"))
	must(t, os.Truncate(raw, 1<<30))
	p := newPayload(t)
	out := mustCLI(t, append(p.args, "--grow", raw)...)
	if !strings.Contains(out, "grew partition 5") {
		t.Errorf("report:\n%s", out)
	}
	if out, code := testtool.Output(t, "sfdisk", "--verify", raw); code != 0 {
		t.Errorf("sfdisk --verify: exit %d\n%s", code, out)
	}
	s5, z5 := gptPart(t, raw, 5)
	s2, z2 := gptPart(t, raw, 2)
	last := int64(1<<30)/512 - 34
	if (s5+z5)/512-1 != last || (s2+z2)/512-1 != last {
		t.Errorf("logical 5 ends at %d, extended at %d, want both at %d", (s5+z5)/512-1, (s2+z2)/512-1, last)
	}
	e2fsckClean(t, raw, s5)
	// resize2fs (and Grow) keep whole 4 KiB pages with smaller blocks.
	bs := dumpe2fsField(t, fsAt(raw, s5), "Block size")
	if blocks := dumpe2fsField(t, fsAt(raw, s5), "Block count"); blocks*bs > z5 || z5-blocks*bs >= 4096 {
		t.Errorf("filesystem of %d blocks of %d in a %d-byte partition", blocks, bs, z5)
	}
	payloadLanded(t, p, raw, s5)
}
