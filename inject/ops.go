package inject

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/guestinject/guestinject/vfs"
)

// Operation is one ordered customisation, as virt-customize's command line
// spells it: Name is the option without its dashes ("mkdir", "append-line")
// and Arg its argument (empty for an option that takes none). Data.Ops are
// applied in their order, after the classic items (keys, network, meta,
// password, files), each on the guest as everything before it left it.
type Operation struct {
	Name string
	Arg  string
}

func (o Operation) String() string {
	if o.Arg == "" {
		return "--" + o.Name
	}
	return "--" + o.Name + " " + o.Arg
}

// OpSpec describes one registered operation, for the CLI's flags and help.
type OpSpec struct {
	Name    string // the option, without dashes
	Metavar string // its argument as the help shows it, "" if it takes none
	Help    string // one paragraph
	Example string // an argument, e.g. "/etc/motd:hello"
	// Last operations run after every other one, in their own order,
	// as virt-customize sets passwords and relabels SELinux at the end.
	Last bool
}

// opDef is a registered operation: its help and what it does. run plans
// the operation on the model; every write goes through the model's
// primitives, which check it as the backend would and record its step.
type opDef struct {
	OpSpec
	run func(c *opCtx, arg string) error
}

// opTable holds every operation by name. Registering one is a call to
// register from an init function of the file that implements it:
//
//	func init() {
//		register(OpSpec{Name: "touch", Metavar: "FILE", Example: "/etc/x", Help: "..."}, opTouch)
//	}
//	func opTouch(c *opCtx, arg string) error { ... c.writeFile(p, nil, true) ... }
//
// run parses arg, reads the guest through the model (c.resolve,
// c.content, c.readOptional, c.resolveOwner) and writes only through the
// model's primitives (mkdirAll, writeFile, chmod, chown, symlink,
// symlinkForce, remove, removeAll, rename, link, setTimes); each checks
// the write as the backend would, records its step and its per-path
// change. The CLI gets the flag, its help and its --commands-from-file
// name from the table.
var opTable = map[string]opDef{}

func register(spec OpSpec, run func(c *opCtx, arg string) error) {
	if _, dup := opTable[spec.Name]; dup {
		panic("inject: operation registered twice: " + spec.Name)
	}
	opTable[spec.Name] = opDef{spec, run}
}

// Operations lists the registered operations, sorted by name.
func Operations() []OpSpec {
	out := make([]OpSpec, 0, len(opTable))
	for _, d := range opTable {
		out = append(out, d.OpSpec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// opCtx is what an operation's run sees: the model of the guest and the
// item it reports through.
type opCtx struct {
	*model
	hostOwners bool // Data.HostOwners
}

// accounts is the guest's /etc/passwd and /etc/group as the plan leaves
// them, as a vfs.FS the owner lookups read.
type accounts struct{ m *model }

func (a accounts) ReadFile(p string) ([]byte, error) {
	r, err := a.m.existing("read", p, true)
	if err != nil {
		return nil, err
	}
	if r.Node.typ != 0 {
		return nil, vfs.PathErr("read", p, vfs.ErrNotRegular)
	}
	return a.m.config(r.Node, r.Path)
}

func (a accounts) HasFile(p string) (bool, error) {
	r, err := a.m.resolve(p, true)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return r.Exists, err
}

var errReadOnlyView = errors.New("inject: the accounts view is read-only")

func (accounts) MakePath(string) error                    { return errReadOnlyView }
func (accounts) AppendFile(string, []byte) error          { return errReadOnlyView }
func (accounts) ReplaceFile(string, []byte) error         { return errReadOnlyView }
func (accounts) SetPermissions(string, fs.FileMode) error { return errReadOnlyView }
func (accounts) SetOwnership(string, string, string) error {
	return errReadOnlyView
}

// resolveOwner turns user and group names or ids into ids from the guest
// as the plan leaves it; -1 for an empty one.
func (c *opCtx) resolveOwner(user, group string) (int, int, error) {
	return vfs.ResolveOwner(accounts{c.model}, user, group)
}

// prepareOps plans the operations in order on a model of the guest that
// first replays the classic items' writes. Each operation is one item of
// KindCustomize; once one fails, the later ones are not planned (the
// whole injection is refused anyway).
func prepareOps(fsys vfs.FS, before []*item, ops []Operation, hostOwners bool) []*item {
	items, _ := planOps(fsys, before, ops, hostOwners)
	return items
}

// planOps is prepareOps, also returning the model as the operations leave
// the guest (nil when none was planned or planning failed).
func planOps(fsys vfs.FS, before []*item, ops []Operation, hostOwners bool) ([]*item, *model) {
	ops = lastAtEnd(ops)
	items := make([]*item, 0, len(ops))
	for _, o := range ops {
		it := newItem(KindCustomize, "")
		it.rep.Op = o.String()
		items = append(items, it)
	}
	if len(ops) == 0 {
		return items, nil
	}
	m, err := newModel(fsys)
	if err != nil {
		items[0].fail(err)
		return items, nil
	}
	for _, it := range before {
		if it.err != nil {
			continue
		}
		for i := range it.steps {
			if err := m.replay(&it.steps[i]); err != nil {
				items[0].fail(fmt.Errorf("modelling the %s item's %s %s: %w", it.rep.Kind, it.steps[i].Op, it.steps[i].Path, err))
				return items, nil
			}
		}
	}
	c := &opCtx{model: m, hostOwners: hostOwners}
	for i, o := range ops {
		it := items[i]
		d, ok := opTable[o.Name]
		if !ok {
			d, ok = internalOps[o.Name]
		}
		if !ok {
			it.fail(fmt.Errorf("%w: unknown operation --%s", ErrInvalidOp, o.Name))
			return items, nil
		}
		m.it, m.seen = it, nil
		err := d.run(c, o.Arg)
		m.it = nil
		if err != nil {
			it.fail(fmt.Errorf("--%s: %w", o.Name, err))
			return items, nil
		}
		if it.rep.Path == "" && len(it.changes) > 0 {
			it.rep.Path = it.changes[0].Path
		}
	}
	return items, m
}

// lastAtEnd moves the operations registered as Last after the others,
// each group in its given order.
func lastAtEnd(ops []Operation) []Operation {
	out := make([]Operation, 0, len(ops))
	var last []Operation
	for _, o := range ops {
		if opTable[o.Name].Last {
			last = append(last, o)
		} else {
			out = append(out, o)
		}
	}
	return append(out, last...)
}

// splitArg cuts an operation's argument at its first colon.
func splitArg(arg, want string) (string, string, error) {
	a, b, ok := strings.Cut(arg, ":")
	if !ok || a == "" {
		return "", "", fmt.Errorf("%w: %q: want %s", ErrInvalidOp, arg, want)
	}
	return a, b, nil
}

// maxCommandsFile bounds a --commands-from-file file.
const maxCommandsFile = 16 << 20

// ParseCommands reads virt-customize's --commands-from-file format: one
// operation a line, "NAME ARG" or "NAME" for one that takes no argument;
// blank lines and lines starting with "#" ignored; a line ending in "\"
// continues on the next (the backslash and the line break dropped).
// Names must be registered operations (or be accepted by extra, for the
// options the caller handles itself).
func ParseCommands(r io.Reader, extra func(name string) (takesArg, ok bool)) ([]Operation, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxCommandsFile+1))
	sc.Buffer(make([]byte, 0, 64<<10), maxCommandsFile)
	var ops []Operation
	var cur strings.Builder
	lineNo, start := 0, 0
	read := 0
	flush := func() error {
		line := cur.String()
		cur.Reset()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			return nil
		}
		name, arg, hasArg := strings.Cut(line, " ")
		takes := false
		if spec, ok := opTable[name]; ok {
			takes = spec.Metavar != ""
		} else if extra == nil {
			return fmt.Errorf("%w: line %d: unknown command %q", ErrInvalidOp, start, name)
		} else if t, ok := extra(name); ok {
			takes = t
		} else {
			return fmt.Errorf("%w: line %d: unknown command %q", ErrInvalidOp, start, name)
		}
		switch {
		case takes && !hasArg:
			return fmt.Errorf("%w: line %d: %s needs an argument", ErrInvalidOp, start, name)
		case !takes && strings.TrimSpace(arg) != "":
			return fmt.Errorf("%w: line %d: %s takes no argument", ErrInvalidOp, start, name)
		}
		if !takes {
			arg = ""
		}
		ops = append(ops, Operation{Name: name, Arg: arg})
		return nil
	}
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		read += len(line) + 1
		if read > maxCommandsFile {
			return nil, fmt.Errorf("%w: the commands file is larger than %d bytes", ErrInvalidOp, maxCommandsFile)
		}
		if cur.Len() == 0 {
			start = lineNo
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		cur.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %w", ErrInvalidOp, lineNo+1, err)
	}
	if cur.Len() > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return ops, nil
}
