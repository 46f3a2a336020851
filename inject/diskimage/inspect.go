package diskimage

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/lvm"
	"github.com/guestinject/guestinject/partition"
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
	// FreeAfter is the unpartitioned space after the partition; Growable
	// whether --grow can extend it and its filesystem there; GrowNote why
	// not, or what --grow would give (grow.go).
	FreeAfter int64  `json:"free_after"`
	Growable  bool   `json:"growable"`
	GrowNote  string `json:"grow_note,omitempty"`
}

func partitionReport(p partition.Partition, c Candidate) PartitionReport {
	return PartitionReport{
		Number: p.Number, Start: p.Start, Size: p.Size, Type: p.Type, TypeName: p.TypeName,
		Name: p.Name, GUID: p.GUID, Bootable: p.Bootable, Logical: p.Logical, Extended: p.Extended,
		Content: c,
	}
}

// FSReport describes an ext filesystem.
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
	Partition  int    `json:"partition"`        // -1 for a logical volume
	Volume     string `json:"volume,omitempty"` // "vg/lv"
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
	cands := Candidates(disk, disk.Size(), t)
	opened := map[selection]RootProbe{}
	for _, c := range cands {
		p, err := t.Partition(c.Number)
		if err != nil {
			p = partition.Partition{Number: c.Number, Start: c.Start, Size: c.Size}
		}
		pr := partitionReport(p, c)
		if c.fs != nil {
			pr.Filesystem = describeFS(c.fs, c.Kind)
			opened[selectionOf(c)] = c.fs
		}
		if c.Volume != "" {
			pr.GrowNote = "an LVM logical volume: --grow extends partitions"
		} else {
			pr.FreeAfter, pr.Growable, pr.GrowNote = growInfo(t, p, c.fs)
		}
		r.Partitions = append(r.Partitions, pr)
	}
	sel, err := choose(o, func() []Candidate { return cands })
	if err == nil {
		r.Root, err = describeRoot(disk, t, sel, opened[sel])
	}
	if err != nil {
		r.RootError = err.Error()
	}
	return r, nil
}

// containerReport describes the image file and its backing chain.
func containerReport(path string, info *formats.Info) *Report {
	r := &Report{Path: path, Format: info.Format, VirtualSize: info.VirtualSize}
	if info.AllocatedBytes > 0 { // from the descriptor opened, not the path again
		r.FileSize = info.AllocatedBytes
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

// describeFS describes a filesystem root detection opened; kind is what
// Identify called it.
func describeFS(fsys RootProbe, kind string) *FSReport {
	switch f := fsys.(type) {
	case *ext.FS:
		return describeExt(f, kind)
	case *xfs.FS:
		return describeXFS(f, kind)
	}
	return nil
}

// describeExt describes an ext filesystem.
func describeExt(fsys *ext.FS, kind string) *FSReport {
	in := fsys.Info()
	feats := append(append(append([]string{}, in.Compat...), in.Incompat...), in.ROCompat...)
	j := string(in.Journal.Kind)
	if in.Journal.NeedsRecovery {
		j += " (needs recovery)"
	}
	return &FSReport{
		Type: kind, Label: in.Label, UUID: ext.UUIDString(in.UUID),
		Size: int64(in.BlocksCount) * int64(in.BlockSize), BlockSize: in.BlockSize,
		FreeBytes: int64(in.FreeBlocks) * int64(in.BlockSize), Inodes: in.InodesCount, FreeInodes: in.FreeInodes,
		Features: feats, Clean: in.Clean && !in.Errors, Journal: j,
	}
}

// describeXFS describes an XFS filesystem (Clean is the log's state,
// Journal says where the log is).
func describeXFS(fsys *xfs.FS, kind string) *FSReport {
	in := fsys.Info()
	j := "internal log"
	if in.Log.External {
		j = "external log"
	} else if !in.Log.Clean {
		j += " (needs recovery)"
	}
	return &FSReport{
		Type: kind, Label: in.Label, UUID: xfs.UUIDString(in.UUID),
		Size: int64(in.Blocks) * int64(in.BlockSize), BlockSize: in.BlockSize,
		FreeBytes: int64(in.FreeBlocks) * int64(in.BlockSize), Inodes: uint32(min(in.Inodes, 1<<32-1)),
		FreeInodes: uint32(min(in.FreeInodes, 1<<32-1)), Features: in.Features, Clean: in.Log.Clean, Journal: j,
	}
}

// maxMarkerFile bounds what inspect and root detection read of a guest
// file (os-release): the content, not the size the inode claims, decides
// what is allocated.
const maxMarkerFile = 64 << 10

// describeRoot reads the OS name and version of the root on partition num,
// through fsys when root detection already opened it.
func describeRoot(disk formats.Disk, t *partition.Table, sel selection, fsys RootProbe) (*RootReport, error) {
	rr := &RootReport{Partition: sel.num, Volume: sel.volume}
	if fsys == nil && sel.volume != "" {
		v, err := openVolume(disk, t, nil, sel.volume, func(s *partition.Section) lvm.Device { return readOnlyDev{s} })
		if err != nil {
			return nil, err
		}
		sec := partition.NewSection(v, 0, v.Size())
		sig, err := partition.Identify(sec, sec.Size())
		if err == nil {
			fsys, err = openProbe(sec, sig.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("logical volume %s: %w", sel.volume, err)
		}
	}
	num := sel.num
	if fsys == nil {
		sec, err := section(disk, t, num)
		if err != nil {
			return nil, err
		}
		sig, err := partition.Identify(sec, sec.Size())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describePart(sec.part), err)
		}
		if fsys, err = openProbe(sec.Section, sig.Kind); err != nil {
			return nil, fmt.Errorf("%s: %w", describePart(sec.part), err)
		}
	}
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := readMarker(fsys, p)
		if err != nil {
			continue
		}
		kv := ParseOSRelease(data)
		rr.OSID, rr.OSName, rr.OSVersion, rr.PrettyName = kv["ID"], kv["NAME"], kv["VERSION_ID"], kv["PRETTY_NAME"]
		return rr, nil
	}
	if data, err := readMarker(fsys, "/etc/redhat-release"); err == nil {
		rr.OSID, rr.OSName, rr.OSVersion, rr.PrettyName = ParseRedHatRelease(data)
	}
	return rr, nil
}

// ParseRedHatRelease reads the one line of /etc/redhat-release ("CentOS
// release 6.10 (Final)", "Red Hat Enterprise Linux Server release 6.10
// (Santiago)"), which Red Hat-family guests had before os-release: the
// os-release ID it corresponds to, the name, the version and the line.
func ParseRedHatRelease(data []byte) (id, name, version, pretty string) {
	line, _, _ := strings.Cut(string(data), "\n")
	pretty = strings.TrimSpace(line)
	name, rest, ok := strings.Cut(pretty, " release ")
	if !ok {
		return "", pretty, "", pretty
	}
	version, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
	switch lower := strings.ToLower(name); {
	case strings.HasPrefix(lower, "red hat enterprise linux"):
		id = "rhel"
	case strings.HasPrefix(lower, "centos"):
		id = "centos"
	case strings.HasPrefix(lower, "fedora"):
		id = "fedora"
	case strings.HasPrefix(lower, "scientific linux"):
		id = "scientific"
	default:
		id, _, _ = strings.Cut(lower, " ")
	}
	return id, name, version, pretty
}

// errMarkerTooLarge: a marker file is larger than maxMarkerFile.
var errMarkerTooLarge = fmt.Errorf("larger than %d bytes", maxMarkerFile)

// readMarker reads the guest file p if it holds at most maxMarkerFile
// bytes. The size the inode claims is checked before anything is read,
// and the filesystems root detection opens cap ReadFile at maxMarkerFile
// too (openProbe), so an inode claiming a gigabyte costs nothing.
func readMarker(fsys RootProbe, p string) ([]byte, error) {
	st, err := fsys.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.Size > maxMarkerFile {
		return nil, fmt.Errorf("%s: %d bytes: %w", p, st.Size, errMarkerTooLarge)
	}
	data, err := fsys.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(data) > maxMarkerFile {
		return nil, fmt.Errorf("%s: %w", p, errMarkerTooLarge)
	}
	return data, nil
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
