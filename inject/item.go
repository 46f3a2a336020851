package inject

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/guestinject/guestinject/vfs"
)

// item is one prepared injection: its report, its validation error, and
// the writes that carry it out.
type item struct {
	rep   ItemReport
	err   error
	steps []step
	// changes: what the steps do to each path, as simulate judged them
	// against the guest.
	changes []Change
}

// step is one planned write; the Action is what the report shows, the
// other fields what the write needs.
type step struct {
	Action
	data        []byte
	later       func() ([]byte, error) // OpReplace: the final data, of len(data), given when written
	mode        fs.FileMode
	user, group string
	time        time.Time // OpTimes
}

func newItem(k Kind, p string) *item {
	return &item{rep: ItemReport{Kind: k, Path: p}}
}

// fail records the item's validation error, wrapped with the item and path.
func (it *item) fail(err error) *item {
	it.err = &ItemError{Kind: it.rep.Kind, Path: it.rep.Path, Err: err}
	it.steps, it.changes = nil, nil
	return it
}

func (it *item) mkdir(p string) {
	it.steps = append(it.steps, step{Action: Action{Op: OpMkdir, Path: p}})
}

func (it *item) append(p string, data []byte) {
	it.steps = append(it.steps, step{Action: Action{Op: OpAppend, Path: p, Bytes: len(data)}, data: data})
}

func (it *item) replace(p string, data []byte) {
	it.steps = append(it.steps, step{Action: Action{Op: OpReplace, Path: p, Bytes: len(data)}, data: data})
}

// replaceLater plans a replace of p with planned, whose final bytes (of
// the same length) later gives when the step runs.
func (it *item) replaceLater(p string, planned []byte, later func() ([]byte, error)) {
	it.steps = append(it.steps, step{Action: Action{Op: OpReplace, Path: p, Bytes: len(planned)}, data: planned, later: later})
}

// settle gives the steps planned with their final bytes to come (a
// password hash still being computed) those bytes now, waiting for them:
// for what is planned on the items' content.
func settle(items []*item) {
	for _, it := range items {
		for i := 0; it.err == nil && i < len(it.steps); i++ {
			s := &it.steps[i]
			if s.later == nil {
				continue
			}
			data, err := s.later()
			if err == nil && len(data) != len(s.data) {
				err = fmt.Errorf("internal error: %d bytes planned for %s, %d given", len(s.data), s.Path, len(data))
			}
			if err != nil {
				it.fail(err)
				break
			}
			s.data, s.later = data, nil
		}
	}
}

func (it *item) chmod(p string, m fs.FileMode) {
	mode := fmt.Sprintf("%04o", vfs.UnixPerm(m))
	it.steps = append(it.steps, step{Action: Action{Op: OpChmod, Path: p, Mode: mode}, mode: m})
}

// chown sets numeric ids, so the result does not depend on a second name
// lookup.
func (it *item) chown(p string, uid, gid int) {
	u, g := strconv.Itoa(uid), strconv.Itoa(gid)
	it.steps = append(it.steps, step{Action: Action{Op: OpChown, Path: p, Owner: u + ":" + g}, user: u, group: g})
}

// apply performs the steps in order and stops at the first failure.
func (it *item) apply(fsys vfs.FS) error {
	for _, s := range it.steps {
		if err := s.run(fsys); err != nil {
			var pe *fs.PathError
			if !errors.As(err, &pe) { // backends name op and path; add them if one did not
				err = fmt.Errorf("%s %s: %w", s.Op, s.Path, err)
			}
			return &ItemError{Kind: it.rep.Kind, Path: it.rep.Path, Err: err}
		}
	}
	return nil
}

func (s *step) run(fsys vfs.FS) error {
	switch s.Op {
	case OpMkdir:
		return fsys.MakePath(s.Path)
	case OpAppend:
		return fsys.AppendFile(s.Path, s.data)
	case OpReplace:
		data := s.data
		if s.later != nil {
			var err error
			if data, err = s.later(); err != nil {
				return err
			}
			if len(data) != len(s.data) {
				return fmt.Errorf("internal error: %d bytes planned for %s, %d given", len(s.data), s.Path, len(data))
			}
		}
		return fsys.ReplaceFile(s.Path, data)
	case OpChmod:
		return fsys.SetPermissions(s.Path, s.mode)
	case OpChown:
		return fsys.SetOwnership(s.Path, s.user, s.group)
	}
	return s.runExtra(fsys)
}

// reports returns the items' reports with their errors filled in.
func reports(items []*item) []ItemReport {
	out := make([]ItemReport, 0, len(items))
	for _, it := range items {
		r := it.rep
		r.Actions = make([]Action, 0, len(it.steps))
		for _, s := range it.steps {
			r.Actions = append(r.Actions, s.Action)
		}
		r.Changes = it.changes
		if r.Status == StatusSkipped || r.Status == StatusFailed {
			r.Summary = "" // it says what the item would have done
		}
		if it.err != nil {
			r.Err, r.Error = it.err, it.err.Error()
		}
		out = append(out, r)
	}
	return out
}
