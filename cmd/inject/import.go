package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/guestinject/guestinject/imports"
	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/diskimage"
)

const importHelp = `inject import brings a disk in: it fetches, decompresses, unpacks,
verifies and converts SOURCE in one pass, and writes DISK only when all
of it succeeded.

Usage:
  inject import SOURCE --output DISK [flags] [injection flags]

SOURCE is a path, - (stdin) or an http:// or https:// URL (redirects are
followed; a 4xx or 5xx answer fails). Recognised by content, not by name:
gzip, bzip2, xz and zstd compression (nested too), tar, zip and OVA
archives, and raw, qcow2, VMDK (sparse, streamOptimized, flat), VHD and
VHDX disks.

Flags:
  --output DISK        the disk to create (must not exist); written under a
                       temporary name beside it, which is removed if
                       anything fails or the import is interrupted
  --format F           qcow2 (default) or raw; written sparse either way
  --checksum ALGO:HEX  md5, sha1, sha256 or sha512 of SOURCE as read; a
                       mismatch leaves no DISK and exits 1
  --checksum-file F    a SHA256SUMS or Fedora *-CHECKSUM file (path or URL)
                       holding SOURCE's checksum under its file name
  --size SIZE          the disk's virtual size (K, M, G, T); not smaller
                       than the source's
  --disk N             the Nth disk of an OVA (as its OVF lists them) or
                       the Nth file of a tar or zip, when there are several
  -q, --quiet          no progress line, no report
  --json               the report as JSON on stdout
  injection flags      --key, --key-user, --meta, --ip, --net, --net-format,
                       --file, --root-password, --password-crypto,
                       --partition, --force: injected into DISK before it
                       takes its name (one write; a failure leaves no DISK)
  e.g. inject import https://example.org/disk.raw.xz --output vm1.qcow2 \
         --checksum-file https://example.org/SHA256SUMS --key id.pub
`

// importArgs is the parsed command line of `inject import`.
type importArgs struct {
	imports.Options
	inj    injectArgs
	inject bool // injection flags were given
}

func parseImportArgs(args []string) (*importArgs, error) {
	a := &importArgs{}
	fs := newFlagSet("import")
	fs.StringVar(&a.Output, "output", "", "")
	fs.StringVar(&a.Format, "format", "qcow2", "")
	fs.StringVar(&a.Checksum, "checksum", "", "")
	fs.StringVar(&a.ChecksumFile, "checksum-file", "", "")
	var size sizeFlag
	fs.Var(&size, "size", "")
	fs.IntVar(&a.Disk, "disk", 0, "")
	i := &a.inj
	i.keys.register(fs)
	fs.Var(&i.metas, "meta", "")
	fs.StringVar(&i.net, "net", "", "")
	fs.Var(&i.ips, "ip", "")
	fs.StringVar(&i.netFormat, "net-format", "", "")
	fs.Var(&i.files, "file", "")
	fs.StringVar(&i.rootPassword, "root-password", "", "")
	fs.StringVar(&i.crypto, "password-crypto", "", "")
	fs.StringVar(&i.img.partition, "partition", "", "")
	fs.BoolVar(&i.force, "force", false, "")
	fs.BoolVar(&i.json, "json", false, "")
	i.out.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, flagError(err)
	}
	a.Size = int64(size)
	a.inject = i.keys.count()+len(i.metas)+len(i.ips)+len(i.files) > 0 || i.net != "" || i.rootPassword != ""
	switch {
	case len(pos) != 1:
		return nil, usagef("import wants exactly one SOURCE, got %d arguments", len(pos))
	case a.Output == "":
		return nil, usagef("import needs --output DISK")
	case a.Format != "qcow2" && a.Format != "raw":
		return nil, usagef("--format %q: want qcow2 or raw", a.Format)
	case a.Disk < 0:
		return nil, usagef("--disk %d: want 1, 2, ...", a.Disk)
	case a.Checksum != "" && a.ChecksumFile != "":
		return nil, usagef("--checksum and --checksum-file exclude each other")
	case i.keys.check() != nil:
		return nil, i.keys.check()
	case i.net != "" && len(i.ips) > 0:
		return nil, usagef("--net and --ip exclude each other")
	case i.crypto != "" && i.rootPassword == "":
		return nil, usagef("--password-crypto needs --root-password")
	case i.out.quiet && i.out.verbose:
		return nil, usagef("-q and -v exclude each other")
	case !a.inject && (i.img.partition != "" || i.force):
		return nil, usagef("--partition and --force apply to an injection: give something to inject")
	}
	if a.Checksum != "" {
		if _, err := imports.ParseChecksum(a.Checksum); err != nil {
			return nil, usagef("--checksum: %v", err)
		}
	}
	a.Source = pos[0]
	i.target = a.Output
	return a, nil
}

// importJSON is import's --json report.
type importJSON struct {
	*imports.Result
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// ErrorClass: as the injection report's error_class.
	ErrorClass string      `json:"error_class,omitempty"`
	Injection  *jsonReport `json:"injection,omitempty"`
}

func runImport(args []string, stdout, stderr io.Writer) int {
	a, err := parseImportArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, importHelp)
		return exitOK
	}
	if err != nil {
		return fail(stderr, err)
	}
	var data *inject.Data
	if a.inject {
		if data, a.inj.random, err = a.inj.buildData(); err != nil {
			return fail(stderr, err)
		}
	}
	ctx, stop := interruptible(&a.Options)
	defer stop()
	if !a.inj.out.quiet && !a.inj.json && isTerminal(stderr) {
		a.Progress = progressLine(stderr)
	}
	p, err := imports.Import(ctx, a.Options)
	if a.Progress != nil {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return a.failed(stdout, stderr, nil, err)
	}
	var rep *inject.Report
	if a.inject {
		rep, err = a.injectInto(p, data)
		if err != nil {
			p.Abort()
			return a.failed(stdout, stderr, rep, fmt.Errorf("%w; %s was not created", err, a.Output))
		}
	}
	if err := p.Commit(); err != nil {
		p.Abort()
		return a.failed(stdout, stderr, rep, err)
	}
	a.report(stdout, stderr, p, rep)
	return exitOK
}

// injectInto injects data into the new disk under its temporary name.
func (a *importArgs) injectInto(p *imports.Pending, data *inject.Data) (*inject.Report, error) {
	im, err := diskimage.Open(p.Temp, diskimage.Options{Format: p.Format, Writable: true, Fresh: true, Partition: a.inj.img.partition, Force: a.inj.force})
	if err != nil {
		return nil, explainOpen(a.Output, err)
	}
	a.inj.where = imageWhere(a.Output, im)
	rep, err := inject.Apply(im.FS, data, nil)
	if err != nil {
		im.Discard()
		im.Close()
		return rep, err
	}
	return rep, im.Close()
}

func (a *importArgs) failed(stdout, stderr io.Writer, rep *inject.Report, err error) int {
	if a.inj.json {
		r := importJSON{Result: &imports.Result{Source: a.Source, Output: a.Output, Format: a.Format}, Error: err.Error(), ErrorClass: errorClass(err)}
		if rep != nil {
			r.Injection = &jsonReport{Target: a.Output, Filesystem: a.inj.where, Report: rep}
		}
		writeJSON(stdout, r)
	}
	if rep != nil {
		a.inj.reportFailure(stderr, rep, err)
		_, status := classify(err)
		return status
	}
	return fail(stderr, err)
}

func (a *importArgs) report(stdout, stderr io.Writer, p *imports.Pending, rep *inject.Report) {
	if a.inj.json {
		r := importJSON{Result: &p.Result, OK: true}
		if rep != nil {
			r.Injection = &jsonReport{Target: a.Output, Filesystem: a.inj.where, OK: true, Report: rep, RootPassword: passwordSet(rep, a.inj.random)}
		}
		writeJSON(stdout, r)
		return
	}
	if rep != nil {
		announceRandom(stderr, rep, a.inj.random, a.inj.out.quiet)
	}
	if a.inj.out.quiet {
		return
	}
	r := p.Result
	from := r.SourceFormat
	for i := len(r.Layers) - 1; i >= 0; i-- {
		from += " in " + r.Layers[i]
	}
	if r.Member != "" {
		from += " (member " + r.Member + ")"
	}
	fmt.Fprintf(stdout, "imported %s: %s\n", r.Source, from)
	fmt.Fprintf(stdout, "wrote    %s: %s, %d bytes virtual, %d bytes of data, %.1f s\n", r.Output, r.Format, r.VirtualSize, r.DataWritten, r.Seconds)
	if c := r.Checksum; c != nil {
		fmt.Fprintf(stdout, "verified %s %s\n", c.Algo, c.Got)
	}
	if rep != nil {
		a.inj.printReport(stdout, rep, nil)
	}
}

// interruptible returns a context cancelled by SIGINT or SIGTERM. A read
// blocked where cancelling cannot reach (stdin) is not waited for: after
// a grace period the temporary files go and the process exits 130.
func interruptible(o *imports.Options) (context.Context, func()) {
	o.Temps = &imports.Temps{}
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			cancel()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				o.Temps.RemoveAll()
				os.Exit(130)
			}
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(sig); close(done); cancel() }
}

// isTerminal reports a terminal: a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine draws "read 1.2 GiB of 3.4 GiB  85.0 MiB/s  ETA 26s" in
// place.
func progressLine(w io.Writer) imports.Progress {
	return func(done, total int64, elapsed time.Duration) {
		rate := float64(done) / max(elapsed.Seconds(), 0.001)
		line := fmt.Sprintf("read %s", human(done))
		if total > 0 {
			line += " of " + human(total)
		}
		line += fmt.Sprintf("  %s/s", human(int64(rate)))
		if total > 0 && rate > 0 && done < total {
			line += fmt.Sprintf("  ETA %s", time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second))
		}
		fmt.Fprintf(w, "\r%-60s", line)
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 5 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[u-1])
}
