package diskimage

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/guestinject/guestinject/partition"
	"github.com/guestinject/guestinject/vfs/ext"
	"github.com/guestinject/guestinject/vfs/xfs"
)

// rootMarkers: a guest root has /etc and one of these (/etc/redhat-release
// for Red Hat-family guests older than os-release, such as CentOS 6).
var rootMarkers = []string{"/sbin/init", "/usr/lib/os-release", "/etc/os-release", "/etc/redhat-release"}

// Candidate is what one partition holds, as root detection saw it.
type Candidate struct {
	Number    int    `json:"number"`           // -1 for a logical volume
	Volume    string `json:"volume,omitempty"` // "vg/lv" for an LVM logical volume
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

	err error     // why the filesystem could not be opened, when it could not
	fs  RootProbe // the filesystem opened to look for the root markers (*ext.FS or *xfs.FS)
}

func (c Candidate) String() string {
	s := fmt.Sprintf("partition %d", c.Number)
	switch {
	case c.Volume != "":
		s = "logical volume " + c.Volume
	case c.Number < 0:
		s = "LVM"
	case c.Number == 0:
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

// MaxRootProbes bounds the filesystems root detection opens: every
// partition's signature is read (a few small blocks each), but only the
// first MaxRootProbes ext or XFS filesystems, in table order, are opened to look
// for the root markers. A GPT may list 32768 partitions; a disk with more
// ext filesystems than this names its root with --partition N. The ones
// not opened say so in their Why.
const MaxRootProbes = 64

// whyNotProbed is the Why of an ext filesystem past MaxRootProbes.
var whyNotProbed = fmt.Sprintf("not examined: root detection opens at most %d filesystems; choose it with --partition N", MaxRootProbes)

// Candidates inspects every partition of t (or the whole disk) and says
// which look like a guest root. It reads only superblocks and the few
// inodes on the marker paths, and opens at most MaxRootProbes filesystems.
func Candidates(disk io.ReaderAt, diskSize int64, t *partition.Table) []Candidate {
	parts := t.Partitions
	if t.Scheme == partition.SchemeNone && len(parts) == 0 {
		parts = []partition.Partition{{Number: 0, Start: 0, Size: diskSize}}
	}
	out := make([]Candidate, 0, len(parts))
	probes := 0
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
		if identify(&c, sec) {
			if probes < MaxRootProbes {
				probes++
				probeRoot(&c, sec)
			} else {
				c.Why = whyNotProbed
			}
		}
		out = append(out, c)
	}
	return append(out, lvCandidates(disk, t, out, &probes)...)
}

// identify fills in what the partition's signature says; it reports
// whether the partition holds an ext or XFS filesystem to look into.
func identify(c *Candidate, sec *partition.Section) bool {
	sig, err := partition.Identify(sec, sec.Size())
	if err != nil {
		c.Why = "reading it failed: " + err.Error()
		return false
	}
	c.Kind, c.Label, c.UUID = sig.Kind, sig.Label, sig.UUID
	if sig.Kind == "lvm2" {
		c.Why = "LVM2 physical volume: its logical volumes are candidates of their own (vg/lv)"
		return false
	}
	if !strings.HasPrefix(sig.Kind, "ext") && sig.Kind != "xfs" {
		if sig.Kind != "" {
			c.Why = "not an ext or XFS filesystem; not supported as a guest root yet"
		}
		return false
	}
	return true
}

// probeRoot opens the filesystem identify recognised and looks for the
// root markers.
func probeRoot(c *Candidate, sec *partition.Section) {
	fsys, err := openProbe(sec, c.Kind)
	if err != nil {
		c.Why, c.err = "cannot open: "+err.Error(), err
		return
	}
	c.fs = fsys
	c.Root, c.Why = LooksLikeGuestRoot(fsys)
}

// openProbe opens a filesystem read-only for root detection and inspect:
// a journal or log needing recovery is read through, and ReadFile is
// capped at maxMarkerFile.
func openProbe(sec *partition.Section, kind string) (RootProbe, error) {
	if kind == "xfs" {
		return xfs.Open(sec, sec.Size(), &xfs.Options{AllowDirtyLog: true, MaxReadFileSize: maxMarkerFile})
	}
	return ext.Open(sec, sec.Size(), &ext.Options{AllowDirtyJournal: true, MaxReadFileSize: maxMarkerFile})
}

// findRoot picks the one candidate that looks like a guest root.
func findRoot(cands []Candidate) (Candidate, error) {
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
		err := fmt.Errorf("%w; %s", ErrNoRoot, listCandidates(cands))
		if cause := loneFailure(cands); cause != nil {
			// the one filesystem there is failed to open: its class
			// (corrupt, unsupported...) is the failure's, not ambiguity
			err = &causedError{err: err, cause: cause}
		}
		return Candidate{}, err
	}
	return Candidate{}, fmt.Errorf("%w (choose one with --partition N); %s", ErrManyRoots, listCandidates(roots))
}

// loneFailure returns why the filesystem could not be opened when the
// disk holds exactly one ext or XFS filesystem and it could not be.
func loneFailure(cands []Candidate) error {
	var failed error
	for _, c := range cands {
		switch {
		case c.fs != nil:
			return nil
		case c.err == nil:
		case failed != nil:
			return nil
		default:
			failed = c.err
		}
	}
	return failed
}

// causedError is err (its message and sentinel) with the cause that
// decides its class first in its chain.
type causedError struct{ err, cause error }

func (e *causedError) Error() string   { return e.err.Error() }
func (e *causedError) Unwrap() []error { return []error{e.cause, e.err} }

// loneFS returns the one candidate holding a filesystem the engines opened,
// when there is exactly one.
func loneFS(cands []Candidate) (Candidate, bool) {
	var got []Candidate
	for _, c := range cands {
		if c.fs != nil {
			got = append(got, c)
		}
	}
	if len(got) != 1 {
		return Candidate{}, false
	}
	return got[0], true
}

// maxListed bounds the candidates an error lists one by one.
const maxListed = 16

// listCandidates names what each partition holds, for an error: the first
// maxListed one by one, the rest counted by what they hold.
func listCandidates(cs []Candidate) string {
	if len(cs) == 0 {
		return "the disk has no partitions and no filesystem"
	}
	parts := make([]string, 0, min(len(cs), maxListed)+1)
	for _, c := range cs[:min(len(cs), maxListed)] {
		parts = append(parts, c.String())
	}
	if rest := cs[min(len(cs), maxListed):]; len(rest) > 0 {
		kinds := map[string]int{}
		for _, c := range rest {
			k := c.Kind
			switch {
			case k == "":
				k = "unrecognised"
			case c.Why == whyNotProbed:
				k += " not examined"
			}
			kinds[k]++
		}
		names := make([]string, 0, len(kinds))
		for k, n := range kinds {
			names = append(names, fmt.Sprintf("%d %s", n, k))
		}
		sort.Strings(names)
		parts = append(parts, fmt.Sprintf("and %d more partitions (%s)", len(rest), strings.Join(names, ", ")))
	}
	return "candidates: " + strings.Join(parts, "; ")
}
