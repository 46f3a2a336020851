package image

import (
	"fmt"
	"io"
	"strings"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/xfs"
)

// rootMarkers: a guest root has /etc and one of these.
var rootMarkers = []string{"/sbin/init", "/usr/lib/os-release", "/etc/os-release"}

// Candidate is what one partition holds, as root detection saw it.
type Candidate struct {
	Number    int    `json:"number"`
	Start     int64  `json:"start"`
	Size      int64  `json:"size"`
	TypeName  string `json:"type_name,omitempty"`
	Kind      string `json:"kind,omitempty"` // Identify's kind: ext4, xfs, swap, lvm2, ...
	Label     string `json:"label,omitempty"`
	UUID      string `json:"uuid,omitempty"`
	Root      bool   `json:"root"`
	Why       string `json:"why,omitempty"` // why it is not a root, or what failed
	Extended  bool   `json:"extended,omitempty"`
	ReadError string `json:"-"`
}

func (c Candidate) String() string {
	s := fmt.Sprintf("partition %d", c.Number)
	if c.Number == 0 {
		s = "whole disk"
	}
	kind := c.Kind
	if kind == "" {
		kind = "unrecognised"
	}
	s += ": " + kind
	if c.Label != "" {
		s += fmt.Sprintf(" label %q", c.Label)
	}
	if c.Why != "" {
		s += " (" + c.Why + ")"
	}
	return s
}

// Candidates inspects every partition of t (or the whole disk) and says
// which look like a guest root. It reads only superblocks and the few
// inodes on the marker paths.
func Candidates(disk io.ReaderAt, diskSize int64, t *partition.Table) []Candidate {
	parts := t.Partitions
	if t.Scheme == partition.SchemeNone && len(parts) == 0 {
		parts = []partition.Partition{{Number: 0, Start: 0, Size: diskSize}}
	}
	out := make([]Candidate, 0, len(parts))
	for _, p := range parts {
		c := Candidate{Number: p.Number, Start: p.Start, Size: p.Size, TypeName: p.TypeName, Extended: p.Extended}
		if p.Extended {
			c.Why = "extended partition (a container)"
			out = append(out, c)
			continue
		}
		var sec *partition.Section
		var err error
		if p.Number == 0 {
			sec = partition.NewSection(disk, 0, diskSize)
		} else {
			sec, err = t.Open(disk, p.Number)
		}
		if err != nil {
			c.Why = err.Error()
			out = append(out, c)
			continue
		}
		inspectCandidate(&c, sec)
		out = append(out, c)
	}
	return out
}

func inspectCandidate(c *Candidate, sec *partition.Section) {
	sig, err := partition.Identify(sec, sec.Size())
	if err != nil {
		c.Why = "reading it failed: " + err.Error()
		return
	}
	c.Kind, c.Label, c.UUID = sig.Kind, sig.Label, sig.UUID
	var fsys rootProbe
	switch {
	case strings.HasPrefix(sig.Kind, "ext"):
		fsys, err = ext.Open(sec, sec.Size(), &ext.Options{AllowDirtyJournal: true})
	case sig.Kind == "xfs":
		fsys, err = xfs.Open(sec, sec.Size(), &xfs.Options{AllowDirtyLog: true})
	default:
		if sig.Kind != "" {
			c.Why = "not an ext or XFS filesystem; not supported as a guest root yet"
		}
		return
	}
	if err != nil {
		c.Why = "cannot open: " + err.Error()
		return
	}
	c.Root, c.Why = looksLikeRoot(fsys)
}

// rootProbe is what root detection asks of a filesystem engine.
type rootProbe interface {
	Stat(p string) (vfs.FileInfo, error)
	HasFile(p string) (bool, error)
}

// looksLikeRoot: /etc is a directory and one of rootMarkers exists.
func looksLikeRoot(fsys rootProbe) (bool, string) {
	st, err := fsys.Stat("/etc")
	if err != nil || !st.IsDir() {
		return false, "no /etc directory"
	}
	for _, m := range rootMarkers {
		if ok, _ := fsys.HasFile(m); ok {
			return true, ""
		}
	}
	return false, "has /etc but none of " + strings.Join(rootMarkers, ", ")
}

// findRoot picks the one candidate that looks like a guest root.
func findRoot(disk formats.Disk, t *partition.Table) (Candidate, error) {
	cands := Candidates(disk, disk.Size(), t)
	var roots []Candidate
	for _, c := range cands {
		if c.Root {
			roots = append(roots, c)
		}
	}
	switch len(roots) {
	case 1:
		return roots[0], nil
	case 0:
		return Candidate{}, fmt.Errorf("%w; %s", ErrNoRoot, listCandidates(cands))
	}
	return Candidate{}, fmt.Errorf("%w (choose one with --partition N); %s", ErrManyRoots, listCandidates(roots))
}

func listCandidates(cs []Candidate) string {
	if len(cs) == 0 {
		return "the disk has no partitions and no filesystem"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return "candidates: " + strings.Join(parts, "; ")
}
