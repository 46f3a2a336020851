// Package inject writes what a new virtual machine needs into its guest
// filesystem — SSH keys, network configuration, a metadata file, arbitrary
// files and an admin password hash — through any vfs.FS, with the
// guest-visible results OpenStack nova's file injection produces, made
// stricter: every input is validated and the guest is read before the first
// write, so a bad key or an unknown user leaves the guest untouched.
package inject

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/guestinject/guestinject/vfs"
)

// Data is what to inject. Zero fields are not injected.
type Data struct {
	// Keys are OpenSSH authorized_keys lines, one key each (options and
	// a comment allowed).
	Keys []string
	// KeyUser is whose ~/.ssh/authorized_keys receives Keys; its home,
	// uid and gid come from the guest's /etc/passwd. Empty means root.
	KeyUser string
	// UserKeys are keys for further users, one item each, after Keys. A
	// user named twice (here or as KeyUser) fails the later item.
	UserKeys []UserKeys
	// Network is written in the guest's own format (detected, or
	// Network.Format): see Network and DetectNetFormat.
	Network *Network
	// Meta is written to /meta.js as a JSON object.
	Meta map[string]string
	// Files are written at their guest paths.
	Files []File
	// AdminPassword replaces a user's password hash in /etc/shadow.
	AdminPassword *Password
	// Passwords set further users' password fields (virt-customize's
	// --password), in the same rewrite of /etc/shadow; a user named
	// twice fails the password item.
	Passwords []Password
	// Ops are the ordered operations (virt-customize's --mkdir, --copy,
	// --delete, ...), applied after the items above, in this order, each
	// on the guest as everything before it left it. See Operations.
	Ops []Operation
	// HostOwners keeps the host's numeric owner of what --upload and
	// --copy-in bring in; by default it becomes root:root.
	HostOwners bool
	// SELinuxRelabel labels every object the injection creates or
	// changes from the guest's own SELinux policy (see prepareRelabel),
	// last, after every item and operation.
	SELinuxRelabel bool
	// OpsFirst applies Ops before the classic items (keys, network,
	// meta, passwords, files), which are then planned on the guest as the
	// operations leave it: the sysprep verb, whose ssh-userdir must not
	// delete the keys its customisation injects.
	OpsFirst bool
}

// UserKeys are authorized_keys lines for one user (empty: root).
type UserKeys struct {
	User string
	Keys []string
}

// File is one file to inject.
type File struct {
	Path string // guest-absolute, clean
	Data []byte
	// Mode, when set, is applied to the file (permission, setuid,
	// setgid and sticky bits only); otherwise a new file is 0644 and an
	// existing one keeps its mode.
	Mode *fs.FileMode
	// Owner, when set, is "USER:GROUP" (names or ids looked up in the
	// guest's /etc/passwd and /etc/group) given to the file; otherwise a
	// new file is root:root and an existing one keeps its owner.
	Owner string
}

// Kind names a class of injection item, as Options.Mandatory and the
// report use them.
type Kind string

// The kinds of item, in the order they are applied (nova's order).
const (
	KindKeys     Kind = "keys"
	KindNetwork  Kind = "network"
	KindMeta     Kind = "meta"
	KindPassword Kind = "password"
	KindFiles    Kind = "files"
	// KindCustomize is one ordered operation (Data.Ops); these come last.
	KindCustomize Kind = "customize"
	// KindRelabel is the SELinux labels of what the injection wrote
	// (Data.SELinuxRelabel); it comes after everything else.
	KindRelabel Kind = "selinux-relabel"
)

// Options tune Plan and Apply.
type Options struct {
	// Mandatory lists the kinds whose failure fails the whole injection
	// (nova's "mandatory"). A failed item of any other kind is reported
	// and skipped while the rest proceeds. nil means every kind is
	// mandatory; an empty non-nil slice means none is.
	Mandatory []Kind
}

func (o *Options) mandatory(k Kind) bool {
	if o == nil || o.Mandatory == nil {
		return true
	}
	for _, m := range o.Mandatory {
		if m == k {
			return true
		}
	}
	return false
}

// Plan validates data against the guest and reports the writes Apply would
// make, writing nothing. It reads the guest (users, existing
// authorized_keys, /etc/shadow), so a read-only filesystem is enough. The
// error is non-nil when a mandatory item would fail.
func Plan(fsys vfs.FS, data *Data, opts *Options) (*Report, error) {
	return run(fsys, data, opts, false)
}

// Apply injects data into fsys. Every item is prepared and validated
// first; when a mandatory item fails validation nothing is written. Then
// the items are written in order; a failed write of a mandatory item stops
// the injection (later items are reported as skipped). The report lists
// every item either way.
func Apply(fsys vfs.FS, data *Data, opts *Options) (*Report, error) {
	return run(fsys, data, opts, true)
}

// Rehearse is Apply for a filesystem whose writes are thrown away
// afterwards (an image opened with diskimage.Options.Rehearse, its writes held
// in memory and never committed): it makes every write, so a failure only
// writing can find (no space left, a corrupt block) shows as it would in
// the real run, and it reports like Plan (DryRun, items planned).
func Rehearse(fsys vfs.FS, data *Data, opts *Options) (*Report, error) {
	rep, err := run(fsys, data, opts, true)
	rep.DryRun = true
	for i := range rep.Items {
		if rep.Items[i].Status == StatusDone {
			rep.Items[i].Status = StatusPlanned
		}
	}
	return rep, err
}

func run(fsys vfs.FS, data *Data, opts *Options, write bool) (*Report, error) {
	if data == nil {
		data = &Data{}
	}
	rep := &Report{DryRun: !write}
	var items []*item
	if data.OpsFirst {
		items = prepareOpsFirst(fsys, data)
	} else {
		items = prepare(fsys, data)
		simulate(fsys, items)
		if len(data.Ops) > 0 {
			settle(items) // the operations are planned on the items' content
		}
		items = append(items, prepareOps(fsys, items, data.Ops, data.HostOwners)...)
	}
	if data.SELinuxRelabel {
		items = append(items, prepareRelabel(fsys, items))
	}
	for _, it := range items {
		it.rep.Mandatory = opts.mandatory(it.rep.Kind)
	}
	if err := gate(items); err != nil {
		rep.Items = reports(items)
		return rep, err
	}
	err := execute(fsys, items, write)
	rep.Items = reports(items)
	return rep, err
}

// prepare validates every item and computes its writes, in apply order.
func prepare(fsys vfs.FS, d *Data) []*item {
	var items []*item
	var ps []Password
	if d.AdminPassword != nil {
		ps = append(ps, *d.AdminPassword)
	}
	ps = append(ps, d.Passwords...)
	hs := hashAhead(fsys, ps) // hashed while the other items are planned
	seen := map[string]bool{}
	if len(d.Keys) > 0 {
		items = append(items, prepareKeys(fsys, d.Keys, d.KeyUser, d.SELinuxRelabel))
		seen[keyOwner(d.KeyUser)] = true
	}
	for _, uk := range d.UserKeys {
		it := prepareKeys(fsys, uk.Keys, uk.User, d.SELinuxRelabel)
		if seen[keyOwner(uk.User)] {
			it.fail(fmt.Errorf("%w: keys for %q given twice; give them in one list", ErrInvalidKey, keyOwner(uk.User)))
		}
		seen[keyOwner(uk.User)] = true
		items = append(items, it)
	}
	if d.Network != nil {
		items = append(items, prepareNetwork(fsys, d.Network))
	}
	if len(d.Meta) > 0 {
		items = append(items, prepareMeta(d.Meta))
	}
	at := len(items)
	items = append(items, prepareFiles(fsys, d.Files)...)
	if len(ps) > 0 { // planned last, to give the hashes the most time, but applied in its place
		items = slices.Insert(items, at, preparePasswords(fsys, ps, hs))
	}
	return items
}

// gate fails when a mandatory item failed validation; then every item is
// reported and nothing is written.
func gate(items []*item) error {
	var errs []error
	for _, it := range items {
		if it.err != nil {
			it.rep.Status = StatusFailed
			if it.rep.Mandatory {
				errs = append(errs, it.err)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	for _, it := range items {
		if it.err == nil {
			it.rep.Status = StatusSkipped
		}
	}
	return errors.Join(errs...)
}

// execute writes the items that validated (or marks them planned when
// write is false).
func execute(fsys vfs.FS, items []*item, write bool) error {
	for i, it := range items {
		switch {
		case it.err != nil:
			continue
		case !write:
			it.rep.Status = StatusPlanned
			continue
		}
		if err := it.apply(fsys); err != nil {
			it.err = err
			it.rep.Status = StatusFailed
			if it.rep.Mandatory {
				for _, rest := range items[i+1:] {
					if rest.err == nil {
						rest.rep.Status = StatusSkipped
					}
				}
				return err
			}
			continue
		}
		it.rep.Status = StatusDone
	}
	return nil
}
