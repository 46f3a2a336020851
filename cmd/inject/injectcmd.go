package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/diskimage"
)

// injectArgs is the parsed command line of an injection.
type injectArgs struct {
	metas, ips, files    multi
	keys                 keyFlags // --key and --key-user
	net, netFormat       string
	rootPassword, crypto string
	passwords            multi              // --password USER:SELECTOR
	preOps               []inject.Operation // operations before the command line's (the sysprep verb's)
	opsFirst             bool               // the operations run before the classic items (the sysprep verb)
	selinuxRelabel       bool               // --selinux-relabel
	randoms              map[string]string  // the passwords random selectors of --password generated, by user
	img                  imageFlags
	overlay              overlayRequest
	dryRun, json, force  bool
	allowNonRootDir      bool
	ops                  opList // the ordered operations, in command-line order
	hostOwners           bool
	seedInImage          string // "nocloud": also write the NoCloud seed in the guest
	target               string
	where                string // the opened filesystem, for messages
	discarded            string // what became of an overlay removed, or of a resize undone, after a failure
	random               string // the password --root-password random generated
	out                  outputFlags
	grow                 growFlag
	grown                *diskimage.Growth // what --grow did
	// resized is the in-place --size growth of TARGET, undone if the
	// injection fails.
	resized *formats.Resized
}

func parseInjectArgs(args []string) (*injectArgs, error) {
	return parseInjectArgsInto(&injectArgs{}, args)
}

// parseInjectArgsInto parses args into a, which may hold operations
// already (a.preOps: the sysprep verb's).
func parseInjectArgsInto(a *injectArgs, args []string) (*injectArgs, error) {
	var size sizeFlag
	fs := a.flagSet(&size)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, flagError(err)
	}
	if err := a.img.parsed(fs); err != nil {
		return nil, err
	}
	a.overlay.size = int64(size)
	switch {
	case len(pos) != 1:
		return nil, usagef("want exactly one TARGET, got %d arguments", len(pos))
	case a.keys.check() != nil:
		return nil, a.keys.check()
	case a.keys.count()+len(a.metas)+len(a.ips)+len(a.files)+len(a.passwords)+len(a.ops.ops)+len(a.preOps) == 0 && a.net == "" && a.rootPassword == "" && a.grow == "" && !a.selinuxRelabel:
		return nil, usagef("nothing to inject: give --key, --meta, --net, --ip, --file, --root-password, --password, --grow or an operation (--mkdir, --write, ...; see --help)")
	case a.net != "" && len(a.ips) > 0:
		return nil, usagef("--net and --ip exclude each other")
	case a.netFormat != "" && a.net == "" && len(a.ips) == 0:
		return nil, usagef("--net-format needs --ip or --net")
	case a.crypto != "" && a.rootPassword == "" && len(a.passwords) == 0:
		return nil, usagef("--password-crypto needs --root-password or --password")
	case checkCrypto(a.crypto) != nil:
		return nil, checkCrypto(a.crypto)
	case a.out.quiet && a.out.verbose:
		return nil, usagef("-q and -v exclude each other")
	case a.overlay.size != 0 && a.overlay.path == "" && a.img.offsetSet:
		return nil, usagef("--size and --offset exclude each other (--offset names a filesystem, --size sizes the disk)")
	case a.grow != "" && a.img.offsetSet:
		return nil, usagef("--grow and --offset exclude each other (--offset bypasses the partition table)")
	}
	a.target = pos[0]
	return a, nil
}

// flagSet declares the injection's flags on a new flag set (also read by
// the shell completions).
func (a *injectArgs) flagSet(size *sizeFlag) *flag.FlagSet {
	fs := newFlagSet("inject")
	a.keys.register(fs)
	fs.Var(&a.metas, "meta", "")
	fs.StringVar(&a.net, "net", "", "")
	fs.Var(&a.ips, "ip", "")
	fs.StringVar(&a.netFormat, "net-format", "", "")
	fs.Var(&a.files, "file", "")
	fs.StringVar(&a.rootPassword, "root-password", "", "")
	fs.StringVar(&a.crypto, "password-crypto", "", "")
	fs.Var(&a.passwords, "password", "")
	fs.BoolVar(&a.selinuxRelabel, "selinux-relabel", false, "")
	fs.StringVar(&a.seedInImage, "seed-in-image", "", "")
	a.img.register(fs)
	fs.StringVar(&a.overlay.path, "overlay", "", "")
	fs.Var(size, "size", "")
	fs.BoolVar(&a.dryRun, "dry-run", false, "")
	fs.BoolVar(&a.json, "json", false, "")
	fs.BoolVar(&a.force, "force", false, "")
	fs.Var(&a.grow, "grow", "")
	fs.BoolVar(&a.allowNonRootDir, "allow-non-root-dir", false, "")
	a.out.register(fs)
	a.ops.register(fs)
	fs.BoolVar(&a.hostOwners, "host-owners", false, "")
	return fs
}

// buildData reads the local inputs (key, network and file sources) and
// turns the flags into inject.Data. random is the generated root password,
// if one was asked for.
func (a *injectArgs) buildData() (d *inject.Data, random string, err error) {
	d = &inject.Data{}
	if err = a.keys.fill(d); err != nil {
		return nil, "", err
	}
	if d.Meta, err = parseMeta(a.metas); err != nil {
		return nil, "", err
	}
	if d.Network, err = a.network(); err != nil {
		return nil, "", err
	}
	if d.Files, err = readFiles(a.files); err != nil {
		return nil, "", err
	}
	if d.AdminPassword, random, err = a.password(); err != nil {
		return nil, "", err
	}
	if d.Passwords, a.randoms, err = a.userPasswords(); err != nil {
		return nil, "", err
	}
	if err := a.addSeedInImage(d); err != nil {
		return nil, "", err
	}
	d.Ops, d.HostOwners, d.SELinuxRelabel = append(append([]inject.Operation(nil), a.preOps...), a.ops.ops...), a.hostOwners, a.selinuxRelabel
	d.OpsFirst = a.opsFirst
	return d, random, nil
}

func parseMeta(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--meta %q: want KEY=VALUE", p)
		}
		if _, dup := m[k]; dup {
			return nil, usagef("--meta: key %q given twice", k)
		}
		m[k] = v
	}
	return m, nil
}

func (a *injectArgs) network() (*inject.Network, error) {
	format, err := inject.ParseNetFormat(a.netFormat)
	if err != nil {
		return nil, usagef("--net-format: %v", err)
	}
	if a.net != "" {
		b, err := os.ReadFile(a.net)
		if err != nil {
			return nil, fmt.Errorf("--net: %w", err)
		}
		return &inject.Network{Verbatim: b, Format: format}, nil
	}
	if len(a.ips) == 0 {
		return nil, nil
	}
	n := &inject.Network{Format: format}
	for _, s := range a.ips {
		ifc, err := parseIP(s)
		if err != nil {
			return nil, usagef("%v", err)
		}
		n.Interfaces = append(n.Interfaces, ifc)
	}
	if err := inject.ValidateInterfaces(n.Interfaces); err != nil {
		return nil, usagef("--ip: %v", err)
	}
	return n, nil
}

func readFiles(specs []string) ([]inject.File, error) {
	var files []inject.File
	for _, s := range specs {
		f, err := parseFileSpec(s)
		if err != nil {
			return nil, err
		}
		if err := fileSpecOrder(s, f.guest, f.local); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(f.local)
		if err != nil {
			return nil, fmt.Errorf("--file %s: %w", f.guest, err)
		}
		files = append(files, inject.File{Path: f.guest, Data: b, Mode: f.mode, Owner: f.owner})
	}
	return files, nil
}

// password turns --root-password and --password-crypto into the request.
func (a *injectArgs) password() (*inject.Password, string, error) {
	if a.rootPassword == "" {
		return nil, "", nil
	}
	return parseSelector("--root-password", "root", a.rootPassword, a.crypto)
}

// firstLine returns the first line of the file at p, without its line end.
func firstLine(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("%s: the first line is empty", p)
	}
	return line, nil
}

func runInject(args []string, stdout, stderr io.Writer) int {
	a, err := parseInjectArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, fullHelp())
		return exitOK
	}
	if err != nil {
		return fail(stderr, err)
	}
	return runParsed(a, stdout, stderr)
}

// runParsed runs a parsed injection (the inject and sysprep verbs).
func runParsed(a *injectArgs, stdout, stderr io.Writer) int {
	data, random, err := a.buildData()
	if err != nil {
		if !isUsage(err) {
			a.printJSONError(stdout, err)
		}
		return fail(stderr, err)
	}
	if err := a.resize(); err != nil {
		a.printJSONError(stdout, err)
		return fail(stderr, fmt.Errorf("target %w", err))
	}
	g, err := a.open()
	if err != nil {
		err = a.undoResize(err)
		a.printJSONError(stdout, err)
		return fail(stderr, fmt.Errorf("target %w", err))
	}
	defer g.release()
	a.where, a.grown = g.where, g.grown
	var rep *inject.Report
	switch {
	case g.rehearse:
		rep, err = inject.Rehearse(g.fs, data, nil)
	case a.dryRun:
		rep, err = inject.Plan(g.fs, data, nil)
	default:
		rep, err = inject.Apply(g.fs, data, nil)
	}
	if err != nil && g.discard != nil {
		g.discard() // an image keeps every byte: nothing staged is written
	}
	if err == nil {
		err = g.release() // writes what was staged to the image, flushes it
	}
	if err != nil && g.created != "" {
		a.discarded = discardOverlay(g)
		err = fmt.Errorf("%w; %s", err, a.discarded)
	}
	if err != nil && a.resized != nil {
		g.release()
		err = a.undoResize(err)
	}
	a.random = random
	a.printReport(stdout, rep, err)
	if !a.json { // --json carries it in the report, and only there
		announceRandom(stderr, rep, random, a.out.quiet)
		announceRandoms(stderr, rep, a.randoms, a.out.quiet)
	}
	if err != nil {
		a.reportFailure(stderr, rep, err)
		_, status := classify(err)
		return status
	}
	return exitOK
}

// open opens TARGET for the injection: read-only for a dry run, through a
// new overlay with --overlay (a dry run only checks that request).
func (a *injectArgs) open() (*guest, error) {
	o := openOptions{write: !a.dryRun, force: a.force, img: a.img, guestRoot: true, allowNonRootDir: a.allowNonRootDir, rehearse: a.dryRun, grow: string(a.grow)}
	if a.overlay.path == "" {
		return openGuest(a.target, o)
	}
	if !a.dryRun {
		return openOverlay(a.target, a.overlay, o)
	}
	if err := checkOverlay(a.target, a.overlay, o); err != nil {
		return nil, err
	}
	return openGuest(a.target, o)
}

// reportFailure names, on stderr, each failed item with the image and
// partition it was written to, or the error that failed the whole run.
func (a *injectArgs) reportFailure(stderr io.Writer, rep *inject.Report, err error) {
	named := false
	for _, it := range rep.Items {
		if it.Err != nil {
			fmt.Fprintf(stderr, "inject: %s: %v\n", a.where, it.Err)
			named = true
		}
	}
	switch {
	case !named:
		fmt.Fprintf(stderr, "inject: %s: %v\n", a.where, err)
	case a.discarded != "":
		fmt.Fprintf(stderr, "inject: %s\n", a.discarded)
	}
}

// announceRandom prints a generated root password once, when it was set.
// A dry run only says one will be generated: the password it hashed is
// thrown away and never set.
func announceRandom(stderr io.Writer, rep *inject.Report, random string, quiet bool) {
	if random == "" {
		return
	}
	for _, it := range rep.Items {
		switch {
		case it.Kind != inject.KindPassword:
		case it.Status == inject.StatusDone:
			fmt.Fprintf(stderr, "inject: root password set to: %s\n", random)
		case it.Status == inject.StatusPlanned && !quiet:
			fmt.Fprintf(stderr, "inject: dry run: the real run generates a random root password and prints it once\n")
		}
	}
}
