package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/xfs"
)

// Report is what `inject inspect` prints: the container, its backing
// chain, the partition table, each filesystem and the detected root.
type Report struct {
	Path        string            `json:"path"`
	Format      string            `json:"format"`
	VirtualSize int64             `json:"virtual_size"`
	FileSize    int64             `json:"file_size"` // bytes the image file occupies on the host
	Qcow2       *Qcow2Report      `json:"qcow2,omitempty"`
	Backing     []BackingReport   `json:"backing_chain,omitempty"` // nearest first
	Table       TableReport       `json:"partition_table"`
	Partitions  []PartitionReport `json:"partitions"`
	Root        *RootReport       `json:"root,omitempty"`
	RootError   string            `json:"root_error,omitempty"`
}

// Qcow2Report holds the qcow2 header details.
type Qcow2Report struct {
	Version      int      `json:"version"`
	ClusterSize  int      `json:"cluster_size"`
	RefcountBits int      `json:"refcount_bits"`
	Compression  string   `json:"compression"`
	Snapshots    int      `json:"snapshots"`
	Features     []string `json:"features"`
}

// BackingReport is one backing file of the chain.
type BackingReport struct {
	Name        string `json:"name"` // as the image above names it
	Path        string `json:"path"` // what was opened
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual_size"`
}

// TableReport summarises the partition table.
type TableReport struct {
	Scheme     string   `json:"scheme"`
	SectorSize int      `json:"sector_size"`
	DiskGUID   string   `json:"disk_guid,omitempty"`
	Hybrid     bool     `json:"hybrid_mbr,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// PartitionReport is one partition and what it holds. Number 0 is the
// whole disk of a disk with no partition table.
type PartitionReport struct {
	Number     int       `json:"number"`
	Start      int64     `json:"start"`
	Size       int64     `json:"size"`
	Type       string    `json:"type,omitempty"`
	TypeName   string    `json:"type_name,omitempty"`
	Name       string    `json:"name,omitempty"`
	GUID       string    `json:"guid,omitempty"`
	Bootable   bool      `json:"bootable,omitempty"`
	Logical    bool      `json:"logical,omitempty"`
	Extended   bool      `json:"extended,omitempty"`
	Content    Candidate `json:"content"`
	Filesystem *FSReport `json:"filesystem,omitempty"`
}

func partitionReport(p partition.Partition, c Candidate) PartitionReport {
	return PartitionReport{
		Number: p.Number, Start: p.Start, Size: p.Size, Type: p.Type, TypeName: p.TypeName,
		Name: p.Name, GUID: p.GUID, Bootable: p.Bootable, Logical: p.Logical, Extended: p.Extended,
		Content: c,
	}
}

// FSReport describes an ext or XFS filesystem.
type FSReport struct {
	Type       string   `json:"type"`
	Label      string   `json:"label,omitempty"`
	UUID       string   `json:"uuid"`
	Size       int64    `json:"size"`
	BlockSize  int      `json:"block_size"`
	FreeBytes  int64    `json:"free_bytes"`
	Inodes     uint32   `json:"inodes"`
	FreeInodes uint32   `json:"free_inodes"`
	Features   []string `json:"features"`
	Clean      bool     `json:"clean"`
	Journal    string   `json:"journal"`
}

// RootReport names the guest root and its operating system.
type RootReport struct {
	Partition  int    `json:"partition"`
	OSID       string `json:"os_id,omitempty"`
	OSName     string `json:"os_name,omitempty"`
	OSVersion  string `json:"os_version,omitempty"`
	PrettyName string `json:"pretty_name,omitempty"`
}

// Inspect opens path read-only and describes it. It reads the container's
// headers, the partition table, each partition's first blocks, and the few
// inodes of the root markers and os-release.
func Inspect(path string, o Options) (*Report, error) {
	o.Writable = false
	disk, err := formats.Open(path, formats.Options{Format: o.Format, ReadOnly: true, Backing: o.Backing, NoLock: o.NoLock})
	if err != nil {
		return nil, err
	}
	defer disk.Close()
	r := containerReport(path, disk.Info())
	t, err := partition.Read(disk, disk.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.Table = TableReport{Scheme: string(t.Scheme), SectorSize: t.SectorSize, DiskGUID: t.DiskGUID, Hybrid: t.Hybrid, Warnings: t.Warnings}
	for _, c := range Candidates(disk, disk.Size(), t) {
		p, err := t.Partition(c.Number)
		if err != nil {
			p = partition.Partition{Number: c.Number, Start: c.Start, Size: c.Size}
		}
		pr := partitionReport(p, c)
		pr.Filesystem = describeFS(disk, t, c)
		r.Partitions = append(r.Partitions, pr)
	}
	num, err := choose(disk, t, o)
	if err == nil {
		r.Root, err = describeRoot(disk, t, num)
	}
	if err != nil {
		r.RootError = err.Error()
	}
	return r, nil
}

// containerReport describes the image file and its backing chain.
func containerReport(path string, info *formats.Info) *Report {
	r := &Report{Path: path, Format: info.Format, VirtualSize: info.VirtualSize}
	if st, err := os.Stat(path); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			r.FileSize = sys.Blocks * 512
		}
	}
	if info.Format == formats.FormatQcow2 {
		r.Qcow2 = &Qcow2Report{Version: info.Version, ClusterSize: info.ClusterSize, RefcountBits: info.RefcountBits,
			Compression: info.Compression, Snapshots: info.Snapshots, Features: info.Features()}
		if r.Qcow2.Features == nil {
			r.Qcow2.Features = []string{}
		}
	}
	for _, b := range info.BackingChain {
		r.Backing = append(r.Backing, BackingReport{Name: b.Name, Path: b.Path, Format: b.Format, VirtualSize: b.VirtualSize})
	}
	return r
}

func describeFS(disk formats.Disk, t *partition.Table, c Candidate) *FSReport {
	if c.Kind == "xfs" {
		return describeXFS(disk, t, c)
	}
	if !strings.HasPrefix(c.Kind, "ext") {
		return nil
	}
	sec, err := section(disk, t, c.Number)
	if err != nil {
		return nil
	}
	fsys, err := ext.Open(sec, sec.Size(), &ext.Options{AllowDirtyJournal: true})
	if err != nil {
		return nil
	}
	in := fsys.Info()
	feats := append(append(append([]string{}, in.Compat...), in.Incompat...), in.ROCompat...)
	j := string(in.Journal.Kind)
	if in.Journal.NeedsRecovery {
		j += " (needs recovery)"
	}
	return &FSReport{
		Type: c.Kind, Label: in.Label, UUID: ext.UUIDString(in.UUID),
		Size: int64(in.BlocksCount) * int64(in.BlockSize), BlockSize: in.BlockSize,
		FreeBytes: int64(in.FreeBlocks) * int64(in.BlockSize), Inodes: in.InodesCount, FreeInodes: in.FreeInodes,
		Features: feats, Clean: in.Clean && !in.Errors, Journal: j,
	}
}

// describeXFS describes an XFS filesystem (read-only: Clean is the log's
// state, Journal says where the log is).
func describeXFS(disk formats.Disk, t *partition.Table, c Candidate) *FSReport {
	sec, err := section(disk, t, c.Number)
	if err != nil {
		return nil
	}
	fsys, err := xfs.Open(sec, sec.Size(), &xfs.Options{AllowDirtyLog: true})
	if err != nil {
		return nil
	}
	in := fsys.Info()
	j := "internal log"
	if in.Log.External {
		j = "external log"
	} else if !in.Log.Clean {
		j += " (needs recovery)"
	}
	return &FSReport{
		Type: c.Kind, Label: in.Label, UUID: xfs.UUIDString(in.UUID),
		Size: int64(in.Blocks) * int64(in.BlockSize), BlockSize: in.BlockSize,
		FreeBytes: int64(in.FreeBlocks) * int64(in.BlockSize), Inodes: uint32(min(in.Inodes, 1<<32-1)),
		FreeInodes: uint32(min(in.FreeInodes, 1<<32-1)), Features: in.Features, Clean: in.Log.Clean, Journal: j,
	}
}

// describeRoot reads the OS name and version of the root on partition num.
func describeRoot(disk formats.Disk, t *partition.Table, num int) (*RootReport, error) {
	rr := &RootReport{Partition: num}
	sec, err := section(disk, t, num)
	if err != nil {
		return nil, err
	}
	var fsys vfs.FS
	fsys, err = ext.Open(sec, sec.Size(), &ext.Options{AllowDirtyJournal: true})
	if errors.Is(err, ext.ErrNotExt) {
		fsys, err = xfs.Open(sec, sec.Size(), &xfs.Options{AllowDirtyLog: true})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describePart(sec.part), err)
	}
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := fsys.ReadFile(p)
		if err != nil || len(data) > 64<<10 {
			continue
		}
		kv := ParseOSRelease(data)
		rr.OSID, rr.OSName, rr.OSVersion, rr.PrettyName = kv["ID"], kv["NAME"], kv["VERSION_ID"], kv["PRETTY_NAME"]
		break
	}
	return rr, nil
}

// ParseOSRelease reads the KEY=value lines of an os-release file (values
// optionally quoted with " or ', backslash escapes inside double quotes).
func ParseOSRelease(data []byte) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		kv[k] = unquote(strings.TrimSpace(v))
	}
	return kv
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		q := v[0]
		v = v[1 : len(v)-1]
		if q == '"' {
			r := strings.NewReplacer(`\"`, `"`, `\\`, `\`, "\\$", "$", "\\`", "`")
			v = r.Replace(v)
		}
	}
	return v
}
