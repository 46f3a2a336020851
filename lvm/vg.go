package lvm

import (
	"fmt"
	"slices"
	"strings"
)

// VG is a volume group as its metadata text describes it.
type VG struct {
	Name       string
	ID         string
	Seqno      int64
	ExtentSize int64 // bytes
	PVs        []PVRef
	LVs        []*LV
}

// PVRef is a physical volume of the group.
type PVRef struct {
	Name    string // the metadata's name for it ("pv0")
	UUID    string // 32 characters, as in the PV's label
	Device  string // the device path when the metadata was written (a hint only)
	PEStart int64  // bytes from the PV's start to its first extent
	PECount int64
}

// LV is a logical volume.
type LV struct {
	Name     string
	Visible  bool
	Extents  int64
	Segments []Segment
}

// Size is the logical volume's size in bytes.
func (lv *LV) Size(vg *VG) int64 { return lv.Extents * vg.ExtentSize }

// Segment is a run of a logical volume's extents.
type Segment struct {
	StartExtent, ExtentCount int64
	Type                     string // "striped" (linear when one stripe), "thin", "raid1"…
	StripeSize               int64  // bytes, for more than one stripe
	Stripes                  []Stripe
}

// Stripe is where one stripe of a segment lies.
type Stripe struct {
	PV          int // index into VG.PVs
	StartExtent int64
}

// Limits on the model.
const (
	maxPVs      = 256
	maxLVs      = 4096
	maxSegments = 4096
	maxStripes  = 128
)

// Kind says what the logical volume is, for listings: "linear",
// "striped", or its unsupported segment type.
func (lv *LV) Kind() string {
	kind := "linear"
	for _, s := range lv.Segments {
		switch {
		case s.Type != "striped":
			return s.Type
		case len(s.Stripes) > 1:
			kind = "striped"
		}
	}
	return kind
}

// Supported says why the logical volume cannot be mapped, or nil.
func (lv *LV) Supported() error {
	for _, s := range lv.Segments {
		if s.Type != "striped" {
			return fmt.Errorf("%w: %s is a %s volume; only linear and striped volumes are read", ErrUnsupported, lv.Name, s.Type)
		}
	}
	return nil
}

// ParseVG reads the volume group of a metadata text.
func ParseVG(text []byte) (*VG, error) {
	root, err := parseText(text)
	if err != nil {
		return nil, err
	}
	var vgSec *section
	for _, s := range root.subs {
		if _, ok := s.num("extent_size"); ok {
			if vgSec != nil {
				return nil, corrupt("metadata text holds two volume groups (%s, %s)", vgSec.name, s.name)
			}
			vgSec = s
		}
	}
	if vgSec == nil {
		return nil, corrupt("metadata text holds no volume group")
	}
	vg := &VG{Name: vgSec.name}
	vg.ID, _ = vgSec.str("id")
	vg.Seqno, _ = vgSec.num("seqno")
	es, _ := vgSec.num("extent_size")
	if es <= 0 || es > 1<<32 || es&(es-1) != 0 && es%8 != 0 {
		return nil, corrupt("VG %s: extent size %d sectors", vg.Name, es)
	}
	vg.ExtentSize = es * sectorSize
	pvIndex := map[string]int{}
	if pvs := vgSec.sub("physical_volumes"); pvs != nil {
		if len(pvs.subs) > maxPVs {
			return nil, corrupt("VG %s: %d physical volumes (at most %d)", vg.Name, len(pvs.subs), maxPVs)
		}
		for _, p := range pvs.subs {
			id, _ := p.str("id")
			uuid := strings.ReplaceAll(id, "-", "")
			start, ok1 := p.num("pe_start")
			count, ok2 := p.num("pe_count")
			if len(uuid) != pvUUIDLen || !ok1 || !ok2 || start < 0 || count < 0 || start > 1<<50 || count > 1<<40 {
				return nil, corrupt("VG %s: physical volume %s: id %q, pe_start %d, pe_count %d", vg.Name, p.name, id, start, count)
			}
			dev, _ := p.str("device")
			pvIndex[p.name] = len(vg.PVs)
			vg.PVs = append(vg.PVs, PVRef{Name: p.name, UUID: uuid, Device: dev, PEStart: start * sectorSize, PECount: count})
		}
	}
	if lvs := vgSec.sub("logical_volumes"); lvs != nil {
		if len(lvs.subs) > maxLVs {
			return nil, corrupt("VG %s: %d logical volumes (at most %d)", vg.Name, len(lvs.subs), maxLVs)
		}
		for _, l := range lvs.subs {
			lv, err := parseLV(vg, l, pvIndex)
			if err != nil {
				return nil, err
			}
			vg.LVs = append(vg.LVs, lv)
		}
	}
	return vg, nil
}

// parseLV reads one logical volume section.
func parseLV(vg *VG, l *section, pvIndex map[string]int) (*LV, error) {
	lv := &LV{Name: l.name}
	if st, ok := l.values["status"]; ok && st.kind == kindList {
		for _, v := range st.list {
			if v.kind == kindString && v.s == "VISIBLE" {
				lv.Visible = true
			}
		}
	}
	if len(l.subs) > maxSegments {
		return nil, corrupt("LV %s/%s: %d segments (at most %d)", vg.Name, lv.Name, len(l.subs), maxSegments)
	}
	for _, s := range l.subs {
		if !strings.HasPrefix(s.name, "segment") {
			continue
		}
		seg := Segment{}
		var ok1, ok2 bool
		seg.StartExtent, ok1 = s.num("start_extent")
		seg.ExtentCount, ok2 = s.num("extent_count")
		seg.Type, _ = s.str("type")
		if !ok1 || !ok2 || seg.StartExtent < 0 || seg.ExtentCount <= 0 || seg.StartExtent > 1<<40 || seg.ExtentCount > 1<<40 || seg.Type == "" {
			return nil, corrupt("LV %s/%s %s: start %d, count %d, type %q", vg.Name, lv.Name, s.name, seg.StartExtent, seg.ExtentCount, seg.Type)
		}
		if seg.Type == "striped" {
			if err := parseStripes(vg, lv, s, &seg, pvIndex); err != nil {
				return nil, err
			}
		}
		lv.Segments = append(lv.Segments, seg)
	}
	slices.SortFunc(lv.Segments, func(a, b Segment) int { return int(a.StartExtent - b.StartExtent) })
	for _, s := range lv.Segments {
		if s.StartExtent != lv.Extents {
			return nil, corrupt("LV %s/%s: a segment starts at extent %d, want %d", vg.Name, lv.Name, s.StartExtent, lv.Extents)
		}
		lv.Extents += s.ExtentCount
	}
	if lv.Extents > 1<<40/max(vg.ExtentSize/sectorSize, 1) {
		return nil, corrupt("LV %s/%s: %d extents", vg.Name, lv.Name, lv.Extents)
	}
	return lv, nil
}

// parseStripes reads a striped segment's stripes and checks they lie in
// their physical volumes' extents.
func parseStripes(vg *VG, lv *LV, s *section, seg *Segment, pvIndex map[string]int) error {
	where := fmt.Sprintf("LV %s/%s %s", vg.Name, lv.Name, s.name)
	n, _ := s.num("stripe_count")
	st, ok := s.values["stripes"]
	if n < 1 || n > maxStripes || !ok || st.kind != kindList || int64(len(st.list)) != 2*n {
		return corrupt("%s: %d stripes, stripe list of %d items", where, n, len(st.list))
	}
	if seg.ExtentCount%n != 0 {
		return corrupt("%s: %d extents do not divide into %d stripes", where, seg.ExtentCount, n)
	}
	if n > 1 {
		size, _ := s.num("stripe_size")
		if size <= 0 || size&(size-1) != 0 || size*sectorSize > vg.ExtentSize {
			return corrupt("%s: stripe size %d sectors", where, size)
		}
		seg.StripeSize = size * sectorSize
	}
	per := seg.ExtentCount / n
	for i := int64(0); i < n; i++ {
		name, start := st.list[2*i], st.list[2*i+1]
		if name.kind != kindString || start.kind != kindInt {
			return corrupt("%s: stripe %d is not a (name, extent) pair", where, i)
		}
		pv, ok := pvIndex[name.s]
		if !ok {
			return corrupt("%s: stripe %d names physical volume %q, which the group does not list", where, i, name.s)
		}
		if start.n < 0 || start.n+per > vg.PVs[pv].PECount {
			return corrupt("%s: stripe %d at extents %d+%d of %s, which has %d", where, i, start.n, per, name.s, vg.PVs[pv].PECount)
		}
		seg.Stripes = append(seg.Stripes, Stripe{PV: pv, StartExtent: start.n})
	}
	return nil
}

// LV returns the logical volume called name.
func (vg *VG) LV(name string) (*LV, error) {
	for _, lv := range vg.LVs {
		if lv.Name == name {
			return lv, nil
		}
	}
	return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, vg.Name, name)
}
