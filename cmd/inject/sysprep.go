package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/guestinject/guestinject/inject"
)

// runSysprep is `inject sysprep`: virt-sysprep's operations that need no
// guest execution, then (its "customize" operation) the injection's flags
// and ordered operations, all planned and written as one injection.
func runSysprep(args []string, stdout, stderr io.Writer) int {
	var rest []string
	list, given, listOps := "", false, false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "-") || arg == "--" {
			if arg == "--" {
				rest = append(rest, args[i:]...)
				break
			}
			rest = append(rest, arg)
			continue
		}
		switch name {
		case "list-operations":
			listOps = true
		case "operations", "enable":
			if !hasVal {
				if i+1 >= len(args) {
					return fail(stderr, usagef("--%s needs a comma-separated list", name))
				}
				i++
				val = args[i]
			}
			if given {
				list += ","
			}
			list, given = list+val, true
		case "h", "help":
			fmt.Fprint(stdout, sysprepHelp())
			return exitOK
		default:
			rest = append(rest, arg)
		}
	}
	if listOps {
		for _, o := range inject.SysprepOperations() {
			star := " "
			if o.Default {
				star = "*"
			}
			fmt.Fprintf(stdout, "%s %s %s\n", o.Name, star, o.Help)
		}
		return exitOK
	}
	pre, customize, err := inject.SysprepSelection(list, given)
	if err != nil {
		return fail(stderr, usagef("%v", err))
	}
	if len(pre) == 0 && !customize {
		return fail(stderr, usagef("--operations %q enables no operation", list))
	}
	a, err := parseInjectArgsInto(&injectArgs{preOps: pre, opsFirst: true}, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, sysprepHelp())
		return exitOK
	}
	if err != nil {
		return fail(stderr, err)
	}
	if !customize && a.customizes() {
		return fail(stderr, usagef("customisation flags given but the customize operation is not enabled (add it to --operations)"))
	}
	return runParsed(a, stdout, stderr)
}

// customizes reports whether the command line asks for anything beyond
// the sysprep operations.
func (a *injectArgs) customizes() bool {
	return a.keys.count()+len(a.metas)+len(a.ips)+len(a.files)+len(a.passwords)+len(a.ops.ops) > 0 ||
		a.net != "" || a.rootPassword != "" || a.selinuxRelabel
}

// sysprepHelp is the sysprep verb's page, its operation list from the
// same table the verb runs.
func sysprepHelp() string {
	var b strings.Builder
	b.WriteString(`Usage: inject sysprep [--operations LIST] [--list-operations] [flags] TARGET

Reset a guest so clones of it start fresh, as virt-sysprep does, for the
operations that need no guest execution; then apply the injection's flags
and ordered operations (virt-sysprep's "customize"), e.g. --hostname,
--delete, --firstboot, --root-password, --selinux-relabel. Everything is
validated on a model of the guest first and written as one transaction,
like an injection (--dry-run, --json, -q, -v and the image flags work the
same). Deletions follow glob(3): a wildcard does not match dot files.

  --operations LIST           comma-separated operations to run (also
                              --enable); -NAME removes one, "defaults" and
                              "all" add those; default: the operations
                              marked * below
                                e.g. inject sysprep --operations defaults,-ssh-userdir disk.qcow2
  --list-operations           print each operation, * when enabled by
                              default, and what it does

Operations (* = default):
`)
	for _, o := range inject.SysprepOperations() {
		star := " "
		if o.Default {
			star = "*"
		}
		writeWrapped(&b, "  "+o.Name+" "+star, o.Help)
	}
	b.WriteString("\n  e.g. inject sysprep disk.qcow2\n       inject sysprep --operations machine-id,ssh-hostkeys,logfiles --hostname web1 --dry-run disk.qcow2\n")
	b.WriteString("\nRun 'inject --help' for the injection's flags and operations.\n")
	return b.String()
}
