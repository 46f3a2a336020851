package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/vfs"
)

// opList collects the ordered operations in command-line order: every
// registered operation is a flag whose Set appends to the one list, and
// --commands-from-file appends the file's operations where it stands.
type opList struct{ ops []inject.Operation }

// opFlag is one operation's flag.
type opFlag struct {
	name string
	list *opList
}

func (f opFlag) String() string { return "" }
func (f opFlag) Set(v string) error {
	f.list.ops = append(f.list.ops, inject.Operation{Name: f.name, Arg: v})
	return nil
}

// commandsFlag is --commands-from-file FILE.
type commandsFlag struct {
	list *opList
	fs   *flag.FlagSet // sets the lines that name a flag of fileFlags
}

// fileFlags are the flags, not ordered operations, that a commands file
// may hold as virt-customize's files do (passwords and keys are written
// with the classic items; the relabel comes last whatever its line).
var fileFlags = map[string]bool{"root-password": true, "password": true, "password-crypto": true, "ssh-inject": true, "selinux-relabel": false}

func (f commandsFlag) String() string { return "" }
func (f commandsFlag) Set(v string) error {
	file, err := os.Open(v)
	if err != nil {
		return err
	}
	defer file.Close()
	ops, err := inject.ParseCommands(file, func(name string) (bool, bool) {
		takesArg, ok := fileFlags[name]
		return takesArg, ok && f.fs != nil && f.fs.Lookup(name) != nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", v, err)
	}
	for _, o := range ops {
		if isOperation(o.Name) {
			f.list.ops = append(f.list.ops, o)
			continue
		}
		arg := o.Arg
		if !fileFlags[o.Name] {
			arg = "true"
		}
		if err := f.fs.Set(o.Name, arg); err != nil {
			return fmt.Errorf("%s: %s: %w", v, o.Name, err)
		}
	}
	return nil
}

// isOperation reports whether name is a registered operation.
func isOperation(name string) bool {
	for _, o := range inject.Operations() {
		if o.Name == name {
			return true
		}
	}
	return false
}

// register adds a flag for every registered operation.
func (l *opList) register(fs *flag.FlagSet) {
	for _, o := range inject.Operations() {
		fs.Var(opFlag{o.Name, l}, o.Name, "")
	}
	fs.Var(commandsFlag{l, fs}, "commands-from-file", "")
}

// opsHelp is the help section of the ordered operations, from the same
// table the flags come from.
func opsHelp() string {
	var b strings.Builder
	b.Grow(16 << 10)
	b.WriteString(`Ordered operations (virt-customize's spellings; applied in command-line
order after the items above, each on the guest as everything before it left
it; all validated on a model of the guest before the first write, and
written in the same transaction):
`)
	for _, o := range inject.Operations() {
		head := "  --" + o.Name
		if o.Metavar != "" {
			head += " " + o.Metavar
		}
		writeWrapped(&b, head, o.Help)
		b.WriteString(spaces[:32] + "e.g. --" + o.Name + " " + shellQuote(o.Example) + "\n")
	}
	writeWrapped(&b, "  --commands-from-file FILE", "the operations in FILE, one a line as NAME ARG (virt-customize's format: blank lines and # comments ignored, a line ending in \\ continues on the next), applied where the flag stands")
	fmt.Fprintf(&b, "%32se.g. --commands-from-file ./customize.txt\n", "")
	writeWrapped(&b, "  --host-owners", "--upload and --copy-in keep the host's numeric owners instead of root:root")
	return b.String()
}

// writeWrapped writes head and then text wrapped in the help's right column.
// It writes straight into b (no per-word string building: the help is
// rendered on every `inject --help`, and start-up time matters).
func writeWrapped(b *strings.Builder, head, text string) {
	const col, width = 30, 78
	b.WriteString(head)
	n := len(head)
	if n >= col-1 {
		b.WriteByte('\n')
		n = 0
	}
	b.WriteString(spaces[:col-n])
	n = col
	for _, w := range strings.Fields(text) {
		if n+len(w)+1 > width && n > col {
			b.WriteByte('\n')
			b.WriteString(spaces[:col])
			n = col
		}
		if n > col {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	b.WriteByte('\n')
}

// spaces pads the help's columns.
const spaces = "                                        "

func shellQuote(s string) string {
	if strings.ContainsAny(s, " *?[$'\"") {
		return "'" + s + "'"
	}
	return s
}

// fileSpec is --file GUEST=LOCAL[,mode=OCTAL][,owner=USER:GROUP]: the
// options are peeled from the end, so a local name may hold commas.
type fileSpec struct {
	guest, local string
	mode         *fs.FileMode
	owner        string
}

func parseFileSpec(s string) (fileSpec, error) {
	var f fileSpec
	rest := s
	for {
		i := strings.LastIndexByte(rest, ',')
		if i < 0 {
			break
		}
		k, v, ok := strings.Cut(rest[i+1:], "=")
		if !ok || k != "mode" && k != "owner" {
			break
		}
		switch k {
		case "mode":
			if f.mode != nil {
				return f, usagef("--file %q: mode given twice", s)
			}
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil || n > 0o7777 || v == "" {
				return f, usagef("--file %q: mode=%s: want octal permissions, e.g. mode=0755", s, v)
			}
			m := vfs.PermFromUnix(uint32(n))
			f.mode = &m
		case "owner":
			if f.owner != "" {
				return f, usagef("--file %q: owner given twice", s)
			}
			if u, g, ok := strings.Cut(v, ":"); !ok || u == "" || g == "" {
				return f, usagef("--file %q: owner=%s: want USER:GROUP (names or ids of the guest)", s, v)
			}
			f.owner = v
		}
		rest = rest[:i]
	}
	guest, local, ok := strings.Cut(rest, "=")
	if !ok || guest == "" || local == "" {
		return f, usagef("--file %q: want GUESTPATH=LOCALFILE[,mode=OCTAL][,owner=USER:GROUP]", s)
	}
	f.guest, f.local = guest, local
	return f, nil
}
