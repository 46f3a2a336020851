package xfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// growCase is one filesystem grown by the engine and by the kernel.
type growCase struct {
	name     string
	mkfs     []string
	from, to int64 // bytes
}

func growCases() []growCase {
	return []growCase{
		{"v5 default, new AGs", nil, 300 << 20, 1200 << 20},
		{"v5 last AG only", []string{"-d", "agcount=3"}, 301 << 20, 301<<20 + 4096},
		{"v5 last AG filled and a small new one", []string{"-d", "agcount=3"}, 301 << 20, 330 << 20},
		{"v5 partial last AG then new ones", []string{"-d", "size=301m"}, 301 << 20, 900<<20 + 100<<10},
		{"v4", []string{"-m", "crc=0"}, 300 << 20, 1100 << 20},
		{"v5 1k blocks", []string{"-b", "size=1024"}, 300 << 20, 700 << 20},
		{"v5 4k sectors", []string{"-s", "size=4096"}, 300 << 20, 1000 << 20},
		{"v5 no reflink finobt", []string{"-m", "reflink=0,finobt=0"}, 300 << 20, 800 << 20},
	}
}

// growField lists the superblock fields compared with the kernel's result.
var growFields = []string{"dblocks", "agcount", "fdblocks", "icount", "ifree", "agblocks"}

// agFree is what an AG holds free as the kernel counts it into fdblocks.
func agFree(t *testing.T, img string, ag int) (length, free uint64) {
	length = dbField(t, img, "length", fmt.Sprintf("agf %d", ag))
	free = dbField(t, img, "freeblks", fmt.Sprintf("agf %d", ag)) +
		dbField(t, img, "flcount", fmt.Sprintf("agf %d", ag)) +
		dbField(t, img, "btreeblks", fmt.Sprintf("agf %d", ag))
	return length, free
}

// TestGrowMatchesKernel: every case grown by Grow passes xfs_repair -n,
// keeps its files, and has the geometry, free space and per-AG lengths
// and free counts the kernel's xfs_growfs (libguestfs appliance, software
// emulation) gives the same starting image.
func TestGrowMatchesKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the libguestfs appliance (-short skips it)")
	}
	needTool(t, "guestfish")
	dir := t.TempDir()
	cases := growCases()
	ours := make([]string, len(cases))
	kernel := make([]string, len(cases))
	gf := []string{"--rw"}
	script := []string{"run"}
	for i, c := range cases {
		src := filepath.Join(dir, fmt.Sprintf("src%d", i))
		writeTree(t, src, map[string]string{"etc/hostname": "grown\n", "data/a": strings.Repeat("x", 100000)})
		ours[i] = filepath.Join(dir, fmt.Sprintf("ours%d.img", i))
		mkfsTree(t, ours[i], src, c.from, c.mkfs...)
		if err := os.Truncate(ours[i], c.to); err != nil {
			t.Fatal(err)
		}
		kernel[i] = filepath.Join(dir, fmt.Sprintf("kernel%d.img", i))
		run(t, "cp", "--sparse=always", ours[i], kernel[i])
		gf = append(gf, "-a", kernel[i])
		dev := "/dev/sd" + string(rune('a'+i))
		script = append(script, ":", "mount", dev, "/", ":", "xfs-growfs", "/", ":", "umount-all")
	}
	for i, c := range cases {
		f := openRW(t, ours[i])
		r, err := f.Grow(c.to)
		if err != nil {
			t.Fatalf("%s: Grow: %v", c.name, err)
		}
		if !r.Changed() {
			t.Fatalf("%s: nothing grown: %+v", c.name, r)
		}
		repairClean(t, ours[i])
		if got, err := f.ReadFile("/etc/hostname"); err != nil || string(got) != "grown\n" {
			t.Errorf("%s: /etc/hostname after growing: %q, %v", c.name, got, err)
		}
	}
	cmd := exec.Command("guestfish", append(gf, script...)...)
	cmd.Env = append(os.Environ(), "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("guestfish xfs-growfs: %v\n%s", err, out)
	}
	for i, c := range cases {
		for _, fld := range growFields {
			if o, k := dbField(t, ours[i], fld, "sb 0"), dbField(t, kernel[i], fld, "sb 0"); o != k {
				t.Errorf("%s: sb %s = %d, the kernel's %d", c.name, fld, o, k)
			}
		}
		for ag := 0; ag < int(dbField(t, kernel[i], "agcount", "sb 0")); ag++ {
			ol, of := agFree(t, ours[i], ag)
			kl, kf := agFree(t, kernel[i], ag)
			if ol != kl || of != kf {
				t.Errorf("%s: AG %d length %d free %d, the kernel's %d and %d", c.name, ag, ol, of, kl, kf)
			}
		}
	}
}

// TestGrowRefusals: shrinking, a size past the device, and a dirty log
// are refused with the image unchanged; a size that adds less than a
// minimum AG beyond full AGs leaves the tail out, as the kernel does.
func TestGrowRefusals(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.img")
	mkfs(t, img, 300<<20, "-d", "agcount=4")
	before, _ := os.ReadFile(img)
	f := openRW(t, img)
	if _, err := f.Grow(200 << 20); err == nil || !strings.Contains(err.Error(), "shrinking") {
		t.Errorf("shrink: %v", err)
	}
	if _, err := f.Grow(400 << 20); err == nil {
		t.Error("growing past the device succeeded")
	}
	if r, err := f.Grow(300 << 20); err != nil || r.Changed() {
		t.Errorf("same size: %+v, %v", r, err)
	}
	if after, _ := os.ReadFile(img); string(after) != string(before) {
		t.Fatal("a refused growth changed the image")
	}
	// Growing an rmapbt filesystem is refused (new AGs would need
	// rmapbt roots and records), before any write.
	rimg := filepath.Join(dir, "rmap.img")
	mkfs(t, rimg, 300<<20, "-m", "rmapbt=1")
	if err := os.Truncate(rimg, 400<<20); err != nil {
		t.Fatal(err)
	}
	rbefore, _ := os.ReadFile(rimg)
	if _, err := openRW(t, rimg).Grow(400 << 20); !errors.Is(err, ErrUnsupportedFeature) {
		t.Errorf("growing rmapbt: %v, want ErrUnsupportedFeature", err)
	}
	if after, _ := os.ReadFile(rimg); string(after) != string(rbefore) {
		t.Fatal("a refused rmapbt growth changed the image")
	}
	// 4 AGs of 19200 blocks; 40 blocks more would make a 40-block AG.
	if err := os.Truncate(img, 300<<20+40*4096); err != nil {
		t.Fatal(err)
	}
	f = openRW(t, img)
	r, err := f.CheckGrow(300<<20 + 40*4096)
	if err != nil || r.Changed() || r.DroppedTailBlock != 40 {
		t.Errorf("a too-small tail: %+v, %v", r, err)
	}
}

// writeTree writes files (relative path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkGrow2GiBTo1TiB grows a fresh 2 GiB filesystem (4 AGs of
// 512 MiB) to 1 TiB (2048 AGs) on a sparse file: the cost is the new
// AGs' headers and roots, not the size.
func BenchmarkGrow2GiBTo1TiB(b *testing.B) {
	dir := b.TempDir()
	base := filepath.Join(dir, "base.img")
	mkfs(b, base, 2<<30)
	for b.Loop() {
		b.StopTimer()
		img := filepath.Join(dir, "grow.img")
		run(b, "cp", "--sparse=always", base, img)
		if err := os.Truncate(img, 1<<40); err != nil {
			b.Fatal(err)
		}
		f := openRW(b, img)
		b.StartTimer()
		r, err := f.Grow(1 << 40)
		if err != nil || r.NewAGs != 2048 {
			b.Fatalf("%+v, %v", r, err)
		}
		b.ReportMetric(float64(r.Bytes), "bytes-written")
	}
}
