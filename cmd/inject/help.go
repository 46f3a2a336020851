package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// verbUsage is each read verb's own page; the image flags are the
// section of helpText that documents them, so the two never disagree.
var verbUsage = map[string]string{
	"cat": `Usage: inject cat [IMAGE FLAGS] [-U] [-q] TARGET GUESTPATH...

Print guest files on stdout, in order, streamed (any size). A file that
cannot be read is reported on stderr and the rest are still printed; the
exit status is then 1.

  e.g. inject cat disk.qcow2 /etc/os-release
       inject cat --partition 2 disk.img /etc/fstab /etc/hostname
`,
	"ls": `Usage: inject ls [-l] [IMAGE FLAGS] [-U] [-q] TARGET [GUESTPATH]

List a guest directory (default /), or describe one file. With -l: mode,
uid, gid, size, name, and -> target for a symlink.

  e.g. inject ls disk.img
       inject ls -l disk.qcow2 /root/.ssh
`,
	"inspect": `Usage: inject inspect [--json] [--format F] [--backing B] [--partition P] [-U] [-q] IMAGE

Describe an image: format, virtual size, qcow2 details, backing chain,
partition table, filesystems, the guest root and its OS (from
os-release). A backing file that is missing or that the backing policy
denies is reported, and the image itself still described (exit 0). With
--json a failure prints {"target", "ok": false, "error", "error_class"}
on stdout too.

  e.g. inject inspect disk.qcow2
       inject inspect --json -U running-vm.qcow2
`,
}

// readVerbFlags documents the flags every read verb takes besides the
// image flags.
const readVerbFlags = `
  -U, --force-share           read an image a running VM holds: open it
                              without qemu's lock (as qemu-img -U); a warning
                              says the view may be inconsistent
                                e.g. inject cat -U vm.qcow2 /etc/hostname
  -q, --quiet                 print no warnings
  -h, --help                  this help
`

// verbHelp is the help page of verb (cat, ls, inspect), or "" for none.
func verbHelp(verb string) string {
	switch verb {
	case "sysprep":
		return sysprepHelp()
	case "seed":
		return seedHelp
	case "import":
		return importHelp
	}
	u, ok := verbUsage[verb]
	if !ok {
		return ""
	}
	return u + "\nFlags:" + readVerbFlags + "\n" + imageFlagsSection() + "\nRun 'inject --help' for the injection's flags.\n"
}

// imageFlagsSection is the "Image flags" part of helpText.
func imageFlagsSection() string {
	s := helpText[strings.Index(helpText, "Image flags"):]
	return s[:strings.Index(s, "\nExit status:")+1]
}

// fullHelp is the injection's page: helpText with the ordered
// operations, generated from the table their flags come from, before the
// image flags.
func fullHelp() string {
	i := strings.Index(helpText, "Image flags")
	return helpText[:i] + opsHelp() + "\n" + helpText[i:]
}

// runHelp is `inject help [VERB]`.
func runHelp(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0 || len(args) == 1 && args[0] == "inject":
		fmt.Fprint(stdout, fullHelp())
		return exitOK
	case len(args) == 1 && verbHelp(args[0]) != "":
		fmt.Fprint(stdout, verbHelp(args[0]))
		return exitOK
	case len(args) == 1 && (args[0] == "customize" || args[0] == "operations"):
		fmt.Fprint(stdout, "Usage: inject [OPERATION...] [flags] TARGET\n\n"+opsHelp()+"\nRun 'inject --help' for the other flags.\n")
		return exitOK
	}
	return fail(stderr, usagef("help %s: no such topic; want one of cat, ls, inspect, seed, import, sysprep, customize (or none, for the injection)", strings.Join(args, " ")))
}

// version is the module version and the VCS revision the binary was
// built from, as the Go toolchain recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "inject (no build information)"
	}
	return versionOf(bi)
}

// versionOf renders the build information: `inject MODULE VERSION
// (revision REV[, modified], TIME), GO`.
func versionOf(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(unknown version)"
	}
	s := fmt.Sprintf("inject %s %s", bi.Main.Path, v)
	var rev, when, dirty string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			when = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		s += fmt.Sprintf(" (revision %s%s, %s)", rev, dirty, when)
	}
	return s + ", " + bi.GoVersion
}
