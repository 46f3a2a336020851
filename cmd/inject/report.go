package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/inject"
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
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	*inject.Report
}

func (a *injectArgs) printJSONError(stdout io.Writer, err error) {
	if a.json {
		writeJSON(stdout, jsonReport{Target: a.target, Error: err.Error(), Report: &inject.Report{DryRun: a.dryRun, Items: []inject.ItemReport{}}})
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
func (a *injectArgs) printReport(w io.Writer, rep *inject.Report, err error) {
	if a.json {
		r := jsonReport{Target: a.target, Filesystem: a.where, OK: err == nil, Report: rep}
		if err != nil {
			r.Error = err.Error()
		} else if !rep.DryRun {
			r.Overlay = a.overlay.path
		}
		writeJSON(w, r)
		return
	}
	if rep.DryRun {
		fmt.Fprintf(w, "dry run on %s: nothing written\n", a.target)
	}
	for _, it := range rep.Items {
		fmt.Fprintf(w, "%-8s %-7s %s", it.Kind, it.Status, it.Path)
		if it.Summary != "" && it.Status != inject.StatusFailed {
			fmt.Fprintf(w, ": %s", it.Summary)
		}
		fmt.Fprintln(w)
		if rep.DryRun && it.Status == inject.StatusPlanned {
			printActions(w, it.Actions)
		}
	}
}

func printActions(w io.Writer, acts []inject.Action) {
	for _, a := range acts {
		fmt.Fprintf(w, "    %-7s %s", a.Op, a.Path)
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
