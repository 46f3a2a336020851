package imports

import (
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"strings"
)

// MaxOVF bounds an OVF descriptor.
const MaxOVF = 1 << 20

// ovfEnvelope is the part of an OVF descriptor naming the disks.
type ovfEnvelope struct {
	Files []struct {
		ID   string `xml:"id,attr"`
		Href string `xml:"href,attr"`
	} `xml:"References>File"`
	Disks []struct {
		ID      string `xml:"diskId,attr"`
		FileRef string `xml:"fileRef,attr"`
	} `xml:"DiskSection>Disk"`
}

// ovfDisks returns the file names of the disks an OVF names, in the order
// of its DiskSection (each a plain name inside the archive).
func ovfDisks(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxOVF+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxOVF {
		return nil, fmt.Errorf("OVF descriptor larger than %d bytes: %w", MaxOVF, ErrUnsupported)
	}
	var env ovfEnvelope
	if err := xml.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("OVF descriptor: %w: %w", ErrArchive, err)
	}
	href := map[string]string{}
	for _, f := range env.Files {
		href[f.ID] = f.Href
	}
	var out []string
	for _, d := range env.Disks {
		h, ok := href[d.FileRef]
		if !ok {
			if d.FileRef == "" {
				continue // a blank disk: no file
			}
			return nil, fmt.Errorf("OVF disk %q names file %q, which References lacks: %w", d.ID, d.FileRef, ErrArchive)
		}
		if strings.Contains(h, ":") || strings.HasPrefix(h, "/") || path.Clean(h) != h || strings.HasPrefix(h, "../") {
			return nil, fmt.Errorf("OVF disk %q file %q is not a name inside the archive: %w", d.ID, h, ErrUnsupported)
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("OVF descriptor names no disk file: %w", ErrArchive)
	}
	return out, nil
}
