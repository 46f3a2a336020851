package inject

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/guestinject/guestinject/inject/selabel"
	"github.com/guestinject/guestinject/vfs"
)

// SELinuxXattr is the extended attribute holding an object's SELinux
// context (NUL-terminated, as libselinux's setfilecon writes it).
const SELinuxXattr = "security.selinux"

// AutorelabelPath asks an SELinux guest to relabel its whole filesystem at
// its next boot: the fallback when the guest's policy cannot be read.
const AutorelabelPath = "/.autorelabel"

// maxPolicyFile bounds a file_contexts file read from the guest.
const maxPolicyFile = 64 << 20

// prepareRelabel plans --selinux-relabel: every object the items before
// it create or change (as the whole plan leaves the guest: one deleted
// later is not labelled) gets the security.selinux context the guest's
// own policy gives its path and type, computed as libselinux does from
// /etc/selinux/SELINUXTYPE/contexts/files/file_contexts (+ .homedirs,
// .local, .subs, .subs_dist). A guest without /etc/selinux needs no
// labels; a policy that cannot be read (no config, no file_contexts, a
// malformed line or expression) falls back to /.autorelabel, and the
// report says why.
func prepareRelabel(fsys vfs.FS, items []*item) *item {
	it := newItem(KindRelabel, "/")
	m, err := newModel(fsys)
	if err != nil {
		return it.fail(err)
	}
	var paths []string
	seen := map[string]bool{}
	for _, x := range items {
		if x.err != nil {
			continue // the run is refused, or the item is skipped and writes nothing
		}
		for i := range x.steps {
			if err := m.replay(&x.steps[i]); err != nil {
				return it.fail(fmt.Errorf("modelling the %s item's %s %s: %w", x.rep.Kind, x.steps[i].Op, x.steps[i].Path, err))
			}
		}
		for _, c := range x.changes {
			if c.Change != ChangeDelete && c.Change != ChangeUnchanged && !seen[c.Path] {
				seen[c.Path] = true
				paths = append(paths, c.Path)
			}
		}
	}
	m.it = it
	c := &opCtx{model: m}
	hasSELinux, err := c.isDir("/etc/selinux")
	if err != nil {
		return it.fail(err)
	}
	if !hasSELinux {
		it.rep.Summary = "the guest has no /etc/selinux: nothing to label"
		return it
	}
	policy, why, err := loadGuestPolicy(c)
	if err != nil {
		return it.fail(err)
	}
	type label struct{ path, typ, ctx string }
	var labels []label
	none := 0
	if policy != nil {
		for _, p := range paths {
			r, err := m.resolve(p, false)
			if isMissing(err) || err == nil && !r.Exists {
				continue
			}
			if err != nil {
				return it.fail(err)
			}
			ctx, ok, err := policy.Lookup(r.Path, r.Node.typ)
			if err != nil {
				why, policy = err.Error(), nil
				break
			}
			if !ok {
				none++
				continue
			}
			labels = append(labels, label{r.Path, typeName(r.Node.typ), ctx})
		}
	}
	if policy == nil {
		if _, err := c.writeFile(AutorelabelPath, nil, false); err != nil {
			return it.fail(err)
		}
		it.rep.Path = AutorelabelPath
		it.rep.Summary = "the guest's SELinux policy cannot be read (" + why + "): " + AutorelabelPath + " written, so the guest relabels its whole filesystem at its next boot"
		return it
	}
	if len(labels) > 0 {
		if _, err := need[vfs.XattrWriter](m, "setxattr", labels[0].path, "write extended attributes (security.selinux)"); err != nil {
			return it.fail(err)
		}
	}
	for _, l := range labels {
		m.record(step{Action: Action{Op: OpRelabel, Path: l.path, Label: l.ctx}, data: append([]byte(l.ctx), 0)}, l.path, l.typ, ChangeModify).Label = l.ctx
	}
	it.rep.Summary = fmt.Sprintf("%d object(s) labelled from the guest's policy", len(labels))
	if none > 0 {
		it.rep.Summary += fmt.Sprintf(", %d left unlabelled (<<none>> in the policy)", none)
	}
	return it
}

// loadGuestPolicy reads the guest's file_contexts as the plan leaves
// them. A nil handle with why set means the policy cannot be read.
func loadGuestPolicy(c *opCtx) (h *selabel.Handle, why string, err error) {
	cfg, ok, err := c.readBounded("/etc/selinux/config")
	if err != nil || !ok {
		return nil, "no /etc/selinux/config", err
	}
	typ := ""
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "SELINUXTYPE="); ok {
			typ = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	if typ == "" || strings.ContainsAny(typ, "/\x00") || typ == "." || typ == ".." {
		return nil, fmt.Sprintf("SELINUXTYPE %q in /etc/selinux/config", typ), nil
	}
	dir := "/etc/selinux/" + typ + "/contexts/files/"
	var files, subs []selabel.Source
	for i, n := range []string{"file_contexts", "file_contexts.homedirs", "file_contexts.local"} {
		b, ok, err := c.readBounded(dir + n)
		if err != nil {
			return nil, "", err
		}
		if !ok && i == 0 {
			return nil, "no " + dir + n, nil
		}
		if ok {
			files = append(files, selabel.Source{Name: dir + n, Data: b})
		}
	}
	for _, n := range []string{"file_contexts.subs", "file_contexts.subs_dist"} {
		b, ok, err := c.readBounded(dir + n)
		if err != nil {
			return nil, "", err
		}
		if ok {
			subs = append(subs, selabel.Source{Name: dir + n, Data: b})
		}
	}
	h, perr := selabel.New(files, subs)
	if perr != nil {
		return nil, perr.Error(), nil
	}
	return h, "", nil
}

// readBounded is readOptional for a file of at most maxPolicyFile bytes.
func (c *opCtx) readBounded(p string) ([]byte, bool, error) {
	r, err := c.resolve(p, true)
	if isMissing(err) || err == nil && !r.Exists {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if r.Node.typ == 0 && r.Node.size > maxPolicyFile {
		return nil, false, vfs.PathErr("read", p, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, r.Node.size, maxPolicyFile))
	}
	return c.readOptional(p)
}
