package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/diskimage"
)

// jsonReport is the --json output.
type jsonReport struct {
	Target string `json:"target"`
	// Filesystem names what was opened: the image and partition, or the
	// directory.
	Filesystem string `json:"filesystem,omitempty"`
	// Overlay is the overlay --overlay created (absent when it was
	// removed again because the injection failed).
	Overlay string `json:"overlay,omitempty"`
	// Grown is what --grow did: the partition and the filesystem sizes.
	Grown *diskimage.Growth `json:"grown,omitempty"`
	OK    bool              `json:"ok"`
	Error string            `json:"error,omitempty"`
	// ErrorClass is the failure's class (package errs: "corrupt",
	// "unsupported", "read-only", "in-use", ...; "failed" for none).
	ErrorClass string `json:"error_class,omitempty"`
	// RootPassword is the password --root-password random generated,
	// present only when it was set (never in a dry run).
	RootPassword string `json:"root_password,omitempty"`
	// Passwords are the passwords --password USER:random generated, by
	// user, present only when they were set.
	Passwords map[string]string `json:"passwords,omitempty"`
	*inject.Report
}

func (a *injectArgs) printJSONError(stdout io.Writer, err error) {
	if a.json {
		writeJSON(stdout, jsonReport{Target: a.target, Error: err.Error(), ErrorClass: errorClass(err), Report: &inject.Report{DryRun: a.dryRun, Items: []inject.ItemReport{}}})
	}
}

func writeJSON(w io.Writer, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil { // the report holds only strings, numbers and bools
		panic(err)
	}
	w.Write(append(b, '\n'))
}

// printReport writes the report as JSON (--json) or as text: one line per
// item, and in a dry run the writes each item would make.
func (a *injectArgs) printReport(out io.Writer, rep *inject.Report, err error) {
	// One write of the whole report, not one per field: the report is
	// dozens of small prints, each a syscall on an unbuffered stdout.
	w := bufio.NewWriter(out)
	defer w.Flush()
	if a.json {
		r := jsonReport{Target: a.target, Filesystem: a.where, OK: err == nil, Report: rep, Grown: a.grown}
		if err != nil {
			r.Error, r.ErrorClass = err.Error(), errorClass(err)
		} else if !rep.DryRun {
			r.Overlay = a.overlay.path
			r.RootPassword = passwordSet(rep, a.random)
			r.Passwords = randomsSet(rep, a.randoms)
		}
		writeJSON(w, r)
		return
	}
	if a.out.quiet {
		return
	}
	if rep.DryRun {
		fmt.Fprintf(w, "dry run on %s: nothing written\n", a.target)
	}
	if g := a.grown; g != nil {
		verb := "grew"
		if rep.DryRun || err != nil {
			verb = "would grow"
		}
		if p := g.Partition; p.Number > 0 {
			if p.Changed() {
				fmt.Fprintf(w, "%-8s %s partition %d from %d to %d bytes\n", "grow", verb, p.Number, p.OldSize, p.NewSize)
			} else {
				fmt.Fprintf(w, "%-8s partition %d unchanged: %s\n", "grow", p.Number, p.Why)
			}
		}
		groups := "groups"
		if g.FSType == "xfs" {
			groups = "allocation groups"
		}
		if f := g.FS; f.Changed() {
			fmt.Fprintf(w, "%-8s %s the filesystem from %d to %d blocks of %d bytes (%d to %d %s)\n", "grow", verb, f.OldBlocks, f.NewBlocks, f.BlockSize, f.OldGroups, f.NewGroups, groups)
		} else {
			fmt.Fprintf(w, "%-8s the filesystem already fills its partition (%d blocks)\n", "grow", f.OldBlocks)
		}
	}
	for _, it := range rep.Items {
		what := it.Path
		if it.Op != "" {
			what = it.Op
		}
		fmt.Fprintf(w, "%-8s %-7s %s", it.Kind, it.Status, what)
		if it.Summary != "" && it.Status != inject.StatusFailed {
			fmt.Fprintf(w, ": %s", it.Summary)
		}
		fmt.Fprintln(w)
		if it.Status == inject.StatusPlanned || it.Status == inject.StatusDone {
			printChanges(w, it.Changes)
			if a.out.verbose {
				printActions(w, it.Actions)
			}
		}
	}
}

// printChanges writes one line per guest path the item touches: what the
// write does to it (create, replace, append, modify, unchanged), then the
// bytes, mode and owner it sets.
func printChanges(w io.Writer, changes []inject.Change) {
	for _, c := range changes {
		fmt.Fprintf(w, "    %-9s %s", c.Change, c.Path)
		var attrs []string
		switch c.Type {
		case "dir":
			attrs = append(attrs, "dir")
		case "symlink":
			if c.Target != "" {
				attrs = append(attrs, "symlink -> "+c.Target)
			} else {
				attrs = append(attrs, "symlink")
			}
		}
		if c.Change == inject.ChangeCreate || c.Change == inject.ChangeReplace || c.Change == inject.ChangeAppend {
			if c.Type == "file" || c.Type == "" {
				attrs = append(attrs, fmt.Sprintf("%d bytes", c.Bytes))
			}
		}
		if c.Mode != "" {
			attrs = append(attrs, "mode "+c.Mode)
		}
		if c.Owner != "" {
			attrs = append(attrs, "owner "+c.Owner)
		}
		if c.Label != "" {
			attrs = append(attrs, "label "+c.Label)
		}
		if len(attrs) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(attrs, ", "))
		}
		fmt.Fprintln(w)
	}
}

// passwordSet is random when the report says the password item wrote it.
func passwordSet(rep *inject.Report, random string) string {
	for _, it := range rep.Items {
		if it.Kind == inject.KindPassword && it.Status == inject.StatusDone {
			return random
		}
	}
	return ""
}

// outputFlags are -q/--quiet and -v/--verbose.
type outputFlags struct{ quiet, verbose bool }

func (o *outputFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.quiet, "q", false, "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	fs.BoolVar(&o.verbose, "v", false, "")
	fs.BoolVar(&o.verbose, "verbose", false, "")
}

// printActions writes, for -v, each filesystem operation of an item in
// order, as the write makes it.
func printActions(w io.Writer, acts []inject.Action) {
	for _, a := range acts {
		fmt.Fprintf(w, "      op %-7s %s", a.Op, a.Path)
		switch a.Op {
		case inject.OpChmod:
			fmt.Fprintf(w, " %s", a.Mode)
		case inject.OpChown:
			fmt.Fprintf(w, " %s", a.Owner)
		case inject.OpAppend, inject.OpReplace:
			fmt.Fprintf(w, " (%d bytes)", a.Bytes)
		}
		fmt.Fprintln(w)
	}
}
