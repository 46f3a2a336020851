package lvm

import (
	"fmt"
	"io"
)

// Device is a physical volume's contents: a partition section or a disk.
type Device interface {
	io.ReaderAt
	io.WriterAt
}

// PVDevice is an opened physical volume: its label and its device.
type PVDevice struct {
	PV   *PV
	Dev  Device
	Size int64
}

// Volume is a linear or striped logical volume mapped onto its physical
// volumes: an io.ReaderAt and io.WriterAt of Size bytes. Every access is
// split at segment and stripe-chunk boundaries and lands inside the
// extents the metadata gives the volume, never elsewhere on a device.
type Volume struct {
	vg   *VG
	lv   *LV
	devs []PVDevice // by VG.PVs index
	size int64
}

// Open maps logical volume name onto pvs (the group's physical volumes,
// found by label UUID). A missing physical volume, an unsupported segment
// type or extents past a device's end are refused.
func (vg *VG) Open(name string, pvs []PVDevice) (*Volume, error) {
	lv, err := vg.LV(name)
	if err != nil {
		return nil, err
	}
	if err := lv.Supported(); err != nil {
		return nil, err
	}
	v := &Volume{vg: vg, lv: lv, devs: make([]PVDevice, len(vg.PVs)), size: lv.Size(vg)}
	used := map[int]bool{}
	for _, s := range lv.Segments {
		for _, st := range s.Stripes {
			used[st.PV] = true
		}
	}
	for i := range used {
		ref := vg.PVs[i]
		found := false
		for _, d := range pvs {
			if d.PV != nil && d.PV.UUID == ref.UUID {
				v.devs[i], found = d, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %s/%s needs physical volume %s (%s, last seen as %s)", ErrMissingPV, vg.Name, name, ref.Name, ref.UUID, ref.Device)
		}
		end := ref.PEStart + ref.PECount*vg.ExtentSize
		if ref.PEStart < 0 || end > v.devs[i].Size {
			return nil, corrupt("VG %s: physical volume %s's %d extents from byte %d run past its %d-byte device", vg.Name, ref.Name, ref.PECount, ref.PEStart, v.devs[i].Size)
		}
	}
	return v, nil
}

// Size is the volume's size in bytes.
func (v *Volume) Size() int64 { return v.size }

// Name is "vg/lv".
func (v *Volume) Name() string { return v.vg.Name + "/" + v.lv.Name }

// locate maps byte off of the volume to a device and offset, with the
// bytes that stay contiguous from there.
func (v *Volume) locate(off int64) (dev Device, pvOff, n int64, err error) {
	es := v.vg.ExtentSize
	for _, s := range v.lv.Segments {
		start, end := s.StartExtent*es, (s.StartExtent+s.ExtentCount)*es
		if off < start || off >= end {
			continue
		}
		in := off - start
		st, row, within, chunk := s.Stripes[0], int64(0), in, end-start
		if k := int64(len(s.Stripes)); k > 1 {
			c := in / s.StripeSize
			st, row, within, chunk = s.Stripes[c%k], c/k, in%s.StripeSize, s.StripeSize
		}
		ref := v.vg.PVs[st.PV]
		pvOff = ref.PEStart + st.StartExtent*es + row*chunk + within
		n = min(chunk-within, end-off)
		if len(s.Stripes) > 1 {
			n = min(n, s.StripeSize-within)
		}
		return v.devs[st.PV].Dev, pvOff, n, nil
	}
	return nil, 0, 0, fmt.Errorf("lvm: %s: offset %d has no segment (a bug)", v.Name(), off)
}

// ReadAt reads from the volume.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	return v.rw(p, off, false)
}

// WriteAt writes to the volume.
func (v *Volume) WriteAt(p []byte, off int64) (int, error) {
	return v.rw(p, off, true)
}

func (v *Volume) rw(p []byte, off int64, write bool) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("lvm: %s: negative offset %d", v.Name(), off)
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		if pos >= v.size {
			if write {
				return done, fmt.Errorf("lvm: %s: write past the volume's %d bytes", v.Name(), v.size)
			}
			return done, io.EOF
		}
		dev, pvOff, n, err := v.locate(pos)
		if err != nil {
			return done, err
		}
		n = min(n, int64(len(p)-done), v.size-pos)
		var m int
		if write {
			m, err = dev.WriteAt(p[done:done+int(n)], pvOff)
		} else {
			m, err = dev.ReadAt(p[done:done+int(n)], pvOff)
		}
		done += m
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// checker is a device that judges a write before it is made (a qcow2
// image refusing a write on its own metadata).
type checker interface{ CheckWrite(off, n int64) error }

// CheckWrite asks each device a write of n bytes at off would touch
// whether it accepts its piece, writing nothing.
func (v *Volume) CheckWrite(off, n int64) error {
	if off < 0 || n < 0 || off > v.size || n > v.size-off {
		return fmt.Errorf("lvm: %s: a write of %d bytes at %d lies outside the %d-byte volume", v.Name(), n, off, v.size)
	}
	for n > 0 {
		dev, pvOff, m, err := v.locate(off)
		if err != nil {
			return err
		}
		m = min(m, n)
		if c, ok := dev.(checker); ok {
			if err := c.CheckWrite(pvOff, m); err != nil {
				return err
			}
		}
		off, n = off+m, n-m
	}
	return nil
}

// Sync flushes every device of the volume that can be flushed.
func (v *Volume) Sync() error {
	for _, d := range v.devs {
		if s, ok := d.Dev.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				return err
			}
		}
	}
	return nil
}
