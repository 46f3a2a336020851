package ext

import (
	"slices"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Quota accounting (the quota ro_compat feature).
//
// A transaction does not charge quota as it allocates: at commit, once
// every file's blocks are placed (flushFiles), updateQuota compares each
// inode the transaction changed with the inode as it is on disk and moves
// the difference into the quota files, in the same transaction (so the
// journaled commit and the staging area cover them like any other block).
// What is charged is e2fsck's rule (pass1 check_blocks with
// lib/support/mkquota.c): every inode in use that is the root or at least
// s_first_ino, except the project quota file, the orphan file and EA
// inodes, charges its user (i_uid), group (i_gid) and project (i_projid,
// when i_extra_isize covers it, else 0) with one inode and the space its
// i_blocks counts, in bytes. The quota files' own growth is not charged.
// Limits are not enforced: like debugfs, an offline writer records usage.

// quotaKey names one id of one quota type.
type quotaKey struct {
	typ int
	id  uint32
}

// quotaDelta is a change of one id's usage.
type quotaDelta struct{ space, inodes int64 }

// quotaInodes returns each enabled type's quota file inode (0: the type is
// not enabled), or none when the filesystem has no quota feature.
func (f *FS) quotaInodes() [layout.NumQuotaTypes]uint32 {
	var q [layout.NumQuotaTypes]uint32
	if !f.sb.FeatureROCompat.Has(layout.ROCompatQuota) {
		return q
	}
	q[layout.QuotaUser] = f.sb.UsrQuotaInum
	q[layout.QuotaGroup] = f.sb.GrpQuotaInum
	if f.sb.FeatureROCompat.Has(layout.ROCompatProject) {
		q[layout.QuotaProject] = f.sb.PrjQuotaInum
	}
	return q
}

// quotaCounted reports whether inode ino is charged to quota at all
// (e2fsck's rule: the root and the inodes from s_first_ino on, except
// the inode s_prj_quota_inum names and the orphan file).
func (f *FS) quotaCounted(ino uint32) bool {
	if ino != layout.RootIno && ino < f.geo.firstIno {
		return false
	}
	if ino == f.sb.PrjQuotaInum {
		return false
	}
	return !(f.sb.FeatureCompat.Has(layout.CompatOrphanFile) && ino == f.sb.OrphanFileInum)
}

// quotaIDs returns the user, group and project ids inode in charges.
func quotaIDs(in *inode) [layout.NumQuotaTypes]uint32 {
	var prj uint32
	if in.raw.HasExtra(layout.EndProjid) {
		prj = in.raw.Projid
	}
	return [layout.NumQuotaTypes]uint32{in.raw.UID(), in.raw.GID(), prj}
}

// quotaCharge adds sign times in's usage to d, for each enabled type.
func (f *FS) quotaCharge(d map[quotaKey]quotaDelta, q [layout.NumQuotaTypes]uint32, in *inode, sign int64) {
	if in.flag(layout.FlagEAInode) {
		return
	}
	space := int64(f.blocks512(in)) * 512
	for typ, id := range quotaIDs(in) {
		if q[typ] == 0 {
			continue
		}
		k := quotaKey{typ, id}
		v := d[k]
		v.space += sign * space
		v.inodes += sign
		d[k] = v
	}
}

// quotaDeltas is the usage the transaction moves, per type and id, from
// the inodes it changed: what each charges now minus what it charged on
// disk (nothing for an inode it allocated; nothing now for one it frees).
func (t *tx) quotaDeltas(q [layout.NumQuotaTypes]uint32) (map[quotaKey]quotaDelta, error) {
	f := t.f
	freed := make(map[uint32]bool, len(t.space.ifreed))
	for _, ino := range t.space.ifreed {
		freed[ino] = true
	}
	d := map[quotaKey]quotaDelta{}
	for ino := range t.inodes.dirty {
		if !f.quotaCounted(ino) {
			continue
		}
		if !t.space.born[ino] {
			old, err := f.inode(ino) // the read cache holds the inode as on disk
			if err != nil {
				return nil, err
			}
			f.quotaCharge(d, q, old, -1)
		}
		if !freed[ino] {
			f.quotaCharge(d, q, t.inodes.copies[ino], +1)
		}
	}
	for k, v := range d {
		if v == (quotaDelta{}) {
			delete(d, k)
		}
	}
	return d, nil
}

// updateQuota moves the transaction's usage changes into the quota files
// (commit, after flushFiles; it flushes the quota files' own maps).
func (t *tx) updateQuota() error {
	q := t.f.quotaInodes()
	if q == ([layout.NumQuotaTypes]uint32{}) {
		return nil
	}
	d, err := t.quotaDeltas(q)
	if err != nil || len(d) == 0 {
		return err
	}
	keys := make([]quotaKey, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b quotaKey) int {
		if a.typ != b.typ {
			return a.typ - b.typ
		}
		return int(int64(a.id) - int64(b.id))
	})
	var qf *quotaFile
	for _, k := range keys {
		if qf == nil || qf.typ != k.typ {
			if qf, err = t.openQuota(k.typ, q[k.typ]); err != nil {
				return err
			}
		}
		if err := qf.add(k.id, d[k]); err != nil {
			return err
		}
	}
	return t.flushFiles()
}
