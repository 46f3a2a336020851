package partition

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
)

// newImage creates a sparse file of size bytes in a temporary directory.
func newImage(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

// runStdin runs a reference tool with stdin, failing the test on error.
func runStdin(t testing.TB, stdin, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testtool.Need(t, name)[0], args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return out.Bytes()
}

// sfdiskScript writes a partition table with sfdisk.
func sfdiskScript(t testing.TB, img, script string) {
	t.Helper()
	runStdin(t, script, "sfdisk", "--no-reread", "--no-tell-kernel", img)
}

// sfTable is the part of `sfdisk --json` the tests compare with.
type sfTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Attrs    string `json:"attrs"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func sfdiskJSON(t testing.TB, img string) sfTable {
	t.Helper()
	var st sfTable
	out := testtool.Run(t, "sfdisk", "--json", img)
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	return st
}

// nodeNumber is the partition number at the end of an sfdisk node name.
func nodeNumber(t testing.TB, node string) int {
	t.Helper()
	i := len(node)
	for i > 0 && node[i-1] >= '0' && node[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(node[i:])
	if err != nil {
		t.Fatalf("node %q: %v", node, err)
	}
	return n
}

// sfdiskTypeNames maps partition numbers to the type names `sfdisk -l` prints.
func sfdiskTypeNames(t testing.TB, img string) map[int]string {
	t.Helper()
	out := testtool.Run(t, "sfdisk", "-l", "-o", "Device,Type", img)
	names := map[int]string{}
	inList := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Device") {
			inList = true
			continue
		}
		if !inList {
			continue
		}
		if strings.TrimSpace(line) == "" {
			break
		}
		dev, typ, _ := strings.Cut(line, " ")
		names[nodeNumber(t, dev)] = strings.TrimSpace(typ)
	}
	return names
}

// readImage runs Read on an image file.
func readImage(t testing.TB, img string, o Options) (*Table, error) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return ReadOptions(f, st.Size(), o)
}

// mustRead is readImage failing the test on error.
func mustRead(t testing.TB, img string, o Options) *Table {
	t.Helper()
	tab, err := readImage(t, img, o)
	if err != nil {
		t.Fatalf("Read %s: %v", img, err)
	}
	return tab
}

// compareWithSfdisk checks every partition against sfdisk's view.
func compareWithSfdisk(t *testing.T, tab *Table, img string) {
	t.Helper()
	st := sfdiskJSON(t, img)
	want := st.PartitionTable
	if string(tab.Scheme) != map[string]string{"dos": "mbr", "gpt": "gpt"}[want.Label] {
		t.Fatalf("scheme %q, sfdisk says %q", tab.Scheme, want.Label)
	}
	if len(tab.Partitions) != len(want.Partitions) {
		t.Fatalf("%d partitions, sfdisk lists %d: %+v", len(tab.Partitions), len(want.Partitions), tab.Partitions)
	}
	ss := int64(tab.SectorSize)
	for i, w := range want.Partitions {
		g := tab.Partitions[i]
		if g.Number != nodeNumber(t, w.Node) || g.Start != w.Start*ss || g.Size != w.Size*ss {
			t.Errorf("partition %d: number %d bytes %d+%d; sfdisk: %s sectors %d+%d", i, g.Number, g.Start, g.Size, w.Node, w.Start, w.Size)
		}
		wantType := w.Type
		if want.Label == "dos" {
			v, err := strconv.ParseUint(w.Type, 16, 8)
			if err != nil {
				t.Fatalf("sfdisk type %q: %v", w.Type, err)
			}
			wantType = fmt.Sprintf("0x%02x", v)
		}
		if g.Type != wantType || g.GUID != w.UUID || g.Name != w.Name {
			t.Errorf("partition %d: type %q guid %q name %q; sfdisk %q %q %q", g.Number, g.Type, g.GUID, g.Name, wantType, w.UUID, w.Name)
		}
		wantBoot := w.Bootable || strings.Contains(w.Attrs, "LegacyBIOSBootable")
		if g.Bootable != wantBoot {
			t.Errorf("partition %d: bootable %v, sfdisk %v (%q)", g.Number, g.Bootable, wantBoot, w.Attrs)
		}
	}
	names := sfdiskTypeNames(t, img)
	for _, p := range tab.Partitions {
		if names[p.Number] != p.TypeName {
			t.Errorf("partition %d: type name %q, sfdisk -l says %q", p.Number, p.TypeName, names[p.Number])
		}
	}
}

// openFile opens an image read-write for the test's lifetime.
func openFile(t testing.TB, img string) *os.File {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
