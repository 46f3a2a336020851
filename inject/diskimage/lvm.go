package diskimage

import (
	"fmt"
	"io"
	"slices"

	"github.com/guestinject/guestinject/lvm"
	"github.com/guestinject/guestinject/partition"
)

// LVM2: the partitions Identify calls "lvm2" are physical volumes; their
// metadata names volume groups whose logical volumes become candidates
// of their own, "vg/lv", found by root detection and chosen with
// --partition vg/lv. Linear and striped volumes are mapped (lvm.Volume);
// thin, RAID, cache and snapshot volumes are listed with the reason they
// are refused. Hidden volumes (a pool's metadata, a mirror's legs) are
// not listed.

// maxPVs bounds the physical volumes read per disk.
const maxPVs = 64

// volumeGroup is one VG and the PVs of this disk holding it.
type volumeGroup struct {
	vg  *lvm.VG
	pvs []lvm.PVDevice
}

// scanLVM reads the label and metadata of every partition whose
// signature is lvm2 and groups them by volume group (the highest seqno
// wins when PVs disagree). wrap makes each PV's device (a bare section
// for reading, a flushing, checking one for writing). Problems are
// returned beside what could be read.
func scanLVM(disk io.ReaderAt, t *partition.Table, cands []Candidate, wrap func(*partition.Section) lvm.Device) ([]*volumeGroup, []string) {
	var groups []*volumeGroup
	var problems []string
	n := 0
	for _, c := range cands {
		if c.Kind != "lvm2" || c.Volume != "" {
			continue
		}
		if n++; n > maxPVs {
			problems = append(problems, fmt.Sprintf("more than %d LVM physical volumes; the rest are not read", maxPVs))
			break
		}
		sec, err := t.Open(disk, c.Number)
		if err != nil {
			problems = append(problems, fmt.Sprintf("partition %d: %v", c.Number, err))
			continue
		}
		pv, err := lvm.ReadPV(sec, sec.Size())
		if err != nil {
			problems = append(problems, fmt.Sprintf("partition %d: %v", c.Number, err))
			continue
		}
		dev := lvm.PVDevice{PV: pv, Dev: wrap(sec), Size: sec.Size()}
		if len(pv.Metadata) == 0 {
			// A PV without a metadata copy: it still holds extents.
			for _, g := range groups {
				g.pvs = append(g.pvs, dev)
			}
			continue
		}
		vg, err := lvm.ParseVG(pv.Metadata)
		if err != nil {
			problems = append(problems, fmt.Sprintf("partition %d: %v", c.Number, err))
			continue
		}
		i := slices.IndexFunc(groups, func(g *volumeGroup) bool { return g.vg.Name == vg.Name })
		switch {
		case i < 0:
			groups = append(groups, &volumeGroup{vg: vg, pvs: []lvm.PVDevice{dev}})
		default:
			if vg.Seqno > groups[i].vg.Seqno {
				groups[i].vg = vg
			}
			groups[i].pvs = append(groups[i].pvs, dev)
		}
	}
	return groups, problems
}

// lvCandidates describes every visible logical volume of the disk's
// volume groups, opening the linear and striped ones' filesystems to look
// for the root markers (within the MaxRootProbes budget shared with the
// partitions).
func lvCandidates(disk io.ReaderAt, t *partition.Table, cands []Candidate, probes *int) []Candidate {
	groups, problems := scanLVM(disk, t, cands, func(s *partition.Section) lvm.Device { return readOnlyDev{s} })
	var out []Candidate
	for _, p := range problems {
		out = append(out, Candidate{Number: -1, Kind: "lvm2", Why: p})
	}
	for _, g := range groups {
		for _, lv := range g.vg.LVs {
			if !lv.Visible {
				continue
			}
			c := Candidate{Number: -1, Volume: g.vg.Name + "/" + lv.Name, Size: lv.Size(g.vg), TypeName: "LVM " + lv.Kind()}
			v, err := g.vg.Open(lv.Name, g.pvs)
			if err != nil {
				c.Why = err.Error()
				out = append(out, c)
				continue
			}
			sec := partition.NewSection(v, 0, v.Size())
			if identify(&c, sec) {
				if *probes < MaxRootProbes {
					*probes++
					probeRoot(&c, sec)
				} else {
					c.Why = whyNotProbed
				}
			}
			out = append(out, c)
		}
	}
	return out
}

// openVolume maps logical volume name ("vg/lv") of the disk, its PVs'
// devices made by wrap. cands, when root detection already ran, says
// which partitions are PVs; nil reads every partition's signature.
func openVolume(disk io.ReaderAt, t *partition.Table, cands []Candidate, name string, wrap func(*partition.Section) lvm.Device) (*lvm.Volume, error) {
	parts := cands
	for _, p := range t.Partitions {
		if cands != nil {
			break
		}
		if p.Extended {
			continue
		}
		sec, err := t.Open(disk, p.Number)
		if err != nil {
			continue
		}
		sig, err := partition.Identify(sec, sec.Size())
		if err == nil && sig.Kind == "lvm2" {
			parts = append(parts, Candidate{Number: p.Number, Kind: "lvm2"})
		}
	}
	groups, problems := scanLVM(disk, t, parts, wrap)
	for _, g := range groups {
		for _, lv := range g.vg.LVs {
			if g.vg.Name+"/"+lv.Name == name {
				return g.vg.Open(lv.Name, g.pvs)
			}
		}
	}
	msg := fmt.Sprintf("%s: no such logical volume", name)
	if len(problems) > 0 {
		msg += " (" + problems[0] + ")"
	}
	return nil, fmt.Errorf("%w: %s", ErrBadPartition, msg)
}

// readOnlyDev serves a section where lvm wants a Device, for root
// detection, which never writes.
type readOnlyDev struct{ *partition.Section }

func (readOnlyDev) WriteAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("root detection does not write")
}
