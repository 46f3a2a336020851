// Command inject edits a guest filesystem offline: it injects SSH keys,
// network configuration, /meta.js, files and a root password hash into a
// guest root directory or a disk image (raw or qcow2, a thin overlay on a
// base, partitioned or not), reads files and directories back (cat, ls),
// and describes an image (inspect). Run `inject --help` for the flags.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Exit statuses.
const (
	exitOK    = 0 // success
	exitFail  = 1 // the injection or a read failed
	exitUsage = 2 // bad command line
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: it parses args, does the work, writes to
// stdout and stderr, and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "cat":
			return runCat(args[1:], stdout, stderr)
		case "ls":
			return runLs(args[1:], stdout, stderr)
		case "inspect":
			return runInspect(args[1:], stdout, stderr)
		case "help":
			return runHelp(args[1:], stdout, stderr)
		case "--version", "-version", "version":
			fmt.Fprintln(stdout, version())
			return exitOK
		case "seed":
			return runSeed(args[1:], stdout, stderr)
		case "sysprep":
			return runSysprep(args[1:], stdout, stderr)
		case "completion":
			return runCompletion(args[1:], stdout, stderr)
		case "import":
			return runImport(args[1:], stdout, stderr)
		}
	}
	return runInject(args, stdout, stderr)
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{fmt.Sprintf(format, a...)}
}

// fail reports err on stderr and returns its exit status: 2 for a usage
// error (with a pointer to --help), else 1.
func fail(stderr io.Writer, err error) int {
	class, status := classify(err)
	if class == classUsage {
		fmt.Fprintf(stderr, "inject: %v\nRun 'inject --help' for usage.\n", err)
		return status
	}
	fmt.Fprintf(stderr, "inject: %v\n", err)
	return status
}

// isUsage reports whether err is a bad command line.
func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u) || errors.Is(err, errImageFlagOnDir)
}
