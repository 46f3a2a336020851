package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/guestinject/guestinject/inject/diskimage"
)

// runInspect describes an image: container, backing chain, partition
// table, filesystems and the guest root.
func runInspect(args []string, stdout, stderr io.Writer) int {
	var img imageFlags
	var asJSON bool
	fs := newFlagSet("inspect")
	fs.StringVar(&img.format, "format", "", "")
	fs.StringVar(&img.backing, "backing", "", "")
	fs.StringVar(&img.partition, "partition", "", "")
	fs.BoolVar(&asJSON, "json", false, "")
	img.registerShare(fs)
	var quiet bool
	fs.BoolVar(&quiet, "q", false, "")
	fs.BoolVar(&quiet, "quiet", false, "")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, verbHelp("inspect"))
		return exitOK
	}
	if err != nil {
		return fail(stderr, flagError(err))
	}
	if err := img.parsed(fs); err != nil {
		return fail(stderr, err)
	}
	if len(pos) != 1 {
		return fail(stderr, usagef("inspect: want exactly one IMAGE, got %d arguments", len(pos)))
	}
	if fi, err := os.Stat(pos[0]); err == nil && !fi.Mode().IsRegular() {
		return fail(stderr, usagef("inspect: %s is not an image file", pos[0]))
	}
	warn := warner(stderr)
	if quiet {
		warn = warner(io.Discard)
	}
	img.warnShare(warn)
	opts := img.options()
	opts.Warn = warn
	rep, err := diskimage.Inspect(pos[0], opts)
	out := &inspectReport{Report: rep}
	if err != nil && backingTrouble(err) {
		// Describe the image itself, as qemu-img info does, and say
		// why its backing file was not read.
		out, err = inspectWithoutBacking(pos[0], err)
		if err == nil {
			warn("backing file not opened: " + out.BackingError)
		}
	}
	if err != nil {
		err = fmt.Errorf("inspect: %w", explainOpen(pos[0], err))
		if asJSON {
			writeJSON(stdout, jsonError{Target: pos[0], Error: err.Error(), ErrorClass: errorClass(err)})
		}
		return fail(stderr, err)
	}
	if asJSON {
		writeJSON(stdout, out)
	} else {
		printInspect(stdout, out)
	}
	return exitOK
}

// jsonError is what --json prints when a verb fails before it has a
// report: the same target, ok and error fields as the injection's report.
type jsonError struct {
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	// ErrorClass: as the injection report's error_class.
	ErrorClass string `json:"error_class"`
}

// printInspect writes the report for a person.
func printInspect(w io.Writer, out *inspectReport) {
	r := out.Report
	fmt.Fprintf(w, "image:          %s\n", r.Path)
	fmt.Fprintf(w, "format:         %s%s\n", r.Format, qcow2Line(r.Qcow2))
	fmt.Fprintf(w, "virtual size:   %s\n", sizeText(r.VirtualSize))
	fmt.Fprintf(w, "on host:        %s\n", sizeText(r.FileSize))
	for i, b := range r.Backing {
		label := "backing chain:"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(w, "%-15s %d. %s (%s, %s)", label, i+1, b.Path, b.Format, sizeText(b.VirtualSize))
		if b.Name != b.Path {
			fmt.Fprintf(w, ", named %q", b.Name)
		}
		fmt.Fprintln(w)
	}
	if out.BackingError != "" {
		fmt.Fprintf(w, "backing file:   %q, not opened: %s\n", out.BackingFile, out.BackingError)
		fmt.Fprintln(w, "partitions:     not read (the guest's disk needs its backing file)")
		return
	}
	printTable(w, r)
	printFilesystems(w, r)
	printRoot(w, r)
}

func qcow2Line(q *diskimage.Qcow2Report) string {
	if q == nil {
		return ""
	}
	s := fmt.Sprintf(" (version %d, cluster %s, refcount %d bits, compression %s", q.Version, sizeText(int64(q.ClusterSize)), q.RefcountBits, q.Compression)
	if q.Snapshots > 0 {
		s += fmt.Sprintf(", %d snapshots", q.Snapshots)
	}
	if len(q.Features) > 0 {
		s += "; " + strings.Join(q.Features, ", ")
	}
	return s + ")"
}

func printTable(w io.Writer, r *diskimage.Report) {
	t := r.Table
	fmt.Fprintf(w, "partition table: %s, %d-byte sectors", t.Scheme, t.SectorSize)
	if t.DiskGUID != "" {
		fmt.Fprintf(w, ", disk GUID %s", t.DiskGUID)
	}
	if t.Hybrid {
		fmt.Fprint(w, ", hybrid MBR")
	}
	fmt.Fprintln(w)
	for _, warn := range t.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	fmt.Fprintf(w, "  %-3s %14s %10s  %-22s %-12s %s\n", "#", "start", "size", "type", "name", "content")
	for _, p := range r.Partitions {
		num := fmt.Sprint(p.Number)
		switch {
		case p.Content.Volume != "":
			num = "lv"
			p.Name = p.Content.Volume
		case p.Number <= 0:
			num = "-"
		}
		typ := p.TypeName
		if typ == "" {
			typ = p.Type
		}
		fmt.Fprintf(w, "  %-3s %14d %10s  %-22s %-12s %s\n", num, p.Start, sizeText(p.Size), typ, quoteName(p.Name), content(p.Content))
		if p.FreeAfter > 0 || p.Growable {
			fmt.Fprintf(w, "      free after it: %s; --grow: %s", sizeText(p.FreeAfter), yesNo(p.Growable))
			if p.GrowNote != "" {
				fmt.Fprintf(w, " (%s)", p.GrowNote)
			}
			fmt.Fprintln(w)
		}
	}
}

func quoteName(s string) string {
	if s == "" {
		return "-"
	}
	return fmt.Sprintf("%q", s)
}

// content says what a partition holds, in a few words.
func content(c diskimage.Candidate) string {
	s := c.Kind
	if s == "" {
		s = "-"
	}
	if c.Label != "" {
		s += fmt.Sprintf(" %q", c.Label)
	}
	if c.Root {
		s += " (guest root)"
	} else if c.Why != "" {
		s += " (" + c.Why + ")"
	}
	return s
}

func printFilesystems(w io.Writer, r *diskimage.Report) {
	for _, p := range r.Partitions {
		f := p.Filesystem
		if f == nil {
			continue
		}
		name := fmt.Sprintf("partition %d", p.Number)
		switch {
		case p.Content.Volume != "":
			name = "logical volume " + p.Content.Volume
		case p.Number == 0:
			name = "whole disk"
		}
		fmt.Fprintf(w, "filesystem on %s: %s", name, f.Type)
		if f.Label != "" {
			fmt.Fprintf(w, " label %q", f.Label)
		}
		fmt.Fprintf(w, " UUID %s\n", f.UUID)
		fmt.Fprintf(w, "  size %s (%d-byte blocks), %s free; %d inodes, %d free\n", sizeText(f.Size), f.BlockSize, sizeText(f.FreeBytes), f.Inodes, f.FreeInodes)
		fmt.Fprintf(w, "  features: %s\n", strings.Join(f.Features, " "))
		fmt.Fprintf(w, "  clean: %s; journal: %s\n", yesNo(f.Clean), orNone(f.Journal))
	}
}

func printRoot(w io.Writer, r *diskimage.Report) {
	if r.Root == nil {
		fmt.Fprintf(w, "guest root:     none: %s\n", r.RootError)
		return
	}
	where := fmt.Sprintf("partition %d", r.Root.Partition)
	switch {
	case r.Root.Volume != "":
		where = "logical volume " + r.Root.Volume
	case r.Root.Partition == 0:
		where = "whole disk"
	}
	os := r.Root.PrettyName
	if os == "" {
		os = strings.TrimSpace(r.Root.OSName + " " + r.Root.OSVersion)
	}
	if os == "" {
		os = "unknown OS (no os-release)"
	}
	fmt.Fprintf(w, "guest root:     %s: %s", where, os)
	if r.Root.OSID != "" || r.Root.OSVersion != "" {
		fmt.Fprintf(w, " (id %s, version %s)", orNone(r.Root.OSID), orNone(r.Root.OSVersion))
	}
	fmt.Fprintln(w)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// sizeText renders n bytes with a binary unit, exact bytes for small
// values.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffixes := float64(n), []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= unit && i < len(suffixes)-1 {
		v /= unit
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), suffixes[i])
	}
	return fmt.Sprintf("%.1f %s", v, suffixes[i])
}
