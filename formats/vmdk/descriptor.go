package vmdk

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Bounds on a descriptor.
const (
	MaxDescriptorBytes = 1 << 20
	MaxExtents         = 4096
	maxLineBytes       = 64 << 10
)

// Extent types we read.
const (
	ExtentFlat   = "FLAT"
	ExtentSparse = "SPARSE"
	ExtentZero   = "ZERO"
	ExtentVMFS   = "VMFS" // a flat extent on VMFS
)

// Extent is one extent line of a descriptor.
type Extent struct {
	Access  string // RW, RDONLY or NOACCESS
	Sectors int64
	Type    string
	File    string // "" for ZERO
	Offset  int64  // sectors into File (flat extents)
	Line    int    // line number in the descriptor, for messages
}

// Descriptor is the parsed text descriptor.
type Descriptor struct {
	CreateType string
	ParentCID  string // "ffffffff" (or absent) when the disk has no parent
	Extents    []Extent
}

// HasParent reports a differencing disk (a parent CID or file name hint).
func (d *Descriptor) HasParent() bool {
	return d.ParentCID != "" && !strings.EqualFold(d.ParentCID, "ffffffff")
}

// ParseDescriptor parses a text descriptor of at most MaxDescriptorBytes.
// base is the descriptor's byte offset in its file, for messages.
func ParseDescriptor(b []byte, base int64) (*Descriptor, error) {
	if len(b) > MaxDescriptorBytes {
		return nil, diskerr.Unsupported("VMDK descriptor of %d bytes (max %d)", len(b), MaxDescriptorBytes)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 { // an embedded descriptor is NUL-padded
		b = b[:i]
	}
	d := &Descriptor{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), maxLineBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if f := strings.Fields(line); len(f) >= 3 && isAccess(f[0]) {
			if len(d.Extents) >= MaxExtents {
				return nil, diskerr.Unsupported("VMDK descriptor with more than %d extents", MaxExtents)
			}
			e, err := parseExtent(line, n)
			if err != nil {
				return nil, diskerr.At(base, fmt.Sprintf("VMDK descriptor line %d", n), err)
			}
			d.Extents = append(d.Extents, e)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue // ddb and unknown lines carry nothing we need
		}
		switch strings.TrimSpace(k) {
		case "createType":
			d.CreateType = unquote(v)
		case "parentCID":
			d.ParentCID = unquote(v)
		case "parentFileNameHint":
			if unquote(v) != "" && d.ParentCID == "" {
				d.ParentCID = "hint"
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, diskerr.Corrupt(base, "VMDK descriptor: %v", err)
	}
	return d, nil
}

func isAccess(s string) bool { return s == "RW" || s == "RDONLY" || s == "NOACCESS" }

func unquote(v string) string { return strings.Trim(strings.TrimSpace(v), `"`) }

// parseExtent reads `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`; the file
// name is quoted and may hold spaces.
func parseExtent(line string, n int) (Extent, error) {
	e := Extent{Line: n}
	f := strings.Fields(line)
	e.Access, e.Type = f[0], f[2]
	sec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || sec < 0 || sec > 1<<53 {
		return e, fmt.Errorf("extent size %q: %w", f[1], diskerr.ErrCorrupt)
	}
	e.Sectors = sec
	if e.Type == ExtentZero {
		return e, nil
	}
	_, rest, _ := strings.Cut(line, f[2])
	rest = strings.TrimSpace(rest)
	if len(rest) < 2 || rest[0] != '"' {
		return e, fmt.Errorf("extent file name missing or unquoted: %w", diskerr.ErrCorrupt)
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return e, fmt.Errorf("extent file name not closed: %w", diskerr.ErrCorrupt)
	}
	e.File = rest[1 : 1+end]
	if tail := strings.TrimSpace(rest[2+end:]); tail != "" {
		off, err := strconv.ParseInt(tail, 10, 64)
		if err != nil || off < 0 || off > 1<<53 {
			return e, fmt.Errorf("extent offset %q: %w", tail, diskerr.ErrCorrupt)
		}
		e.Offset = off
	}
	return e, CheckExtentName(e.File)
}

// CheckExtentName accepts only a plain relative name inside the
// descriptor's directory: no absolute path, no drive or backslash, no ".."
// component, nothing empty.
func CheckExtentName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty extent file name: %w", diskerr.ErrCorrupt)
	case strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\:\x00"):
		return fmt.Errorf("extent file %q is not a relative name inside the descriptor's directory: %w", name, diskerr.ErrUnsupported)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return fmt.Errorf("extent file %q leaves the descriptor's directory: %w", name, diskerr.ErrUnsupported)
		}
	}
	if path.Clean(name) != name {
		return fmt.Errorf("extent file %q is not a clean name: %w", name, diskerr.ErrUnsupported)
	}
	return nil
}
