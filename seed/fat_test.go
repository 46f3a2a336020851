package seed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkFAT runs the vfat oracles on img: fsck.fat -n finds nothing,
// blkid reads the label and type, mtools lists every long name and reads
// every file back byte for byte. It returns fsck.fat's verbose report.
func checkFAT(t *testing.T, img, label, fatType string, files []File) string {
	t.Helper()
	need(t, "fsck.fat", "blkid", "mcopy", "mdir")
	cmd := exec.Command("fsck.fat", "-n", "-v", img)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
	report := string(out)
	if !strings.Contains(report, strings.TrimPrefix(fatType, "FAT")+" bit entries") {
		t.Errorf("fsck.fat does not see %s:\n%s", fatType, report)
	}
	if got := strings.TrimSpace(run(t, "", "blkid", "-p", "-o", "value", "-s", "LABEL", img)); got != label {
		t.Errorf("blkid LABEL = %q, want %q", got, label)
	}
	if got := strings.TrimSpace(run(t, "", "blkid", "-p", "-o", "value", "-s", "TYPE", img)); got != "vfat" {
		t.Errorf("blkid TYPE = %q, want vfat", got)
	}
	dir := t.TempDir()
	for _, f := range files {
		listing := run(t, "", "mdir", "-i", img, "-b", "::/"+path.Dir(f.Path))
		if !strings.Contains(listing, "::/"+f.Path+"\n") && !strings.Contains(listing, "::"+f.Path+"\n") {
			t.Errorf("mdir of %s lacks %s:\n%s", path.Dir(f.Path), f.Path, listing)
		}
		dst := filepath.Join(dir, strings.ReplaceAll(f.Path, "/", "_"))
		run(t, "", "mcopy", "-n", "-i", img, "::/"+f.Path, dst)
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s read back %d bytes, want %d", f.Path, len(got), len(f.Data))
		}
	}
	return report
}

func writeFATImage(t *testing.T, f Format, files []File, stamp time.Time) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "seed.img")
	if err := Write(img, f, VFAT, files, stamp); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestVFATNoCloud: the NoCloud seed as FAT12: label cidata, long names
// (meta-data, network-config), fsck.fat clean, every file back.
func TestVFATNoCloud(t *testing.T) {
	files, err := Build(NoCloud, sample(t))
	if err != nil {
		t.Fatal(err)
	}
	img := writeFATImage(t, NoCloud, files, time.Time{})
	checkFAT(t, img, "cidata", "FAT12", files)
	if l := run(t, "", "mdir", "-i", img, "::/"); !strings.Contains(l, "2000-01-01") {
		t.Errorf("the default stamp is not the files' date:\n%s", l)
	}
}

// TestVFATConfigDrive: the config drive's nested directories as vfat.
func TestVFATConfigDrive(t *testing.T) {
	files, err := Build(ConfigDrive, sample(t))
	if err != nil {
		t.Fatal(err)
	}
	img := writeFATImage(t, ConfigDrive, files, time.Time{})
	checkFAT(t, img, "config-2", "FAT12", files)
}

// TestVFATSixteen: enough data for 4085 clusters or more makes FAT16;
// a file larger than FAT16 holds with 512-byte clusters takes larger ones.
func TestVFATSixteen(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	files := []File{{Path: "meta-data", Data: []byte("instance-id: a\n")}, {Path: "big/blob.bin", Data: big}}
	checkFAT(t, writeFATImage(t, NoCloud, files, time.Time{}), "cidata", "FAT16", files)
	huge := bytes.Repeat([]byte{0x5a}, 40<<20)
	files = []File{{Path: "user-data", Data: huge}}
	img := writeFATImage(t, NoCloud, files, time.Time{})
	report := checkFAT(t, img, "cidata", "FAT16", files)
	if !strings.Contains(report, "1024 bytes per cluster") {
		t.Errorf("40 MiB should take 1 KiB clusters:\n%s", report)
	}
}

// TestVFATNames: short-name tails stay unique in a directory, exact 8.3
// names need no long name, Unicode and long names come back through
// mtools, and names FAT cannot keep apart or hold are refused.
func TestVFATNames(t *testing.T) {
	var files []File
	for i := range 12 {
		files = append(files, File{Path: fmt.Sprintf("dir/long-name-number-%02d.json", i), Data: []byte{byte(i)}})
	}
	files = append(files,
		File{Path: "README.TXT", Data: []byte("exact")},
		File{Path: "héllo wörld ✓.txt", Data: []byte("unicode")},
		File{Path: strings.Repeat("x", 200), Data: []byte("long")},
		File{Path: ".hidden", Data: nil},
		File{Path: "ro", Data: []byte("r"), Mode: 0o444},
	)
	img := writeFATImage(t, NoCloud, files, time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC))
	checkFAT(t, img, "cidata", "FAT12", files)
	if l := run(t, "", "mdir", "-i", img, "::/"); !strings.Contains(l, "2024-05-06") {
		t.Errorf("the stamp is not the files' date:\n%s", l)
	}
	if a := run(t, "", "mattrib", "-i", img, "::/ro"); !strings.Contains(a, "R") {
		t.Errorf("a 0444 file is not read-only: %s", a)
	}
	for name, bad := range map[string][]File{
		"case twins":     {{Path: "Meta", Data: nil}, {Path: "meta", Data: nil}},
		"colon":          {{Path: "a:b", Data: nil}},
		"trailing dot":   {{Path: "a.", Data: nil}},
		"file and dir":   {{Path: "a", Data: nil}, {Path: "a/b", Data: nil}},
		"dotdot":         {{Path: "../a", Data: nil}},
		"name too long":  {{Path: strings.Repeat("y", 256), Data: nil}},
		"root too full":  manyRoot(600),
		"label too long": nil,
	} {
		label := NoCloud
		if name == "label too long" {
			if err := writeFAT(nil, "a-label-too-long", nil, DefaultTime); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		out := filepath.Join(t.TempDir(), "x.img")
		if err := Write(out, label, VFAT, bad, time.Time{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: an output was left", name)
		}
	}
	if err := Write(filepath.Join(t.TempDir(), "x.img"), OpenNebula, VFAT, files[:1], time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("opennebula as vfat: %v", err)
	}
	if err := Write(filepath.Join(t.TempDir(), "x.img"), NoCloud, VFAT, files[:1], time.Date(1979, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a 1979 stamp: %v", err)
	}
}

func manyRoot(n int) []File {
	var files []File
	for i := range n {
		files = append(files, File{Path: fmt.Sprintf("F%d", i)})
	}
	return files
}

// TestVFATReproducible: the same files give the same bytes.
func TestVFATReproducible(t *testing.T) {
	files, err := Build(ConfigDrive, sample(t))
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(writeFATImage(t, ConfigDrive, files, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	b, err := os.ReadFile(writeFATImage(t, ConfigDrive, files, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same files differ")
	}
}
